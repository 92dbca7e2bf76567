//! The single-writer lease of a world (docs/redis.md#the-lease): `lease:daemon:{world}` holds a
//! random token, set with `SET NX PX 10000` and renewed every 3 s by its holder; released only
//! by its holder (compare-and-delete). The lease is liveness only: fencing epochs come from
//! MongoDB, so a holder that lost its lease without knowing finds its next checkpoint refused.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{RedisResult, Script, aio::ConnectionManager};
use tokio::{
    runtime::Handle,
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{error, info, warn};

use super::{REDIS_TIMEOUT, keys};

/// How long a lease lives without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often a standby tries to take it.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Renews the lease if this holder has it, takes it again if it lapsed while Redis was out
/// of reach (fencing makes that safe); 0 if another holder has it.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
";

/// Deletes the lease only if this holder has it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// How long after its last confirmation a holder still counts on its lease for reading the
/// stream: a blocking read issued then ends well before the lease could lapse, so a holder
/// frozen past its lease (and fenced out since) takes no entries meant for its successor.
pub const TENURE: Duration = Duration::from_secs(6);

fn since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The lease as its holder's workers see it: its key and token (for scripts that act only
/// while the lease is still this holder's) and when it was last confirmed.
#[derive(Clone, Debug)]
pub struct Tenure {
    confirmed: Arc<AtomicU64>,
    pub key: String,
    pub token: String,
}

impl Tenure {
    fn new(key: &str, token: &str) -> Self {
        Tenure {
            confirmed: Arc::new(AtomicU64::new(since_start())),
            key: key.to_string(),
            token: token.to_string(),
        }
    }

    /// The lease was confirmed by a request sent at `sent` (ms since start).
    fn confirmed_at(&self, sent: u64) {
        self.confirmed.fetch_max(sent, Ordering::Relaxed);
    }

    /// Whether the lease was confirmed recently enough to act on it.
    pub fn fresh(&self) -> bool {
        since_start().saturating_sub(self.confirmed.load(Ordering::Relaxed))
            < TENURE.as_millis() as u64
    }
}

/// A lease this process holds.
pub struct Lease {
    redis: ConnectionManager,
    key: String,
    token: String,
    tenure: Tenure,
}

fn token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No system randomness: the time and process make a token unique enough for liveness;
        // fencing, not the token, keeps writers apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Lease {
    /// Tries once to take the lease of `world`.
    pub async fn try_acquire(redis: &ConnectionManager, world: &str) -> RedisResult<Option<Lease>> {
        let key = keys::lease(world);
        let token = token();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LEASE_TTL.as_millis() as u64)
            .query_async(&mut redis.clone())
            .await?;
        Ok(set.map(|_| Lease {
            redis: redis.clone(),
            tenure: Tenure::new(&key, &token),
            key,
            token,
        }))
    }

    /// Waits until the lease of `world` is free and takes it (a standby waits here), or
    /// `None` once `stop` says so.
    pub async fn acquire(
        redis: &ConnectionManager,
        world: &str,
        mut stop: watch::Receiver<bool>,
    ) -> Option<Lease> {
        let mut said = false;
        // A standby says it holds no lease (alerts tell "no daemon holds it" from "no daemon").
        metrics::gauge!("tianxia_lease_held").set(0.0);
        loop {
            if *stop.borrow() {
                return None;
            }
            match Self::try_acquire(redis, world).await {
                Ok(Some(lease)) => {
                    info!(key = %lease.key, "lease taken: this process is the world's writer");
                    metrics::counter!("tianxia_lease_acquired_total").increment(1);
                    metrics::gauge!("tianxia_lease_held").set(1.0);
                    return Some(lease);
                }
                Ok(None) => {
                    if !said {
                        info!(key = %keys::lease(world), "another daemon holds the lease; standing by");
                        said = true;
                    }
                }
                Err(e) => warn!(error = %e, "cannot reach Redis for the lease; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// When the lease was last confirmed.
    pub fn tenure(&self) -> Tenure {
        self.tenure.clone()
    }

    /// Renews the lease every [`RENEW_EVERY`] until `stop`; sends to `lost` and ends if
    /// another holder has it. While Redis is out of reach it keeps trying (the game goes on).
    pub fn keep(
        self,
        lost: mpsc::UnboundedSender<String>,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<Lease> {
        tokio::spawn(async move {
            let renew = Script::new(RENEW);
            let mut last_ok = Instant::now();
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(if failing { STANDBY_POLL } else { RENEW_EVERY }) => {}
                    _ = stop.changed() => return self,
                }
                if *stop.borrow() {
                    return self;
                }
                // Fresh from when the renewal was sent, not from when its answer came.
                let sent = since_start();
                let outcome: RedisResult<i64> = renew
                    .key(&self.key)
                    .arg(&self.token)
                    .arg(LEASE_TTL.as_millis() as u64)
                    .invoke_async(&mut self.redis.clone())
                    .await;
                match outcome {
                    Ok(0) => {
                        error!(key = %self.key, "the lease is held by another daemon; this one stops");
                        metrics::counter!("tianxia_lease_lost_total").increment(1);
                        metrics::gauge!("tianxia_lease_held").set(0.0);
                        let _ = lost.send(format!(
                            "the lease {} was taken by another daemon",
                            self.key
                        ));
                        return self;
                    }
                    Ok(taken) => {
                        if taken == 2 {
                            warn!(key = %self.key, "the lease had lapsed while Redis was out of reach; taken again");
                            metrics::counter!("tianxia_lease_acquired_total").increment(1);
                        } else if failing {
                            info!(key = %self.key, "lease renewed again");
                        }
                        failing = false;
                        last_ok = Instant::now();
                        self.tenure.confirmed_at(sent);
                    }
                    Err(e) => {
                        if !failing {
                            warn!(
                                error = %e,
                                since_ms = last_ok.elapsed().as_millis() as u64,
                                "cannot renew the lease; retrying (checkpoints stay fenced)"
                            );
                        }
                        failing = true;
                    }
                }
            }
        })
    }

    /// Releases the lease if this holder still has it.
    pub async fn release(self) -> RedisResult<bool> {
        metrics::gauge!("tianxia_lease_held").set(0.0);
        let deleted: i64 = Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(deleted == 1)
    }
}

/// The lease this process holds, renewed in the background.
pub struct LeaseKeeper {
    stop: watch::Sender<bool>,
    task: JoinHandle<Lease>,
    pub tenure: Tenure,
}

impl LeaseKeeper {
    /// Keeps `lease` renewed; losing it is reported on `lost`.
    pub fn start(lease: Lease, lost: mpsc::UnboundedSender<String>) -> LeaseKeeper {
        let (stop, stop_rx) = watch::channel(false);
        let tenure = lease.tenure();
        let task = lease.keep(lost, stop_rx);
        LeaseKeeper { stop, task, tenure }
    }

    /// Stops renewing and releases the lease if this process still holds it (after its final
    /// checkpoint), so a standby need not wait for it to lapse.
    pub fn release(self, runtime: &Handle) {
        let _ = self.stop.send(true);
        let Ok(lease) = runtime.block_on(self.task) else {
            warn!("the lease keeper failed; the lease will lapse");
            return;
        };
        match runtime.block_on(async { tokio::time::timeout(REDIS_TIMEOUT, lease.release()).await })
        {
            Ok(Ok(true)) => info!("lease released"),
            Ok(Ok(false)) => info!("the lease was no longer this process's"),
            Ok(Err(e)) => warn!(error = %e, "the lease could not be released; it will lapse"),
            Err(_) => warn!("releasing the lease took too long; it will lapse"),
        }
    }
}

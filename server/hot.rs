//! The hot snapshot writer (docs/redis.md#writing-the-snapshot): takes the World's hot
//! snapshots from a channel of one, encodes them off the tick and writes them under the lease.
//! A snapshot that cannot be written (Redis down, the lease gone) is dropped: the next one
//! replaces it. Recovery's side is [`read_newer`].

use std::{
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context;
use components::{
    durable::PersistStatus,
    persist::{Checkpoint, HotSnapshot},
};
use crossbeam_channel::Receiver;
use metrics::{counter, gauge, histogram};
use net::redis::{
    hot::{HotWriter, Written},
    lease::LeaseKeeper,
};
use redis::aio::ConnectionManager;
use systems::persist::HotSettings;
use tokio::runtime::Handle;
use tracing::{info, warn};

use crate::config::ServeConfig;

/// How long writing one snapshot may take (on a connection of its own).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The writer's thread; it ends when the World drops its sender.
pub struct HotThread {
    handle: JoinHandle<()>,
}

/// How the last write went, so only changes are logged.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Written,
    Refused,
    Failed,
}

impl HotThread {
    /// For a lease holder: the writer's thread on `redis` (a connection of its own) and the
    /// settings that tell the World where and how often to hand its hot snapshots.
    pub(crate) fn for_lease(
        redis: &ConnectionManager,
        lease: &LeaseKeeper,
        config: &ServeConfig,
        status: &PersistStatus,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<(HotSettings, HotThread)> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let writer = HotWriter::new(redis.clone(), &config.world, lease.tenure.clone());
        let thread = HotThread::start(rx, writer, runtime.handle().clone())?;
        let settings = HotSettings {
            sink: tx,
            interval: config.snapshot_interval,
            durable_seq: status.durable_seq_cell(),
        };
        Ok((settings, thread))
    }

    pub fn start(
        rx: Receiver<HotSnapshot>,
        writer: HotWriter,
        runtime: Handle,
    ) -> anyhow::Result<HotThread> {
        counter!("tianxia_hot_snapshots_total", "result" => "written").increment(0);
        let handle = std::thread::Builder::new()
            .name("hot-snapshot".into())
            .spawn(move || {
                let mut last: Option<Outcome> = None;
                for snapshot in rx {
                    let outcome = write(&snapshot, &writer, &runtime);
                    if last != Some(outcome) {
                        let epoch = snapshot.checkpoint.epoch;
                        match outcome {
                            Outcome::Written => info!(epoch, "hot snapshots written to Redis"),
                            Outcome::Refused => warn!(
                                epoch,
                                "hot snapshot not written: this process does not hold the lease, or a newer snapshot is there"
                            ),
                            Outcome::Failed => {}
                        }
                    }
                    last = Some(outcome);
                }
            })
            .context("cannot start the hot snapshot thread")?;
        Ok(HotThread { handle })
    }

    pub fn join(self) {
        if self.handle.join().is_err() {
            warn!("the hot snapshot thread panicked");
        }
    }
}

fn write(snapshot: &HotSnapshot, writer: &HotWriter, runtime: &Handle) -> Outcome {
    let started = Instant::now();
    let bytes = match persistence::hot::encode(snapshot) {
        Ok(bytes) => bytes,
        Err(e) => {
            warn!(error = %e, "a hot snapshot could not be encoded");
            counter!("tianxia_hot_snapshots_total", "result" => "failed").increment(1);
            return Outcome::Failed;
        }
    };
    gauge!("tianxia_hot_snapshot_bytes").set(bytes.len() as f64);
    if bytes.len() > persistence::hot::MAX_DECODED {
        warn!(
            bytes = bytes.len(),
            "a hot snapshot is larger than Redis takes; not written"
        );
        counter!("tianxia_hot_snapshots_total", "result" => "failed").increment(1);
        return Outcome::Failed;
    }
    let (lease_epoch, epoch) = (snapshot.checkpoint.lease_epoch, snapshot.checkpoint.epoch);
    let written = runtime.block_on(async {
        tokio::time::timeout(WRITE_TIMEOUT, writer.write(&bytes, lease_epoch, epoch)).await
    });
    let (outcome, result) = match written {
        Ok(Ok(Written::Written)) => (Outcome::Written, "written"),
        Ok(Ok(Written::NotHolder | Written::Older)) => (Outcome::Refused, "refused"),
        Ok(Err(e)) => {
            warn!(error = %e, "a hot snapshot could not be written; the next one will be");
            (Outcome::Failed, "failed")
        }
        Err(_) => {
            warn!("writing a hot snapshot took too long; the next one will be written");
            (Outcome::Failed, "failed")
        }
    };
    counter!("tianxia_hot_snapshots_total", "result" => result).increment(1);
    if outcome == Outcome::Written {
        histogram!("tianxia_hot_snapshot_duration_seconds").record(started.elapsed().as_secs_f64());
    }
    outcome
}

/// The hot snapshot of `world` in Redis, if recovery should start from it rather than from
/// `checkpoint` (docs/redis.md#when-recovery-uses-it): its events cut to those the store lacks.
/// Logs why not otherwise.
pub async fn read_newer(
    redis: &mut ConnectionManager,
    world: &str,
    checkpoint: Option<&Checkpoint>,
) -> redis::RedisResult<Option<HotSnapshot>> {
    let bytes = match net::redis::hot::read(redis, world).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        // Redis unreachable: start-up waits for it (the stream needs it too).
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
            return Err(e);
        }
        Err(e) => {
            warn!(error = %e, "the hot snapshot in Redis cannot be read; recovering from the checkpoint");
            return Ok(None);
        }
    };
    let snapshot = match persistence::hot::decode(&bytes) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            warn!(error = %e, "the hot snapshot in Redis cannot be read; recovering from the checkpoint");
            return Ok(None);
        }
    };
    match persistence::hot::newer_than(snapshot, world, checkpoint) {
        Ok(snapshot) => Ok(Some(snapshot)),
        Err(why) => {
            info!(reason = %why, "the hot snapshot in Redis is not used");
            Ok(None)
        }
    }
}

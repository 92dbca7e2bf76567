//! How commands reach the World and are released after a checkpoint (SPEC 7, 8): the
//! embedded command log, or, with `REDIS_URL`, the command stream and its consumer group.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use components::{command::Command, persist::Checkpoint, stream::EntryId};
use metrics::gauge;
use net::{
    lease::{Lease, Tenure},
    streams::{self, StreamJournal, StreamKeys, StreamReader},
};
use persistence::CommandLog;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::{runtime::Handle, sync::watch, task::JoinHandle};
use tracing::{info, warn};

use crate::journal::JournalThread;

/// How long an ordinary Redis request may take.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long acknowledging after a checkpoint may take before it is left to the next one.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection manager that reconnects by itself; `response_timeout` bounds each request.
pub fn manager(
    client: &redis::Client,
    response_timeout: Duration,
) -> anyhow::Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
        .context("cannot set up the Redis connection")
}

/// The command stream of one world, before and while the World reads it.
pub struct Stream {
    pub redis: ConnectionManager,
    /// For blocking reads only (its responses may take as long as a block).
    reader: ConnectionManager,
    pub keys: StreamKeys,
    pub consumer: String,
}

impl Stream {
    /// Must be called within the runtime.
    /// `redis` serves ordinary requests; blocking reads get a connection of their own from
    /// `client`.
    pub fn new(
        client: &redis::Client,
        redis: ConnectionManager,
        world: &str,
        lease_epoch: u64,
    ) -> anyhow::Result<Stream> {
        Ok(Stream {
            redis,
            reader: manager(client, streams::BLOCK + REDIS_TIMEOUT)?,
            keys: StreamKeys::new(world),
            consumer: streams::consumer_name(lease_epoch),
        })
    }

    /// Makes the group continuous with the checkpoint's `from`, claims the entries dead
    /// consumers left pending and returns the commands among them after `from`, in order
    /// (the caller applies them again before anything new), and the last entry claimed.
    pub async fn recover(
        &mut self,
        from: Option<EntryId>,
    ) -> redis::RedisResult<(Vec<Command>, EntryId)> {
        streams::prepare(&mut self.redis, &self.keys, from).await?;
        let claimed = streams::claim(&mut self.redis, &self.keys, &self.consumer).await?;
        let last = claimed
            .last()
            .map_or(EntryId::ZERO, |e| e.id)
            .max(from.unwrap_or(EntryId::ZERO));
        let commands = streams::commands_after(&mut self.redis, &self.keys, &claimed, from).await?;
        if !claimed.is_empty() {
            info!(
                claimed = claimed.len(),
                to_apply = commands.len(),
                consumer = %self.consumer,
                "claimed the entries a previous daemon left pending"
            );
        }
        Ok((commands.into_values().collect(), last))
    }

    /// Starts reading after `after` for the World; returns the HTTP side's journal and the
    /// reader.
    pub fn start(
        self,
        runtime: &Handle,
        world: crossbeam_channel::Sender<components::command::Inbound>,
        after: EntryId,
        tenure: Option<Tenure>,
    ) -> (StreamJournal, ReaderTask) {
        let journal = StreamJournal::new(self.redis.clone(), self.keys.clone());
        let reader = StreamReader::new(self.reader, self.keys, self.consumer, world, after, tenure);
        let (stop, stop_rx) = watch::channel(false);
        let task = runtime.spawn(reader.run(stop_rx));
        (journal, ReaderTask { stop, task })
    }
}

/// The stream reader's task.
pub struct ReaderTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<streams::ReaderEnd>,
}

impl ReaderTask {
    /// Stops reading (after the read under way, at most a block's length) and waits.
    pub fn stop(self, runtime: &Handle) {
        let _ = self.stop.send(true);
        match runtime.block_on(self.task) {
            Ok(end) => info!(?end, "stopped reading the command stream"),
            Err(e) => warn!(error = %e, "the stream reader failed"),
        }
    }
}

/// How commands come in.
pub enum Intake {
    Log(JournalThread),
    Stream(ReaderTask),
}

impl Intake {
    /// No more commands reach the World after this.
    pub fn stop(self, runtime: &Handle) {
        match self {
            Intake::Log(thread) => thread.join(),
            Intake::Stream(reader) => reader.stop(runtime),
        }
    }
}

/// What a committed checkpoint releases: the command log below its sequence, or the stream
/// entries it covers (acknowledged and trimmed, SPEC 7).
#[derive(Clone)]
pub enum Release {
    Log(Arc<CommandLog>),
    Stream {
        redis: ConnectionManager,
        keys: StreamKeys,
        /// This process's consumer: only its own pending entries are acknowledged.
        consumer: String,
    },
}

impl Release {
    /// Called by the store's worker after each committed checkpoint.
    pub fn committed(&self, checkpoint: &Checkpoint, runtime: &Handle) {
        match self {
            Release::Log(log) => {
                if let Err(e) = log.trim(checkpoint.log_seq) {
                    warn!(error = %e, "the command log could not be trimmed; it will be at the next checkpoint");
                }
            }
            Release::Stream {
                redis,
                keys,
                consumer,
            } => {
                let Some(upto) = checkpoint.stream_id else {
                    return;
                };
                let mut redis = redis.clone();
                let outcome = runtime.block_on(async {
                    tokio::time::timeout(ACK_TIMEOUT, async {
                        let acked = streams::acknowledge(&mut redis, keys, upto, consumer).await?;
                        let pending = streams::pending(&mut redis, keys).await?;
                        Ok::<_, redis::RedisError>((acked, pending))
                    })
                    .await
                });
                match outcome {
                    Ok(Ok((acked, pending))) => {
                        gauge!("tianxia_stream_pending").set(pending as f64);
                        tracing::debug!(acked, pending, upto = %upto, "stream entries acknowledged");
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "stream entries could not be acknowledged; they will be after the next checkpoint")
                    }
                    Err(_) => warn!(
                        "acknowledging stream entries took too long; they will be after the next checkpoint"
                    ),
                }
            }
        }
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
    pub fn start(lease: Lease, lost: tokio::sync::mpsc::UnboundedSender<String>) -> LeaseKeeper {
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

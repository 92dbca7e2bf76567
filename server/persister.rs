//! The store's worker (docs/storage.md#the-store-worker): takes the World's checkpoint epochs
//! from a channel and writes them in order, each committed before the next; after each, it
//! [`Release`]s the commands the checkpoint covers (trims the command log, or acknowledges and
//! trims the stream). While the store fails, it retries with backoff and epochs wait in a
//! bounded buffer; at the bound the two oldest are merged (the newest state of each entity,
//! every event), so nothing is dropped (docs/operations.md#mongodb-down). `/ready` and metrics
//! see all of it.

use std::{
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use components::{
    durable::PersistStatus,
    persist::{Batch, Checkpoint},
    time::unix_ms,
};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use metrics::{counter, gauge, histogram};
use net::redis::stream::{StreamKeys, group};
use persistence::{Backlog, CommandLog, WorldStore};
use redis::aio::ConnectionManager;
use tokio::runtime::Handle;
use tracing::{error, info, warn};

/// How long acknowledging after a checkpoint may take before it is left to the next one.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Epochs waiting for the store at most; beyond, the oldest are merged.
pub const MAX_BUFFERED: usize = 64;
/// Longest a single write may take before it counts as failed.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At shutdown, how long the worker keeps trying to write what waits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

enum Commit {
    Written,
    Failed,
    Fenced,
}

pub struct Persister {
    handle: JoinHandle<()>,
}

struct Worker {
    store: Arc<dyn WorldStore>,
    /// Told when a newer writer fenced this one out (the process must stop).
    fenced: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    release: Option<Release>,
    status: Arc<PersistStatus>,
    runtime: Handle,
    buffer: Backlog,
}

impl Persister {
    /// Starts the worker; it ends once the World has dropped its sender and everything
    /// waiting is written (or the shutdown grace has passed).
    pub fn start(
        rx: Receiver<Batch>,
        store: Arc<dyn WorldStore>,
        release: Option<Release>,
        status: Arc<PersistStatus>,
        runtime: Handle,
        fenced: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> anyhow::Result<Persister> {
        gauge!("tianxia_buffered_batches").set(0.0);
        counter!("tianxia_flush_failures_total").increment(0);
        let worker = Worker {
            store,
            fenced,
            release,
            status,
            runtime,
            buffer: Backlog::new(MAX_BUFFERED),
        };
        let handle = std::thread::Builder::new()
            .name("persist".into())
            .spawn(move || worker.run(&rx))
            .context("cannot start the persistence thread")?;
        Ok(Persister { handle })
    }

    pub fn join(self) {
        if self.handle.join().is_err() {
            error!("the persistence thread panicked");
        }
    }
}

impl Worker {
    fn push(&mut self, batch: Batch) {
        let epoch = batch.checkpoint.epoch;
        let merges = self.buffer.push(batch);
        if merges > 0 {
            warn!(
                epoch,
                waiting = self.buffer.len(),
                "the store is behind; the oldest waiting epochs were merged"
            );
            for _ in 0..merges {
                self.status.merged();
            }
            counter!("tianxia_merged_batches_total").increment(merges as u64);
        }
        self.report();
    }

    fn report(&self) {
        self.status.buffered(self.buffer.len());
        gauge!("tianxia_buffered_batches").set(self.buffer.len() as f64);
        let lag = self
            .buffer
            .oldest_at()
            .map_or(0, |at| unix_ms(SystemTime::now()).saturating_sub(at));
        gauge!("tianxia_persist_lag_seconds").set(lag as f64 / 1_000.0);
        self.status.lag(lag);
    }

    fn run(mut self, rx: &Receiver<Batch>) {
        let mut backoff = FIRST_BACKOFF;
        let mut world_gone: Option<Instant> = None;
        loop {
            // Take whatever the World has handed over.
            if self.buffer.is_empty() {
                match rx.recv() {
                    Ok(batch) => self.push(batch),
                    Err(_) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(batch) => self.push(batch),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        world_gone.get_or_insert_with(Instant::now);
                        break;
                    }
                }
            }
            match self.commit_front() {
                Commit::Written => {
                    backoff = FIRST_BACKOFF;
                    continue;
                }
                Commit::Fenced => return,
                Commit::Failed => {}
            }
            if world_gone.is_some_and(|t| t.elapsed() >= SHUTDOWN_GRACE) {
                error!(
                    waiting = self.buffer.len(),
                    "the store did not take the last epochs before shutdown; their commands stay in the command log and are applied again at the next start"
                );
                return;
            }
            // Wait before retrying, taking new epochs meanwhile.
            let until = Instant::now() + backoff;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(batch) => self.push(batch),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        world_gone.get_or_insert_with(Instant::now);
                        std::thread::sleep(left);
                        break;
                    }
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Writes the oldest waiting epoch.
    fn commit_front(&mut self) -> Commit {
        let Some(batch) = self.buffer.pop() else {
            return Commit::Written;
        };
        let batch = Arc::new(batch);
        let started = Instant::now();
        let store = self.store.clone();
        let written = self.runtime.block_on(async {
            match tokio::time::timeout(COMMIT_TIMEOUT, store.commit(batch.clone())).await {
                Ok(result) => result,
                Err(_) => Err(persistence::StoreError::Mongo(format!(
                    "no answer within {} s",
                    COMMIT_TIMEOUT.as_secs()
                ))),
            }
        });
        let batch = Arc::unwrap_or_clone(batch);
        let checkpoint = &batch.checkpoint;
        match written {
            Ok(()) => {
                histogram!("tianxia_flush_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                if self.status.report().ok {
                    tracing::debug!(epoch = checkpoint.epoch, "checkpoint written");
                } else {
                    info!(
                        epoch = checkpoint.epoch,
                        waiting = self.buffer.len(),
                        "the {} store took an epoch again",
                        self.store.name()
                    );
                }
                self.status.committed(checkpoint.epoch, checkpoint.last_seq);
                if let Some(release) = &self.release {
                    release.committed(checkpoint, &self.runtime, &self.status);
                }
                self.report();
                Commit::Written
            }
            Err(persistence::StoreError::Fenced(e)) => {
                // A newer writer has the world: nothing more is written or acknowledged.
                error!(epoch = checkpoint.epoch, error = %e, "checkpoint refused: fenced out by a newer writer");
                self.status.fence_lost(e.clone());
                if let Some(fenced) = &self.fenced {
                    let _ = fenced.send(e);
                }
                Commit::Fenced
            }
            Err(e) => {
                let e = e.to_string();
                counter!("tianxia_flush_failures_total").increment(1);
                if self.status.report().ok {
                    error!(
                        epoch = checkpoint.epoch,
                        error = %e,
                        "the {} store refused an epoch; retrying with backoff while the game goes on",
                        self.store.name()
                    );
                }
                self.status.failed(e);
                self.buffer.put_back(batch);
                self.report();
                Commit::Failed
            }
        }
    }
}

/// What a committed checkpoint releases: the command log below its sequence, or the stream
/// entries it covers (acknowledged and trimmed, docs/redis.md#acknowledging-and-trimming).
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
    pub fn committed(&self, checkpoint: &Checkpoint, runtime: &Handle, status: &PersistStatus) {
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
                        let acked = group::acknowledge(&mut redis, keys, upto, consumer).await?;
                        let pending = group::pending(&mut redis, keys).await?;
                        Ok::<_, redis::RedisError>((acked, pending))
                    })
                    .await
                });
                match outcome {
                    Ok(Ok((acked, pending))) => {
                        gauge!("tianxia_stream_pending").set(pending as f64);
                        status.stream_pending(pending as u64);
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

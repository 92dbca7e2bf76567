//! The durability contracts between the crates: the [`Journal`] that makes a command durable
//! before its 202 (the embedded command log in `persistence`, or the Redis stream in `net`),
//! the durable [`EventLog`] behind `GET /api/events` (over the world's store), and
//! [`PersistStatus`], how the store is doing, which the store's worker writes and `/ready`,
//! metrics and the World's hot snapshots read.
//!
//! Interfaces and shared cells only: no I/O happens here.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use crate::{command::Command, events::DomainEvent, read_model::OrderStatus};
use serde::Serialize;

pub type DurableFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What the journal made of a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Appended {
    /// Logged (its position and, if it had none, its id assigned) and on its way to the
    /// World.
    New(Command),
    /// Its id was sent before with the same body: nothing new was logged.
    Known { id: String, status: OrderStatus },
}

/// Why the journal did not take a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// Not logged; the World will never see it.
    #[error("{0}")]
    Unavailable(String),
    /// Its id was sent before with another body.
    #[error("{0}")]
    Conflict(String),
}

pub type JournalFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Appended, JournalError>> + Send + 'a>>;

/// Where commands become durable. `append` resolves once the command is logged and on its
/// way to the World; an `Err` means it was not logged and the World will never see it.
pub trait Journal: Send + Sync + 'static {
    fn append(&self, command: Command) -> JournalFuture<'_>;
}

/// The durable event log.
pub trait EventLog: Send + Sync + 'static {
    fn events<'a>(
        &'a self,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> DurableFuture<'a, Vec<DomainEvent>>;
}

/// How the world's store is doing, as its worker last found.
#[derive(Debug, Default)]
pub struct PersistStatus {
    store: Mutex<&'static str>,
    failing: AtomicBool,
    fenced: AtomicBool,
    last_error: Mutex<Option<String>>,
    buffered: AtomicUsize,
    merged: AtomicU64,
    durable_epoch: AtomicU64,
    /// Shared with the World's `Undurable`, which keeps the events not yet durable for its hot
    /// snapshots.
    durable_seq: Arc<AtomicU64>,
    /// Command stream entries delivered to this process and not yet acknowledged, as last
    /// counted after a checkpoint (Redis mode); `u64::MAX` until counted.
    stream_pending: AtomicU64,
    /// Milliseconds since the oldest epoch waiting for the store was closed (0: none waits).
    lag_ms: AtomicU64,
}

/// What `/ready` shows of persistence.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PersistReport {
    pub store: &'static str,
    pub ok: bool,
    /// Epochs waiting to be written.
    pub buffered_batches: usize,
    /// Seconds the oldest of them has waited (0 when none waits).
    pub lag_seconds: f64,
    /// Epochs folded into others while the store was out (never dropped).
    pub merged_batches: u64,
    pub durable_epoch: u64,
    pub durable_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Command stream entries delivered to this process and not yet acknowledged (they are
    /// once a checkpoint holds them), as last counted; absent without a stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_pending: Option<u64>,
}

impl PersistStatus {
    pub fn new(store: &'static str) -> Self {
        PersistStatus {
            store: Mutex::new(store),
            stream_pending: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    /// The command stream's entries pending for this process, as just counted.
    pub fn stream_pending(&self, pending: u64) {
        self.stream_pending
            .store(pending.min(u64::MAX - 1), Ordering::Relaxed);
    }

    pub fn committed(&self, epoch: u64, last_seq: u64) {
        self.durable_epoch.store(epoch, Ordering::Relaxed);
        self.durable_seq.store(last_seq, Ordering::Relaxed);
        self.failing.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn failed(&self, error: String) {
        self.failing.store(true, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// A newer writer fenced this one out: nothing more will be written.
    pub fn fence_lost(&self, error: String) {
        self.fenced.store(true, Ordering::Relaxed);
        self.failed(error);
    }

    /// The sequence of the last durable event, as a cell the World can read between passes.
    pub fn durable_seq_cell(&self) -> Arc<AtomicU64> {
        self.durable_seq.clone()
    }

    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Relaxed)
    }

    pub fn buffered(&self, batches: usize) {
        self.buffered.store(batches, Ordering::Relaxed);
    }

    /// How long the oldest epoch waiting for the store has waited.
    pub fn lag(&self, ms: u64) {
        self.lag_ms.store(ms, Ordering::Relaxed);
    }

    pub fn merged(&self) {
        self.merged.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report(&self) -> PersistReport {
        PersistReport {
            store: *self.store.lock().unwrap_or_else(|e| e.into_inner()),
            ok: !self.failing.load(Ordering::Relaxed),
            buffered_batches: self.buffered.load(Ordering::Relaxed),
            lag_seconds: self.lag_ms.load(Ordering::Relaxed) as f64 / 1_000.0,
            merged_batches: self.merged.load(Ordering::Relaxed),
            durable_epoch: self.durable_epoch.load(Ordering::Relaxed),
            durable_seq: self.durable_seq.load(Ordering::Relaxed),
            error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            stream_pending: Some(self.stream_pending.load(Ordering::Relaxed))
                .filter(|p| *p != u64::MAX),
        }
    }
}

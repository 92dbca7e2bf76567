//! The world's store behind one trait (docs/storage.md#checkpoint-epochs): checkpoint epochs,
//! recovery and the durable event log, kept in the embedded store by default or in MongoDB
//! when `MONGODB_URI` is set; and [`WorldEvents`], the HTTP side's durable event log over it.
//! Calls may block on I/O: they are futures for the tokio side, never called from the tick.

use std::{future::Future, pin::Pin, sync::Arc};

use components::{
    durable::{DurableFuture, EventLog},
    events::DomainEvent,
    persist::{Batch, Recovery},
};

use crate::StoreError;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

pub trait WorldStore: Send + Sync + 'static {
    /// `embedded` or `mongodb`, for logs, `/ready` and metrics.
    fn name(&self) -> &'static str;

    /// Writes one epoch: its events and snapshots, then the checkpoint that commits them,
    /// then removes what the checkpoint supersedes.
    fn commit(&self, batch: Arc<Batch>) -> StoreFuture<'_, ()>;

    /// Recovery (docs/storage.md#clean-up): removes what the last checkpoint of `world` does
    /// not name, begins a new incarnation (durably, so no revision is used twice), then reads
    /// the checkpoint and every entity it names (none for a world never checkpointed).
    fn recover<'a>(&'a self, world: &'a str) -> StoreFuture<'a, Recovery>;

    /// Durable events of `world` after `after` (up to the checkpoint's `last_seq`), in
    /// sequence order, at most `limit`, only `aggregate`'s when given.
    fn events<'a>(
        &'a self,
        world: &'a str,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<DomainEvent>>;
}

/// Durable events kept per world by default, newest first; older ones are removed at
/// checkpoints so the log does not grow without bound.
pub const KEEP_EVENTS: u64 = 1_000_000;

/// The durable event log of one world (`GET /api/events`), over its store.
pub struct WorldEvents {
    store: Arc<dyn WorldStore>,
    world: String,
}

impl WorldEvents {
    pub fn new(store: Arc<dyn WorldStore>, world: &str) -> Self {
        WorldEvents {
            store,
            world: world.to_string(),
        }
    }
}

impl EventLog for WorldEvents {
    fn events<'a>(
        &'a self,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> DurableFuture<'a, Vec<DomainEvent>> {
        Box::pin(async move {
            self.store
                .events(&self.world, after, limit, aggregate)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

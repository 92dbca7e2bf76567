//! The world's store behind one trait (SPEC 8): checkpoint epochs, recovery and the durable
//! event log, kept in the embedded store by default or in MongoDB when `MONGODB_URI` is set.
//! Calls may block on I/O: they are futures for the tokio side, never called from the tick.

use std::{future::Future, pin::Pin, sync::Arc};

use components::{
    events::DomainEvent,
    persist::{Batch, Recovery},
};

use crate::{EmbeddedStore, StoreError};

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

pub trait WorldStore: Send + Sync + 'static {
    /// `embedded` or `mongodb`, for logs, `/ready` and metrics.
    fn name(&self) -> &'static str;

    /// Writes one epoch: its events and snapshots, then the checkpoint that commits them,
    /// then removes what the checkpoint supersedes.
    fn commit(&self, batch: Arc<Batch>) -> StoreFuture<'_, ()>;

    /// Recovery (SPEC 8): removes what the last checkpoint of `world` does not name, begins
    /// a new incarnation (durably, so no revision is used twice), then reads the checkpoint
    /// and every entity it names (none for a world never checkpointed).
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

/// The embedded store as a [`WorldStore`], on the blocking pool.
#[derive(Clone)]
pub struct Embedded {
    store: Arc<EmbeddedStore>,
    keep_events: u64,
}

impl Embedded {
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        Embedded {
            store,
            keep_events: KEEP_EVENTS,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&EmbeddedStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        let path = store.path().to_owned();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Io {
                    path,
                    message: format!("the store's worker failed: {e}"),
                })
            })
    }
}

impl WorldStore for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn commit(&self, batch: Arc<Batch>) -> StoreFuture<'_, ()> {
        let keep = self.keep_events;
        Box::pin(self.blocking(move |store| store.commit_epoch(&batch, keep)))
    }

    fn recover<'a>(&'a self, world: &'a str) -> StoreFuture<'a, Recovery> {
        let world = world.to_string();
        // One transaction per epoch: nothing uncommitted is ever stored, so there is nothing
        // to remove first.
        Box::pin(self.blocking(move |store| store.recover_world(&world)))
    }

    fn events<'a>(
        &'a self,
        world: &'a str,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<DomainEvent>> {
        let world = world.to_string();
        let aggregate = aggregate.map(str::to_string);
        Box::pin(
            self.blocking(move |store| store.events(&world, after, limit, aggregate.as_deref())),
        )
    }
}

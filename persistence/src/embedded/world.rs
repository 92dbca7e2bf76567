//! The world in the embedded store (docs/storage.md#the-embedded-store): checkpoint epochs,
//! each written in one synced transaction (events, snapshots, then the checkpoint that commits
//! them), recovery of the last checkpoint and the entities it names, incarnations, and the
//! durable event log; and [`Embedded`], the [`WorldStore`] over them on the blocking pool.

use std::sync::Arc;

use components::{
    events::DomainEvent,
    persist::{Batch, Checkpoint, Recovered, Recovery, StoredEntity},
};
use redb::{ReadableDatabase, ReadableTable};

use super::{CHECKPOINTS, EVENTS, EVENTS_BY_AGGREGATE, EmbeddedStore, INCARNATIONS, SNAPSHOTS};
use crate::{KEEP_EVENTS, StoreError, StoreFuture, WorldStore};

impl EmbeddedStore {
    /// Writes one epoch: its events, its snapshots (removing despawned entities), then its
    /// checkpoint, in one transaction synced before it returns. Events are kept newest
    /// `keep_events` per world (0: all).
    pub fn commit_epoch(&self, batch: &Batch, keep_events: u64) -> Result<(), StoreError> {
        let checkpoint = &batch.checkpoint;
        let world = checkpoint.world.as_str();
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut events = txn.open_table(EVENTS).map_err(|e| self.io(e))?;
            let mut by_aggregate = txn
                .open_table(EVENTS_BY_AGGREGATE)
                .map_err(|e| self.io(e))?;
            for event in &batch.events {
                let json = serde_json::to_vec(event).map_err(|e| self.io(e))?;
                events
                    .insert(
                        (world, event.seq),
                        (checkpoint.lease_epoch, checkpoint.epoch, json.as_slice()),
                    )
                    .map_err(|e| self.io(e))?;
                by_aggregate
                    .insert((world, event.aggregate.as_str(), event.seq), ())
                    .map_err(|e| self.io(e))?;
            }
            if keep_events > 0 && checkpoint.last_seq > keep_events {
                let below = checkpoint.last_seq - keep_events;
                let old: Vec<(u64, String)> = {
                    let mut old = Vec::new();
                    for entry in events
                        .range((world, 0)..=(world, below))
                        .map_err(|e| self.io(e))?
                    {
                        let (key, value) = entry.map_err(|e| self.io(e))?;
                        let seq = key.value().1;
                        let event: DomainEvent = serde_json::from_slice(value.value().2)
                            .map_err(|e| self.corrupt(format!("event {seq}"), e))?;
                        old.push((seq, event.aggregate));
                    }
                    old
                };
                for (seq, aggregate) in old {
                    events.remove((world, seq)).map_err(|e| self.io(e))?;
                    by_aggregate
                        .remove((world, aggregate.as_str(), seq))
                        .map_err(|e| self.io(e))?;
                }
            }
            let mut snapshots = txn.open_table(SNAPSHOTS).map_err(|e| self.io(e))?;
            if batch.full {
                // A full epoch names every live entity: whatever else is stored is gone.
                let named: std::collections::HashSet<(&str, &str)> = batch
                    .snapshots
                    .iter()
                    .map(|s| (s.kind.name(), s.ref_id.as_str()))
                    .collect();
                let mut stale: Vec<(String, String)> = Vec::new();
                for entry in snapshots.range((world, "", "")..).map_err(|e| self.io(e))? {
                    let (key, _) = entry.map_err(|e| self.io(e))?;
                    let (key_world, kind, ref_id) = key.value();
                    if key_world != world {
                        break;
                    }
                    if !named.contains(&(kind, ref_id)) {
                        stale.push((kind.to_string(), ref_id.to_string()));
                    }
                }
                for (kind, ref_id) in stale {
                    snapshots
                        .remove((world, kind.as_str(), ref_id.as_str()))
                        .map_err(|e| self.io(e))?;
                }
            }
            for snapshot in &batch.snapshots {
                let key = (world, snapshot.kind.name(), snapshot.ref_id.as_str());
                match &snapshot.state {
                    Some(state) => {
                        let stored = StoredEntity {
                            taken_at: snapshot.taken_at,
                            state: state.clone(),
                        };
                        let json = serde_json::to_vec(&stored).map_err(|e| self.io(e))?;
                        snapshots
                            .insert(
                                key,
                                (checkpoint.lease_epoch, checkpoint.epoch, json.as_slice()),
                            )
                            .map_err(|e| self.io(e))?;
                    }
                    None => {
                        snapshots.remove(key).map_err(|e| self.io(e))?;
                    }
                }
            }
            let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(|e| self.io(e))?;
            let json = serde_json::to_vec(checkpoint).map_err(|e| self.io(e))?;
            checkpoints
                .insert(world, json.as_slice())
                .map_err(|e| self.io(e))?;
        }
        txn.commit().map_err(|e| self.io(e))
    }

    /// The last checkpoint of `world`, if it has one.
    pub fn checkpoint(&self, world: &str) -> Result<Option<Checkpoint>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = txn.open_table(CHECKPOINTS).map_err(|e| self.io(e))?;
        let Some(value) = table.get(world).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| self.corrupt(format!("checkpoint of world {world}"), e))
    }

    /// Begins a new incarnation of `world` (docs/storage.md#clean-up): one above every incarnation
    /// begun or checkpointed before, made durable before it is returned.
    pub fn begin_incarnation(&self, world: &str) -> Result<u64, StoreError> {
        let checkpointed = self.checkpoint(world)?.map_or(0, |c| c.incarnation);
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        let next = {
            let mut table = txn.open_table(INCARNATIONS).map_err(|e| self.io(e))?;
            let begun = table
                .get(world)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value());
            let next = begun.max(checkpointed) + 1;
            table.insert(world, next).map_err(|e| self.io(e))?;
            next
        };
        txn.commit().map_err(|e| self.io(e))?;
        Ok(next)
    }

    /// Recovery: a new incarnation, then the last checkpoint of `world` and every entity it
    /// names.
    pub fn recover_world(&self, world: &str) -> Result<Recovery, StoreError> {
        let incarnation = self.begin_incarnation(world)?;
        Ok(Recovery {
            incarnation,
            world: self.load_world(world, incarnation)?,
        })
    }

    /// The last checkpoint of `world` and every entity it names.
    pub fn load_world(
        &self,
        world: &str,
        incarnation: u64,
    ) -> Result<Option<Recovered>, StoreError> {
        let Some(checkpoint) = self.checkpoint(world)? else {
            return Ok(None);
        };
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = txn.open_table(SNAPSHOTS).map_err(|e| self.io(e))?;
        let mut entities = Vec::new();
        for entry in table.range((world, "", "")..).map_err(|e| self.io(e))? {
            let (key, value) = entry.map_err(|e| self.io(e))?;
            let (key_world, kind, ref_id) = key.value();
            if key_world != world {
                break;
            }
            let (lease_epoch, epoch, json) = value.value();
            if lease_epoch != checkpoint.lease_epoch || epoch > checkpoint.epoch {
                continue;
            }
            let state: StoredEntity = serde_json::from_slice(json)
                .map_err(|e| self.corrupt(format!("snapshot of {kind} {ref_id}"), e))?;
            entities.push(state);
        }
        Ok(Some(Recovered {
            checkpoint,
            entities,
            incarnation,
            events: Vec::new(),
        }))
    }

    /// Durable events of `world` after `after`, in sequence order, at most `limit`, only
    /// those of `aggregate` if given.
    pub fn events(
        &self,
        world: &str,
        after: u64,
        limit: usize,
        aggregate: Option<&str>,
    ) -> Result<Vec<DomainEvent>, StoreError> {
        let last = self.checkpoint(world)?.map_or(0, |c| c.last_seq);
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let events = txn.open_table(EVENTS).map_err(|e| self.io(e))?;
        let decode = |seq: u64, json: &[u8]| -> Result<DomainEvent, StoreError> {
            serde_json::from_slice(json).map_err(|e| self.corrupt(format!("event {seq}"), e))
        };
        let mut found = Vec::new();
        let first = after.saturating_add(1);
        if first > last {
            return Ok(found);
        }
        match aggregate {
            None => {
                for entry in events
                    .range((world, first)..=(world, last))
                    .map_err(|e| self.io(e))?
                    .take(limit)
                {
                    let (key, value) = entry.map_err(|e| self.io(e))?;
                    found.push(decode(key.value().1, value.value().2)?);
                }
            }
            Some(aggregate) => {
                let index = txn
                    .open_table(EVENTS_BY_AGGREGATE)
                    .map_err(|e| self.io(e))?;
                for entry in index
                    .range((world, aggregate, first)..=(world, aggregate, last))
                    .map_err(|e| self.io(e))?
                    .take(limit)
                {
                    let (key, _) = entry.map_err(|e| self.io(e))?;
                    let seq = key.value().2;
                    if let Some(value) = events.get((world, seq)).map_err(|e| self.io(e))? {
                        found.push(decode(seq, value.value().2)?);
                    }
                }
            }
        }
        Ok(found)
    }
}

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
        self.store.on_blocking_pool(work).await
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

//! The world in MongoDB (docs/storage.md#committing-an-epoch): an epoch is written as its
//! events, its snapshots, then the fenced checkpoint that commits them, then older versions
//! are removed (standard operations of MongoDB 6 only: no multi-document transaction, no
//! `Client::bulk_write`); whatever a crash leaves half-written is never counted and is removed
//! by recovery. Also the lease epoch taken from the checkpoint's `fence`, incarnations, and
//! the durable event log.

use std::sync::Arc;

use components::{
    events::DomainEvent,
    persist::{Batch, Checkpoint, EntityState, Recovered, Recovery, SnapshotKind, StoredEntity},
};
use mongodb::{
    bson::{self, Bson, Document, doc},
    options::{FindOptions, UpdateOptions},
};

use super::{CHUNK, MongoStore, from_bson, int, is_duplicate, mongo, to_bson};
use crate::{StoreError, StoreFuture, WorldStore};

impl MongoStore {
    /// Takes this writer's lease epoch for `world` (docs/redis.md#fencing): increments the
    /// checkpoint document's `fence` (creating the document if needed) and keeps the result.
    /// Called by the lease holder before it reads anything else; every checkpoint it writes
    /// afterwards requires `fence` to be unchanged.
    pub async fn take_fence(&mut self, world: &str) -> Result<u64, StoreError> {
        let doc = self
            .checkpoints()
            .find_one_and_update(doc! {"_id": world}, doc! {"$inc": {"fence": 1_i64}})
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After)
            .await
            .map_err(mongo)?
            .ok_or_else(|| StoreError::Mongo(format!("the checkpoint of {world} vanished")))?;
        let fence = int(&doc, "fence").max(1);
        self.lease_epoch = fence;
        Ok(fence as u64)
    }

    fn committed_seq(&self) -> i64 {
        self.committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |c| c.last_seq as i64)
    }

    fn event_doc(&self, world: &str, epoch: i64, event: &DomainEvent) -> Document {
        let json = serde_json::to_value(event).unwrap_or_default();
        let payload = json.get("payload").map_or(Bson::Null, to_bson);
        doc! {
            "_id": format!("{world}:{}", event.seq),
            "world": world,
            "seq": event.seq as i64,
            "type": event.kind.name(),
            "aggregate": &event.aggregate,
            "lease_epoch": self.lease_epoch,
            "epoch": epoch,
            "game_time": event.game_time,
            "real_time": components::time::unix_ms(std::time::SystemTime::now()) as i64,
            "payload": payload,
        }
    }

    async fn write_events(&self, batch: &Batch) -> Result<(), StoreError> {
        let checkpoint = &batch.checkpoint;
        let world = checkpoint.world.as_str();
        let epoch = checkpoint.epoch as i64;
        for chunk in batch.events.chunks(CHUNK) {
            let docs: Vec<Document> = chunk
                .iter()
                .map(|e| self.event_doc(world, epoch, e))
                .collect();
            match self.events().insert_many(docs.clone()).ordered(false).await {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {
                    // Written before (a retried epoch, or a crashed run above the committed
                    // log): replace only what this writer may replace
                    // (docs/storage.md#fencing-rules).
                    let committed = self.committed_seq();
                    for doc in docs {
                        let id = doc.get_str("_id").unwrap_or_default().to_string();
                        // Read what is there, decide, then replace exactly that version (a
                        // compare-and-set on its lease epoch and epoch), with filters of plain
                        // equalities.
                        let held = self
                            .events()
                            .find_one(doc! {"_id": &id})
                            .await
                            .map_err(mongo)?;
                        let Some(held) = held else {
                            self.events().insert_one(doc).await.map_err(mongo)?;
                            continue;
                        };
                        let (lease, held_epoch, seq) = (
                            int(&held, "lease_epoch"),
                            int(&held, "epoch"),
                            int(&held, "seq"),
                        );
                        let replaceable = lease < self.lease_epoch
                            || (lease == self.lease_epoch && seq > committed)
                            // This very epoch, written by an attempt that did not finish.
                            || (lease == self.lease_epoch && held_epoch == epoch);
                        if !replaceable {
                            return Err(if lease > self.lease_epoch {
                                // A newer writer wrote it: this one is fenced out and stops.
                                StoreError::Fenced(format!(
                                    "event {id} belongs to a newer writer (lease epoch {lease}, this one {}); this one stops writing",
                                    self.lease_epoch
                                ))
                            } else {
                                StoreError::Mongo(format!(
                                    "event {id} is held by an earlier epoch of this writer"
                                ))
                            });
                        }
                        let replaced = self
                            .events()
                            .replace_one(
                                doc! {"_id": &id, "lease_epoch": lease, "epoch": held_epoch},
                                doc,
                            )
                            .await
                            .map_err(mongo)?;
                        if replaced.matched_count == 0 {
                            return Err(StoreError::Mongo(format!(
                                "event {id} changed while it was written; trying again"
                            )));
                        }
                    }
                }
                Err(e) => return Err(mongo(e)),
            }
        }
        Ok(())
    }

    /// The `snapshots` documents of an epoch (docs/storage.md#snapshots).
    pub fn snapshot_documents(&self, batch: &Batch) -> Vec<Document> {
        let checkpoint = &batch.checkpoint;
        let world = checkpoint.world.as_str();
        let epoch = checkpoint.epoch as i64;
        let now = bson::DateTime::now();
        batch
            .snapshots
            .iter()
            .map(|s| {
                doc! {
                    "world": world,
                    "kind": s.kind.name(),
                    "ref_id": &s.ref_id,
                    "lease_epoch": self.lease_epoch,
                    "epoch": epoch,
                    "state": s.state.as_ref().map_or(Bson::Null, to_bson),
                    "taken_at": s.taken_at,
                    "deleted": s.state.is_none(),
                    "updated_at": now,
                }
            })
            .collect()
    }

    async fn write_snapshots(&self, batch: &Batch) -> Result<(), StoreError> {
        let checkpoint = &batch.checkpoint;
        let world = checkpoint.world.as_str();
        let epoch = checkpoint.epoch as i64;
        let all = self.snapshot_documents(batch);
        for chunk in all.chunks(CHUNK) {
            let docs = chunk.to_vec();
            match self
                .snapshots()
                .insert_many(docs.clone())
                .ordered(false)
                .await
            {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {
                    for doc in docs {
                        let filter = doc! {
                            "world": world,
                            "kind": doc.get_str("kind").unwrap_or_default(),
                            "ref_id": doc.get_str("ref_id").unwrap_or_default(),
                            "lease_epoch": self.lease_epoch,
                            "epoch": epoch,
                        };
                        self.snapshots()
                            .replace_one(filter, doc)
                            .upsert(true)
                            .await
                            .map_err(mongo)?;
                    }
                }
                Err(e) => return Err(mongo(e)),
            }
        }
        Ok(())
    }

    async fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let fields = doc! {
            "fence": self.lease_epoch,
            "lease_epoch": self.lease_epoch,
            "epoch": checkpoint.epoch as i64,
            "incarnation": checkpoint.incarnation as i64,
            "last_seq": checkpoint.last_seq as i64,
            "stream_id": checkpoint.stream_id.map(|e| e.to_string()),
            "log_seq": checkpoint.log_seq as i64,
            "game_seconds": checkpoint.game_seconds,
            "tick": checkpoint.tick as i64,
            "data_hash": &checkpoint.data_hash,
            "scenario_hash": &checkpoint.scenario_hash,
            "scenario": &checkpoint.scenario,
            "updated_at": bson::DateTime::from_millis(checkpoint.updated_at as i64),
            "updated_ms": checkpoint.updated_at as i64,
            "sandbox": checkpoint
                .sandbox
                .map(|s| doc! {"paused": s.paused, "speed": s.speed}),
            "maintenance": checkpoint.maintenance.clone(),
        };
        let filter = doc! {
            "_id": &checkpoint.world,
            "$or": [{"fence": self.lease_epoch}, {"fence": {"$exists": false}}],
        };
        match self
            .checkpoints()
            .update_one(filter, doc! {"$set": fields})
            .with_options(UpdateOptions::builder().upsert(true).build())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(StoreError::Fenced(format!(
                "the checkpoint of world {} is fenced by a newer writer; this one stops writing",
                checkpoint.world
            ))),
            Err(e) => Err(mongo(e)),
        }
    }

    /// Removes what a committed epoch supersedes, tombstones last: a tombstone goes only
    /// once nothing older it hides is left, so a crash or a failure at any step leaves
    /// nothing that could bring an entity back.
    async fn remove_superseded(&self, batch: &Batch) -> Result<(), StoreError> {
        let checkpoint = &batch.checkpoint;
        let world = checkpoint.world.as_str();
        let epoch = checkpoint.epoch as i64;
        if batch.full {
            // A full checkpoint names every live entity: older versions of anything, and
            // older generations, never count. States first, then older tombstones.
            for deleted in [false, true] {
                self.snapshots()
                    .delete_many(doc! {
                        "world": world,
                        "lease_epoch": {"$lte": self.lease_epoch},
                        "epoch": {"$lt": epoch},
                        "deleted": deleted,
                    })
                    .await
                    .map_err(mongo)?;
            }
        } else {
            for kind in SnapshotKind::ALL {
                let ids: Vec<&str> = batch
                    .snapshots
                    .iter()
                    .filter(|s| s.kind == kind)
                    .map(|s| s.ref_id.as_str())
                    .collect();
                for chunk in ids.chunks(CHUNK) {
                    self.snapshots()
                        .delete_many(doc! {
                            "world": world,
                            "kind": kind.name(),
                            "ref_id": {"$in": chunk},
                            "lease_epoch": {"$lte": self.lease_epoch},
                            "epoch": {"$lt": epoch},
                        })
                        .await
                        .map_err(mongo)?;
                }
            }
        }
        self.snapshots()
            .delete_many(doc! {
                "world": world,
                "lease_epoch": self.lease_epoch,
                "epoch": epoch,
                "deleted": true,
            })
            .await
            .map_err(mongo)?;
        if checkpoint.last_seq > crate::KEEP_EVENTS {
            self.events()
                .delete_many(doc! {
                    "world": world,
                    "seq": {"$lte": (checkpoint.last_seq - crate::KEEP_EVENTS) as i64},
                })
                .await
                .map_err(mongo)?;
        }
        Ok(())
    }

    async fn commit_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        self.write_events(batch).await?;
        self.write_snapshots(batch).await?;
        self.write_checkpoint(&batch.checkpoint).await?;
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(batch.checkpoint.clone());
        // Committed. Removing what it supersedes only saves space: what is left counts for
        // nothing (older epochs lose to newer ones) and goes with a later epoch's clean-up.
        if let Err(e) = self.remove_superseded(batch).await {
            tracing::warn!(epoch = batch.checkpoint.epoch, error = %e, "older snapshot versions were not removed");
        }
        Ok(())
    }

    async fn read_checkpoint(&self, world: &str) -> Result<Option<Checkpoint>, StoreError> {
        let Some(doc) = self
            .checkpoints()
            .find_one(doc! {"_id": world})
            .await
            .map_err(mongo)?
        else {
            return Ok(None);
        };
        if !doc.contains_key("epoch") {
            // A fence taken before any checkpoint was written.
            return Ok(None);
        }
        let int = |key: &str| int(&doc, key);
        let text = |key: &str| doc.get_str(key).unwrap_or_default().to_string();
        Ok(Some(Checkpoint {
            world: world.to_string(),
            lease_epoch: int("lease_epoch") as u64,
            epoch: int("epoch") as u64,
            incarnation: int("incarnation") as u64,
            last_seq: int("last_seq") as u64,
            stream_id: doc.get_str("stream_id").ok().and_then(|s| s.parse().ok()),
            log_seq: int("log_seq") as u64,
            game_seconds: int("game_seconds"),
            tick: int("tick") as u64,
            data_hash: text("data_hash"),
            scenario_hash: doc.get_str("scenario_hash").unwrap_or_default().to_string(),
            scenario: text("scenario"),
            updated_at: match doc.get_datetime("updated_at") {
                Ok(at) => at.timestamp_millis().max(0) as u64,
                Err(_) => int("updated_ms").max(0) as u64,
            },
            sandbox: doc
                .get_document("sandbox")
                .ok()
                .map(|s| components::world::Sandbox {
                    paused: s.get_bool("paused").unwrap_or(false),
                    speed: s.get_f64("speed").ok(),
                }),
            maintenance: doc.get_str("maintenance").ok().map(str::to_string),
        }))
    }

    /// Begins a new incarnation of `world`: `$inc` on the checkpoint document (created with
    /// only that field if the world has none yet), durable before the World starts.
    async fn begin_incarnation(&self, world: &str) -> Result<u64, StoreError> {
        let doc = self
            .checkpoints()
            .find_one_and_update(doc! {"_id": world}, doc! {"$inc": {"incarnation": 1_i64}})
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After)
            .await
            .map_err(mongo)?
            .ok_or_else(|| StoreError::Mongo(format!("the checkpoint of {world} vanished")))?;
        Ok(int(&doc, "incarnation").max(1) as u64)
    }

    async fn recover_world(&self, world: &str) -> Result<Recovery, StoreError> {
        self.create_indexes().await?;
        let state = self.recover_state(world).await?;
        let incarnation = self.begin_incarnation(world).await?;
        Ok(Recovery {
            incarnation,
            world: state.map(|mut r| {
                r.incarnation = incarnation;
                r
            }),
        })
    }

    async fn recover_state(&self, world: &str) -> Result<Option<Recovered>, StoreError> {
        let own = self.lease_epoch;
        let Some(checkpoint) = self.read_checkpoint(world).await? else {
            // Nothing was ever committed: whatever is stored is an unfinished first epoch.
            self.snapshots()
                .delete_many(doc! {"world": world, "lease_epoch": {"$lte": own}})
                .await
                .map_err(mongo)?;
            self.events()
                .delete_many(doc! {"world": world, "lease_epoch": {"$lte": own}})
                .await
                .map_err(mongo)?;
            return Ok(None);
        };
        let lease = checkpoint.lease_epoch as i64;
        let epoch = checkpoint.epoch as i64;
        self.snapshots()
            .delete_many(doc! {"world": world, "lease_epoch": lease, "epoch": {"$gt": epoch}})
            .await
            .map_err(mongo)?;
        self.snapshots()
            .delete_many(doc! {"world": world, "lease_epoch": {"$lt": own, "$ne": lease}})
            .await
            .map_err(mongo)?;
        self.events()
            .delete_many(doc! {
                "world": world,
                "seq": {"$gt": checkpoint.last_seq as i64},
                "lease_epoch": {"$lte": own},
            })
            .await
            .map_err(mongo)?;
        let mut cursor = self
            .snapshots()
            .find(doc! {"world": world, "lease_epoch": lease, "epoch": {"$lte": epoch}})
            .with_options(
                FindOptions::builder()
                    .sort(doc! {"kind": 1, "ref_id": 1, "epoch": 1})
                    .build(),
            )
            .await
            .map_err(mongo)?;
        let mut newest: std::collections::BTreeMap<(String, String), Document> =
            std::collections::BTreeMap::new();
        while cursor.advance().await.map_err(mongo)? {
            let doc = cursor.deserialize_current().map_err(mongo)?;
            let key = (
                doc.get_str("kind").unwrap_or_default().to_string(),
                doc.get_str("ref_id").unwrap_or_default().to_string(),
            );
            newest.insert(key, doc);
        }
        let mut entities = Vec::with_capacity(newest.len());
        for ((kind, ref_id), doc) in newest {
            if doc.get_bool("deleted").unwrap_or(false) {
                continue;
            }
            let state: EntityState = from_bson(doc.get("state").cloned().unwrap_or(Bson::Null))
                .map_err(|e| {
                    StoreError::Mongo(format!("snapshot of {kind} {ref_id} cannot be read: {e}"))
                })?;
            entities.push(StoredEntity {
                taken_at: int(&doc, "taken_at"),
                state,
            });
        }
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(checkpoint.clone());
        Ok(Some(Recovered {
            checkpoint,
            entities,
            incarnation: 0,
            events: Vec::new(),
        }))
    }

    async fn read_events(
        &self,
        world: &str,
        after: u64,
        limit: usize,
        aggregate: Option<&str>,
    ) -> Result<Vec<DomainEvent>, StoreError> {
        let last = self.read_checkpoint(world).await?.map_or(0, |c| c.last_seq);
        if after >= last {
            return Ok(Vec::new());
        }
        let mut filter = doc! {
            "world": world,
            "seq": {"$gt": after as i64, "$lte": last as i64},
        };
        if let Some(aggregate) = aggregate {
            filter.insert("aggregate", aggregate);
        }
        let mut cursor = self
            .events()
            .find(filter)
            .with_options(
                FindOptions::builder()
                    .sort(doc! {"seq": 1})
                    .limit(limit as i64)
                    .build(),
            )
            .await
            .map_err(mongo)?;
        let mut events = Vec::new();
        while cursor.advance().await.map_err(mongo)? {
            let doc = cursor.deserialize_current().map_err(mongo)?;
            let seq = int(&doc, "seq");
            let payload: serde_json::Value =
                from_bson(doc.get("payload").cloned().unwrap_or(Bson::Null))
                    .map_err(|e| StoreError::Mongo(format!("event {seq}: {e}")))?;
            let json = serde_json::json!({
                "seq": seq,
                "type": doc.get_str("type").unwrap_or_default(),
                "payload": payload,
                "game_time": int(&doc, "game_time"),
                "aggregate": doc.get_str("aggregate").unwrap_or_default(),
            });
            events.push(
                serde_json::from_value(json)
                    .map_err(|e| StoreError::Mongo(format!("event {seq} cannot be read: {e}")))?,
            );
        }
        Ok(events)
    }
}

impl WorldStore for MongoStore {
    fn name(&self) -> &'static str {
        "mongodb"
    }

    fn commit(&self, batch: Arc<Batch>) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.commit_batch(&batch).await })
    }

    fn recover<'a>(&'a self, world: &'a str) -> StoreFuture<'a, Recovery> {
        Box::pin(self.recover_world(world))
    }

    fn events<'a>(
        &'a self,
        world: &'a str,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<DomainEvent>> {
        Box::pin(self.read_events(world, after, limit, aggregate))
    }
}

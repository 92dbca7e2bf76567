//! MongoDB (SPEC 8): the readiness probe and [`MongoStore`], the world's store of
//! checkpoints, snapshots and events.

use std::time::Duration;

use mongodb::{Client, bson::doc, options::ClientOptions};

#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    #[error("invalid MONGODB_URI: {0}")]
    Uri(String),
    #[error("MongoDB error: {0}")]
    Driver(String),
}

/// A client for `uri` whose server selection and connections give up after `timeout`, and
/// the URI's database (default `tianxia`). Connecting is lazy.
async fn client(uri: &str, timeout: Duration) -> Result<(Client, String), MongoError> {
    let mut options = ClientOptions::parse(uri)
        .await
        .map_err(|e| MongoError::Uri(e.to_string()))?;
    options.server_selection_timeout = Some(timeout);
    options.connect_timeout = Some(timeout);
    options
        .app_name
        .get_or_insert_with(|| "tianxia".to_string());
    let database = options
        .default_database
        .clone()
        .unwrap_or_else(|| "tianxia".to_string());
    let client = Client::with_options(options).map_err(|e| MongoError::Driver(e.to_string()))?;
    Ok((client, database))
}

/// A MongoDB client that can tell whether the server answers.
#[derive(Clone)]
pub struct MongoProbe {
    client: Client,
}

impl MongoProbe {
    /// Parses `uri` and builds a client whose server selection gives up after `timeout`.
    /// Connecting is lazy: an unreachable server is reported by [`MongoProbe::ping`].
    pub async fn new(uri: &str, timeout: Duration) -> Result<Self, MongoError> {
        let (client, _) = client(uri, timeout).await?;
        Ok(MongoProbe { client })
    }

    /// Runs `ping` against the server.
    pub async fn ping(&self) -> Result<(), MongoError> {
        self.client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(|e| MongoError::Driver(e.to_string()))
    }
}

/// The world's store in MongoDB (SPEC 8): `checkpoints`, `snapshots` and `events`, with
/// their indexes created at start-up. Standard operations of MongoDB 6 only (no
/// multi-document transaction, no `Client::bulk_write`): an epoch is written as its events,
/// its snapshots, then the checkpoint that commits them, then older versions are removed;
/// whatever a crash leaves half-written is never counted and is removed by recovery.
pub struct MongoStore {
    db: mongodb::Database,
    /// The writer's lease generation (0 without a lease).
    lease_epoch: i64,
    /// The last checkpoint this writer committed or recovered.
    committed: std::sync::Mutex<Option<Checkpoint>>,
}

use std::sync::Arc;

use components::{
    events::DomainEvent,
    persist::{Batch, Checkpoint, EntityState, Recovered, Recovery, SnapshotKind, StoredEntity},
};
use mongodb::{
    IndexModel,
    bson::{self, Bson, Document},
    error::{ErrorKind, WriteFailure},
    options::{FindOptions, IndexOptions, UpdateOptions},
};

use crate::{
    StoreError, StoreFuture, WorldStore,
    tokens::{TokenUse, token_use, tokens_to_drop},
};

const DUPLICATE_KEY: i32 = 11_000;
/// Documents per `insert_many` and ids per `$in`.
const CHUNK: usize = 1_000;

fn mongo(error: impl std::fmt::Display) -> StoreError {
    StoreError::Mongo(error.to_string())
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().all(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An integer field, however the server chose to encode it.
fn int(doc: &Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Double(v)) => *v as i64,
        _ => 0,
    }
}

fn to_bson<T: serde::Serialize>(value: &T) -> Bson {
    // Every stored shape fits BSON; should one not, it is kept as its JSON text.
    bson::serialize_to_bson(value)
        .unwrap_or_else(|_| Bson::String(serde_json::to_string(value).unwrap_or_default()))
}

fn from_bson<T: serde::de::DeserializeOwned>(value: Bson) -> Result<T, String> {
    match value {
        Bson::String(text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
        other => bson::deserialize_from_bson(other).map_err(|e| e.to_string()),
    }
}

impl MongoStore {
    /// A store in the database of `uri` (default `tianxia`). Connecting is lazy: recovery
    /// creates the indexes and reads first.
    pub async fn connect(uri: &str, timeout: Duration) -> Result<MongoStore, MongoError> {
        let (client, database) = client(uri, timeout).await?;
        Ok(MongoStore {
            db: client.database(&database),
            lease_epoch: 0,
            committed: std::sync::Mutex::new(None),
        })
    }

    /// Takes this writer's lease epoch for `world` (SPEC 7 fencing): increments the
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

    /// Creates the indexes of SPEC 8 (at start-up, before recovery reads anything).
    pub async fn create_indexes(&self) -> Result<(), StoreError> {
        let driver = mongo;
        self.snapshots()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"world": 1, "kind": 1, "ref_id": 1, "lease_epoch": 1, "epoch": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await
            .map_err(driver)?;
        self.events()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"world": 1, "aggregate": 1, "seq": 1})
                    .build(),
            )
            .await
            .map_err(driver)?;
        self.events()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"world": 1, "seq": 1})
                    .build(),
            )
            .await
            .map_err(driver)?;
        self.players()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"name": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await
            .map_err(driver)?;
        self.tokens()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"expires_at": 1})
                    .options(
                        IndexOptions::builder()
                            .expire_after(Duration::from_secs(0))
                            .build(),
                    )
                    .build(),
            )
            .await
            .map_err(driver)?;
        self.tokens()
            .create_index(IndexModel::builder().keys(doc! {"player": 1}).build())
            .await
            .map_err(driver)?;
        Ok(())
    }

    fn players(&self) -> mongodb::Collection<Document> {
        self.db.collection("players")
    }

    fn tokens(&self) -> mongodb::Collection<Document> {
        self.db.collection("tokens")
    }

    /// Stores a new player (`players`, SPEC 8); `false` if the id or the name is taken.
    pub async fn create_player(&self, player: &crate::StoredPlayer) -> Result<bool, StoreError> {
        let doc = doc! {
            "_id": &player.id,
            "name": &player.name,
            "password_hash": &player.password_hash,
            "created_at": bson::DateTime::now(),
        };
        match self.players().insert_one(doc).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(mongo(e)),
        }
    }

    pub async fn player(&self, id: &str) -> Result<Option<crate::StoredPlayer>, StoreError> {
        let found = self
            .players()
            .find_one(doc! {"_id": id})
            .await
            .map_err(mongo)?;
        Ok(found.map(|doc| crate::StoredPlayer {
            id: id.to_string(),
            name: doc.get_str("name").unwrap_or_default().to_string(),
            password_hash: doc.get_str("password_hash").unwrap_or_default().to_string(),
        }))
    }

    /// Stores a token hash (`tokens`, with a TTL index on `expires_at`) for `player` until
    /// `expires` (Unix ms); drops the player's expired tokens and its oldest beyond `keep`.
    pub async fn put_token(
        &self,
        hash: &[u8; 32],
        player: &str,
        expires: u64,
        now: u64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let id = hex(hash);
        self.tokens()
            .replace_one(
                doc! {"_id": &id},
                doc! {
                    "_id": &id,
                    "player": player,
                    "expires_at": bson::DateTime::from_millis(expires as i64),
                    "expires_ms": expires as i64,
                },
            )
            .upsert(true)
            .await
            .map_err(mongo)?;
        let mut cursor = self
            .tokens()
            .find(doc! {"player": player})
            .await
            .map_err(mongo)?;
        let mut held = Vec::new();
        while cursor.advance().await.map_err(mongo)? {
            let doc = cursor.deserialize_current().map_err(mongo)?;
            let token = doc.get_str("_id").unwrap_or_default().to_string();
            held.push((int(&doc, "expires_ms").max(0) as u64, token));
        }
        // The new token is among those held.
        let drop = tokens_to_drop(held, now, keep.max(1));
        if !drop.is_empty() {
            self.tokens()
                .delete_many(doc! {"_id": {"$in": drop}})
                .await
                .map_err(mongo)?;
        }
        Ok(())
    }

    /// The player a token hash belongs to if it has not expired by `now`; its expiry moves
    /// to `refresh_to` when that is at least `refresh_after` ms later.
    pub async fn use_token(
        &self,
        hash: &[u8; 32],
        now: u64,
        refresh_to: u64,
        refresh_after: u64,
    ) -> Result<Option<String>, StoreError> {
        let id = hex(hash);
        let Some(doc) = self
            .tokens()
            .find_one(doc! {"_id": &id})
            .await
            .map_err(mongo)?
        else {
            return Ok(None);
        };
        let expires = int(&doc, "expires_ms").max(0) as u64;
        match token_use(expires, now, refresh_to, refresh_after) {
            TokenUse::Expired => {
                self.revoke_token(hash).await?;
                return Ok(None);
            }
            TokenUse::Valid(Some(refresh_to)) => {
                self.tokens()
                    .update_one(
                        doc! {"_id": &id},
                        doc! {"$set": {
                            "expires_at": bson::DateTime::from_millis(refresh_to as i64),
                            "expires_ms": refresh_to as i64,
                        }},
                    )
                    .await
                    .map_err(mongo)?;
            }
            TokenUse::Valid(None) => {}
        }
        Ok(doc.get_str("player").ok().map(str::to_string))
    }

    pub async fn revoke_token(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.tokens()
            .delete_one(doc! {"_id": hex(hash)})
            .await
            .map_err(mongo)?;
        Ok(())
    }

    fn checkpoints(&self) -> mongodb::Collection<Document> {
        self.db.collection("checkpoints")
    }

    fn snapshots(&self) -> mongodb::Collection<Document> {
        self.db.collection("snapshots")
    }

    fn events(&self) -> mongodb::Collection<Document> {
        self.db.collection("events")
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
                    // log): replace only what SPEC 8 lets this writer replace.
                    let committed = self.committed_seq();
                    for doc in docs {
                        let id = doc.get_str("_id").unwrap_or_default().to_string();
                        let filter = doc! {
                            "_id": &id,
                            "$or": [
                                {"lease_epoch": {"$lt": self.lease_epoch}},
                                {"lease_epoch": self.lease_epoch, "seq": {"$gt": committed}},
                                // This very epoch, written by an attempt that did not finish.
                                {"lease_epoch": self.lease_epoch, "epoch": epoch},
                            ],
                        };
                        let replaced = self
                            .events()
                            .replace_one(filter, doc)
                            .await
                            .map_err(mongo)?;
                        if replaced.matched_count == 0
                            && self
                                .events()
                                .count_documents(doc! {"_id": &id})
                                .await
                                .map_err(mongo)?
                                == 0
                        {
                            return Err(StoreError::Mongo(format!(
                                "event {id} could not be written"
                            )));
                        }
                        if replaced.matched_count == 0 {
                            return Err(StoreError::Mongo(format!(
                                "event {id} belongs to a newer writer; this one stops writing"
                            )));
                        }
                    }
                }
                Err(e) => return Err(mongo(e)),
            }
        }
        Ok(())
    }

    /// The `snapshots` documents of an epoch (SPEC 8 shape).
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

    /// Inserts `docs` into `collection` (indexed as `snapshots` is) with plain unordered
    /// `insert_many` calls: the raw driver's cost, the baseline of `bench flush`.
    pub async fn insert_raw(
        &self,
        collection: &str,
        docs: Vec<Document>,
    ) -> Result<(), StoreError> {
        let collection = self.db.collection::<Document>(collection);
        // The same unique index as `snapshots`: its upkeep is the schema's, not the store's.
        collection
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"world": 1, "kind": 1, "ref_id": 1, "lease_epoch": 1, "epoch": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await
            .map_err(mongo)?;
        for chunk in docs.chunks(CHUNK) {
            collection
                .insert_many(chunk.to_vec())
                .ordered(false)
                .await
                .map_err(mongo)?;
        }
        Ok(())
    }

    /// Removes a world's checkpoint, snapshots and events, and drops `scratch` (benchmarks
    /// clean up after themselves).
    pub async fn remove_world(&self, world: &str, scratch: &str) -> Result<(), StoreError> {
        self.checkpoints()
            .delete_one(doc! {"_id": world})
            .await
            .map_err(mongo)?;
        self.snapshots()
            .delete_many(doc! {"world": world})
            .await
            .map_err(mongo)?;
        self.events()
            .delete_many(doc! {"world": world})
            .await
            .map_err(mongo)?;
        self.db
            .collection::<Document>(scratch)
            .drop()
            .await
            .map_err(mongo)
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
            "scenario": &checkpoint.scenario,
            "updated_at": bson::DateTime::from_millis(checkpoint.updated_at as i64),
            "updated_ms": checkpoint.updated_at as i64,
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
            scenario: text("scenario"),
            updated_at: match doc.get_datetime("updated_at") {
                Ok(at) => at.timestamp_millis().max(0) as u64,
                Err(_) => int("updated_ms").max(0) as u64,
            },
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

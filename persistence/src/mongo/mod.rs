//! MongoDB (docs/storage.md#mongodb): the readiness probe and [`MongoStore`], a connection to
//! the world's database: the world's checkpoints, snapshots and events
//! ([`world`](self::world)), the players' accounts ([`accounts`](self::accounts)), and what
//! `bench flush` measures against the raw driver ([`bench`](self::bench)). Every call is
//! async I/O on the tokio side; the World never calls it.

pub mod accounts;
pub mod bench;
pub mod world;

use std::time::Duration;

use components::persist::Checkpoint;
use mongodb::{
    Client, IndexModel,
    bson::{self, Bson, Document, doc},
    error::{ErrorKind, WriteFailure},
    options::{ClientOptions, IndexOptions},
};

pub use accounts::MongoAccounts;

use crate::StoreError;

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

/// The world's database in MongoDB: `checkpoints`, `snapshots` and `events`, with
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

/// An index on `keys`.
fn index(keys: Document, options: Option<IndexOptions>) -> IndexModel {
    IndexModel::builder().keys(keys).options(options).build()
}

/// The unique index of `snapshots`: one document per entity, lease epoch and epoch.
pub(crate) fn snapshots_index() -> IndexModel {
    index(
        doc! {"world": 1, "kind": 1, "ref_id": 1, "lease_epoch": 1, "epoch": 1},
        Some(IndexOptions::builder().unique(true).build()),
    )
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

    /// Creates the indexes of the collections (docs/storage.md#mongodb), at start-up before
    /// recovery reads anything.
    pub async fn create_indexes(&self) -> Result<(), StoreError> {
        let unique = || IndexOptions::builder().unique(true).build();
        let expiring = IndexOptions::builder()
            .expire_after(Duration::from_secs(0))
            .build();
        let indexes = [
            (self.snapshots(), snapshots_index()),
            (
                self.events(),
                index(doc! {"world": 1, "aggregate": 1, "seq": 1}, None),
            ),
            (self.events(), index(doc! {"world": 1, "seq": 1}, None)),
            (self.players(), index(doc! {"name": 1}, Some(unique()))),
            (self.tokens(), index(doc! {"expires_at": 1}, Some(expiring))),
            (self.tokens(), index(doc! {"player": 1}, None)),
        ];
        for (collection, index) in indexes {
            collection.create_index(index).await.map_err(mongo)?;
        }
        Ok(())
    }

    fn players(&self) -> mongodb::Collection<Document> {
        self.db.collection("players")
    }

    fn tokens(&self) -> mongodb::Collection<Document> {
        self.db.collection("tokens")
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
}

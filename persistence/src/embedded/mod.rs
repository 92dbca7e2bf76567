//! The embedded store (docs/storage.md#the-embedded-store, the default without MongoDB): one
//! redb database file under the data directory, `tianxia.redb`, crash-safe (every commit is
//! synced before it returns). It holds what must outlive the process: the players' accounts and
//! token hashes and the world's checkpoints, snapshots and durable events. An epoch is written
//! in one transaction (events, snapshots, then the checkpoint that commits them), so nothing of
//! a half-written epoch is ever read back; the command log has a file of its own
//! ([`crate::CommandLog`]), so a large epoch never holds up a command's 202.
//!
//! Every call does file I/O and may block on a sync: callers on an async runtime run it on the
//! blocking pool, and the World never calls it. A file that is not a redb database, or is
//! damaged, is an error that names the file.

mod accounts;
mod world;

use std::{path::Path, sync::Arc};

use redb::{MultimapTableDefinition, TableDefinition};

pub use accounts::EmbeddedAccounts;
pub use world::Embedded;

use crate::{DataDir, StoreError, redb_file::RedbFile};

/// Players by id: (name, Argon2 password hash).
pub(crate) const PLAYERS: TableDefinition<&str, (&str, &str)> = TableDefinition::new("players");
/// Token hashes: (player id, expiry in Unix milliseconds).
pub(crate) const TOKENS: TableDefinition<&[u8], (&str, u64)> = TableDefinition::new("tokens");
/// Each player's token hashes.
pub(crate) const PLAYER_TOKENS: MultimapTableDefinition<&str, &[u8]> =
    MultimapTableDefinition::new("player_tokens");
/// Checkpoints by world: the JSON of [`components::persist::Checkpoint`].
pub(crate) const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
/// Snapshots by (world, kind, ref_id): (lease epoch, epoch, JSON of the
/// [`components::persist::StoredEntity`]). A
/// despawned entity's entry is removed in the epoch's transaction (its tombstone).
pub(crate) type SnapshotKey<'a> = (&'a str, &'a str, &'a str);
/// (lease epoch, epoch, JSON).
pub(crate) type Stamped<'a> = (u64, u64, &'a [u8]);
pub(crate) const SNAPSHOTS: TableDefinition<SnapshotKey, Stamped> =
    TableDefinition::new("snapshots");
/// Durable events by (world, seq): (lease epoch, epoch, JSON of the
/// [`components::events::DomainEvent`]).
pub(crate) const EVENTS: TableDefinition<(&str, u64), Stamped> = TableDefinition::new("events");
/// The last incarnation each world's recovery began (docs/storage.md#names).
pub(crate) const INCARNATIONS: TableDefinition<&str, u64> = TableDefinition::new("incarnations");
/// Event sequence numbers by (world, aggregate, seq), for `aggregate=` queries.
pub(crate) const EVENTS_BY_AGGREGATE: TableDefinition<(&str, &str, u64), ()> =
    TableDefinition::new("events_by_aggregate");

pub struct EmbeddedStore {
    file: RedbFile,
}

impl std::ops::Deref for EmbeddedStore {
    type Target = RedbFile;
    fn deref(&self) -> &RedbFile {
        &self.file
    }
}

impl EmbeddedStore {
    pub const FILE: &'static str = "tianxia.redb";

    /// Opens (or creates) the store in a data directory this process holds.
    pub fn open(dir: &DataDir) -> Result<EmbeddedStore, StoreError> {
        Self::open_file(&dir.path().join(Self::FILE), dir.is_new())
    }

    fn open_file(path: &Path, may_create: bool) -> Result<EmbeddedStore, StoreError> {
        let store = EmbeddedStore {
            file: RedbFile::open(path, may_create)?,
        };
        // Create the tables, so readers find them.
        store.file.guarded(|| {
            let txn = store.db.begin_write().map_err(|e| store.io(e))?;
            txn.open_table(PLAYERS).map_err(|e| store.io(e))?;
            txn.open_table(TOKENS).map_err(|e| store.io(e))?;
            txn.open_multimap_table(PLAYER_TOKENS)
                .map_err(|e| store.io(e))?;
            txn.open_table(CHECKPOINTS).map_err(|e| store.io(e))?;
            txn.open_table(SNAPSHOTS).map_err(|e| store.io(e))?;
            txn.open_table(EVENTS).map_err(|e| store.io(e))?;
            txn.open_table(EVENTS_BY_AGGREGATE)
                .map_err(|e| store.io(e))?;
            txn.open_table(INCARNATIONS).map_err(|e| store.io(e))?;
            txn.commit().map_err(|e| store.io(e))
        })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file still works (readiness reports a dead one).
    pub fn health(&self) -> std::sync::Arc<crate::FileHealth> {
        self.file.health()
    }

    /// Runs `work` on this store from the blocking pool: every call may wait on a sync, so
    /// none runs on an async worker.
    pub async fn on_blocking_pool<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&EmbeddedStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        let path = store.path().to_owned();
        tokio::task::spawn_blocking(move || store.file.guarded(|| work(&store)))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Io {
                    path,
                    message: format!("the store's worker failed: {e}"),
                })
            })
    }
}

#[cfg(test)]
mod tests;

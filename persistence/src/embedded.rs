//! The embedded store (SPEC 8, the default without MongoDB): one redb database file under
//! the data directory, `tianxia.redb`, crash-safe (every commit is synced before it returns).
//! It holds what must outlive the process: the players' accounts and token hashes (SPEC 2.2,
//! 5) and the world's checkpoints, snapshots and durable events (SPEC 8). An epoch is written
//! in one transaction (events, snapshots, then the checkpoint that commits them), so nothing
//! of a half-written epoch is ever read back; the command log has a file of its own
//! ([`crate::CommandLog`]), so a large epoch never holds up a command's 202.
//!
//! Every call does file I/O and may block on a sync: callers on an async runtime run it on
//! the blocking pool, and the World never calls it. A file that is not a redb database, or is
//! damaged, is an error that names the file.

use std::path::{Path, PathBuf};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

use components::{
    events::DomainEvent,
    persist::{Batch, Checkpoint, Recovered, Recovery, StoredEntity},
};

use crate::{
    DataDir,
    tokens::{TokenUse, token_use, tokens_to_drop},
};

/// Players by id: (name, Argon2 password hash).
const PLAYERS: TableDefinition<&str, (&str, &str)> = TableDefinition::new("players");
/// Token hashes: (player id, expiry in Unix milliseconds).
const TOKENS: TableDefinition<&[u8], (&str, u64)> = TableDefinition::new("tokens");
/// Each player's token hashes.
const PLAYER_TOKENS: MultimapTableDefinition<&str, &[u8]> =
    MultimapTableDefinition::new("player_tokens");
/// Checkpoints by world: the JSON of [`Checkpoint`].
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
/// Snapshots by (world, kind, ref_id): (lease epoch, epoch, JSON of the [`StoredEntity`]). A
/// despawned entity's entry is removed in the epoch's transaction (its tombstone).
type SnapshotKey<'a> = (&'a str, &'a str, &'a str);
/// (lease epoch, epoch, JSON).
type Stamped<'a> = (u64, u64, &'a [u8]);
const SNAPSHOTS: TableDefinition<SnapshotKey, Stamped> = TableDefinition::new("snapshots");
/// Durable events by (world, seq): (lease epoch, epoch, JSON of the [`DomainEvent`]).
const EVENTS: TableDefinition<(&str, u64), Stamped> = TableDefinition::new("events");
/// The last incarnation each world's recovery began (SPEC 2.5 revisions).
const INCARNATIONS: TableDefinition<&str, u64> = TableDefinition::new("incarnations");
/// Event sequence numbers by (world, aggregate, seq), for `aggregate=` queries.
const EVENTS_BY_AGGREGATE: TableDefinition<(&str, &str, u64), ()> =
    TableDefinition::new("events_by_aggregate");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the embedded store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("the embedded store {path} failed: {message}")]
    Io { path: PathBuf, message: String },
    #[error("MongoDB: {0}")]
    Mongo(String),
    /// A newer writer took the world (SPEC 7 fencing): this one must stop.
    #[error("{0}")]
    Fenced(String),
    #[error("the embedded store {path} holds a record that cannot be read ({what}): {message}")]
    Corrupt {
        path: PathBuf,
        what: String,
        message: String,
    },
}

/// A player as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPlayer {
    pub id: String,
    pub name: String,
    pub password_hash: String,
}

/// A redb database file and its path, for errors that name it.
pub struct RedbFile {
    pub(crate) db: Database,
    pub(crate) path: PathBuf,
}

impl RedbFile {
    /// Opens (or creates) the file; a file that is not a redb database, or is damaged, is
    /// an error naming it.
    pub(crate) fn open(path: &Path) -> Result<RedbFile, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(RedbFile {
            db,
            path: path.to_owned(),
        })
    }

    pub(crate) fn io(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            message: error.to_string(),
        }
    }

    pub(crate) fn corrupt(
        &self,
        what: impl Into<String>,
        error: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
            message: error.to_string(),
        }
    }
}

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
        Self::open_file(&dir.path().join(Self::FILE))
    }

    fn open_file(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let store = EmbeddedStore {
            file: RedbFile::open(path)?,
        };
        // Create the tables, so readers find them.
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
        txn.commit().map_err(|e| store.io(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a new player; `false` if the id is taken.
    pub fn create_player(&self, player: &StoredPlayer) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        let created = {
            let mut table = txn.open_table(PLAYERS).map_err(|e| self.io(e))?;
            if table
                .get(player.id.as_str())
                .map_err(|e| self.io(e))?
                .is_some()
            {
                false
            } else {
                table
                    .insert(
                        player.id.as_str(),
                        (player.name.as_str(), player.password_hash.as_str()),
                    )
                    .map_err(|e| self.io(e))?;
                true
            }
        };
        txn.commit().map_err(|e| self.io(e))?;
        Ok(created)
    }

    pub fn player(&self, id: &str) -> Result<Option<StoredPlayer>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = txn.open_table(PLAYERS).map_err(|e| self.io(e))?;
        let found = table.get(id).map_err(|e| self.io(e))?.map(|v| {
            let (name, hash) = v.value();
            StoredPlayer {
                id: id.to_string(),
                name: name.to_string(),
                password_hash: hash.to_string(),
            }
        });
        Ok(found)
    }

    /// Stores a token hash for `player` until `expires` (Unix ms). Drops the player's expired
    /// tokens, and its oldest beyond `keep`.
    pub fn put_token(
        &self,
        hash: &[u8; 32],
        player: &str,
        expires: u64,
        now: u64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut tokens = txn.open_table(TOKENS).map_err(|e| self.io(e))?;
            let mut by_player = txn
                .open_multimap_table(PLAYER_TOKENS)
                .map_err(|e| self.io(e))?;
            let mut held: Vec<(u64, Vec<u8>)> = Vec::new();
            for entry in by_player.get(player).map_err(|e| self.io(e))? {
                let key = entry.map_err(|e| self.io(e))?.value().to_vec();
                let expiry = tokens
                    .get(key.as_slice())
                    .map_err(|e| self.io(e))?
                    .map_or(0, |v| v.value().1);
                held.push((expiry, key));
            }
            for key in tokens_to_drop(held, now, keep.max(1) - 1) {
                tokens.remove(key.as_slice()).map_err(|e| self.io(e))?;
                by_player
                    .remove(player, key.as_slice())
                    .map_err(|e| self.io(e))?;
            }
            tokens
                .insert(hash.as_slice(), (player, expires))
                .map_err(|e| self.io(e))?;
            by_player
                .insert(player, hash.as_slice())
                .map_err(|e| self.io(e))?;
        }
        txn.commit().map_err(|e| self.io(e))
    }

    /// The player a token hash belongs to if it has not expired by `now`. Its expiry moves to
    /// `refresh_to` when that is at least `refresh_after` ms later than stored, so a busy
    /// token costs one write now and then, not one per request.
    pub fn use_token(
        &self,
        hash: &[u8; 32],
        now: u64,
        refresh_to: u64,
        refresh_after: u64,
    ) -> Result<Option<String>, StoreError> {
        let found = {
            let txn = self.db.begin_read().map_err(|e| self.io(e))?;
            let table = txn.open_table(TOKENS).map_err(|e| self.io(e))?;
            table
                .get(hash.as_slice())
                .map_err(|e| self.io(e))?
                .map(|v| (v.value().0.to_string(), v.value().1))
        };
        let Some((player, expires)) = found else {
            return Ok(None);
        };
        let refresh_to = match token_use(expires, now, refresh_to, refresh_after) {
            TokenUse::Expired => {
                self.revoke_token(hash)?;
                return Ok(None);
            }
            TokenUse::Valid(refresh) => refresh,
        };
        if let Some(refresh_to) = refresh_to {
            let txn = self.db.begin_write().map_err(|e| self.io(e))?;
            {
                let mut table = txn.open_table(TOKENS).map_err(|e| self.io(e))?;
                table
                    .insert(hash.as_slice(), (player.as_str(), refresh_to))
                    .map_err(|e| self.io(e))?;
            }
            txn.commit().map_err(|e| self.io(e))?;
        }
        Ok(Some(player))
    }

    pub fn revoke_token(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut tokens = txn.open_table(TOKENS).map_err(|e| self.io(e))?;
            let player = tokens
                .remove(hash.as_slice())
                .map_err(|e| self.io(e))?
                .map(|v| v.value().0.to_string());
            if let Some(player) = player {
                let mut by_player = txn
                    .open_multimap_table(PLAYER_TOKENS)
                    .map_err(|e| self.io(e))?;
                by_player
                    .remove(player.as_str(), hash.as_slice())
                    .map_err(|e| self.io(e))?;
            }
        }
        txn.commit().map_err(|e| self.io(e))
    }
}

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

    /// Begins a new incarnation of `world` (SPEC 2.5, 8): one above every incarnation
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

#[cfg(test)]
mod tests {
    use super::*;
    use components::persist::EntityState;

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_file(&dir.path().join(EmbeddedStore::FILE)).unwrap();
        (dir, store)
    }

    #[test]
    fn players_and_tokens_survive_reopening() {
        let (dir, store) = store();
        let alice = StoredPlayer {
            id: "alice".into(),
            name: "Alice".into(),
            password_hash: "$argon2id$x".into(),
        };
        assert!(store.create_player(&alice).unwrap());
        assert!(!store.create_player(&alice).unwrap(), "ids are unique");
        store.put_token(&[1; 32], "alice", 1_000, 0, 16).unwrap();
        drop(store);
        let store = EmbeddedStore::open_file(&dir.path().join(EmbeddedStore::FILE)).unwrap();
        assert_eq!(store.player("alice").unwrap(), Some(alice));
        assert_eq!(store.player("bob").unwrap(), None);
        assert_eq!(
            store
                .use_token(&[1; 32], 10, 1_010, 500)
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            store
                .use_token(&[1; 32], 999, 1_999, 500)
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        // Refreshed at 999: alive past the first expiry.
        assert!(
            store
                .use_token(&[1; 32], 1_500, 2_500, 500)
                .unwrap()
                .is_some()
        );
        store.revoke_token(&[1; 32]).unwrap();
        assert_eq!(store.use_token(&[1; 32], 1_600, 2_600, 500).unwrap(), None);
        assert_eq!(store.use_token(&[9; 32], 0, 10, 5).unwrap(), None);
    }

    #[test]
    fn expired_and_excess_tokens_are_dropped() {
        let (_dir, store) = store();
        store.put_token(&[1; 32], "p", 100, 0, 2).unwrap();
        store.put_token(&[2; 32], "p", 200, 0, 2).unwrap();
        store.put_token(&[3; 32], "p", 300, 0, 2).unwrap();
        assert_eq!(
            store.use_token(&[1; 32], 50, 60, 1_000).unwrap(),
            None,
            "oldest dropped"
        );
        assert!(store.use_token(&[2; 32], 50, 60, 1_000).unwrap().is_some());
        assert!(store.use_token(&[3; 32], 50, 60, 1_000).unwrap().is_some());
        // At 250 the second has expired: a new token replaces it without dropping the third.
        store.put_token(&[4; 32], "p", 400, 250, 2).unwrap();
        assert!(
            store
                .use_token(&[3; 32], 260, 270, 1_000)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .use_token(&[4; 32], 260, 270, 1_000)
                .unwrap()
                .is_some()
        );
    }

    fn epoch(
        epoch: u64,
        snapshots: Vec<(&str, Option<i64>)>,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> Batch {
        use components::{
            events::EventKind,
            persist::{PlayerState, Snapshot, SnapshotKind},
        };
        Batch {
            checkpoint: Checkpoint {
                world: "w".into(),
                lease_epoch: 0,
                epoch,
                incarnation: 1,
                last_seq: *seqs.end(),
                stream_id: None,
                log_seq: epoch * 10,
                game_seconds: epoch as i64 * 60,
                tick: epoch,
                data_hash: "h".into(),
                scenario: "tiny".into(),
                updated_at: 1,
            },
            snapshots: snapshots
                .into_iter()
                .map(|(id, seen)| Snapshot {
                    kind: SnapshotKind::Player,
                    ref_id: id.into(),
                    taken_at: 0,
                    state: seen.map(|at| {
                        EntityState::Player(PlayerState {
                            player: id.into(),
                            last_seen: Some(at),
                            orders: vec![],
                        })
                    }),
                })
                .collect(),
            events: seqs
                .map(|seq| DomainEvent {
                    seq,
                    kind: EventKind::MonthBegan { year: 1, month: 1 },
                    game_time: seq as i64,
                    aggregate: if seq % 2 == 0 {
                        "world:w".into()
                    } else {
                        "general:g".into()
                    },
                })
                .collect(),
            full: epoch == 1,
        }
    }

    #[test]
    fn epochs_commit_and_load_back_newest_state_per_entity() {
        let (dir, store) = store();
        assert!(store.recover_world("w").unwrap().world.is_none());
        store
            .commit_epoch(&epoch(1, vec![("a", Some(1)), ("b", Some(1))], 1..=4), 0)
            .unwrap();
        store
            .commit_epoch(
                &epoch(2, vec![("a", Some(2)), ("b", None), ("c", Some(2))], 5..=6),
                0,
            )
            .unwrap();
        drop(store);
        let store = EmbeddedStore::open_file(&dir.path().join(EmbeddedStore::FILE)).unwrap();
        let recovery = store.recover_world("w").unwrap();
        assert_eq!(recovery.incarnation, 2, "one above the first recovery's");
        let recovered = recovery.world.unwrap();
        assert_eq!(recovered.checkpoint.epoch, 2);
        assert_eq!(recovered.checkpoint.log_seq, 20);
        let seen: Vec<(String, Option<i64>)> = recovered
            .entities
            .iter()
            .map(|e| match e {
                StoredEntity {
                    state: EntityState::Player(p),
                    ..
                } => (p.player.clone(), p.last_seen),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seen, vec![("a".into(), Some(2)), ("c".into(), Some(2))]);
        assert!(store.load_world("other", 1).unwrap().is_none());

        let seqs = |events: Vec<DomainEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(store.events("w", 0, 100, None).unwrap()),
            (1..=6).collect::<Vec<_>>()
        );
        assert_eq!(seqs(store.events("w", 2, 2, None).unwrap()), vec![3, 4]);
        assert_eq!(
            seqs(store.events("w", 0, 100, Some("world:w")).unwrap()),
            vec![2, 4, 6]
        );
        assert_eq!(
            seqs(store.events("w", 4, 100, Some("general:g")).unwrap()),
            vec![5]
        );
        assert!(store.events("w", 6, 100, None).unwrap().is_empty());
        assert!(store.events("other", 0, 100, None).unwrap().is_empty());

        // Old events beyond the kept number go at the next checkpoint, index and all.
        store.commit_epoch(&epoch(3, vec![], 7..=8), 3).unwrap();
        assert_eq!(
            seqs(store.events("w", 0, 100, None).unwrap()),
            vec![6, 7, 8]
        );
        assert_eq!(
            seqs(store.events("w", 0, 100, Some("world:w")).unwrap()),
            vec![6, 8]
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_the_file() {
        let (_dir, store) = store();
        store
            .commit_epoch(&epoch(1, vec![("a", Some(1))], 1..=1), 0)
            .unwrap();
        let txn = store.db.begin_write().unwrap();
        {
            let mut table = txn.open_table(SNAPSHOTS).unwrap();
            table
                .insert(("w", "player", "a"), (0, 1, b"{not json".as_slice()))
                .unwrap();
        }
        txn.commit().unwrap();
        let error = store.load_world("w", 2).unwrap_err().to_string();
        assert!(
            error.contains(&store.path().display().to_string()),
            "{error}"
        );
        assert!(error.contains("snapshot of player a"), "{error}");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EmbeddedStore::FILE);
        std::fs::write(&path, b"this is not a database, it is a letter").unwrap();
        let error = EmbeddedStore::open_file(&path).err().expect("refused");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}

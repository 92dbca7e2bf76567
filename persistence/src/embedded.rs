//! The embedded store (SPEC 8, the default without MongoDB): one redb database file under
//! the data directory, `tianxia.redb`, crash-safe (every commit is synced before it returns).
//! It holds what must outlive the process; so far the players' accounts and token hashes
//! (SPEC 2.2, 5).
//!
//! Every call does file I/O and may block on a sync: callers on an async runtime run it on
//! the blocking pool, and the World never calls it. A file that is not a redb database, or is
//! damaged, is an error that names the file.

use std::path::{Path, PathBuf};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

use crate::DataDir;

/// Players by id: (name, Argon2 password hash).
const PLAYERS: TableDefinition<&str, (&str, &str)> = TableDefinition::new("players");
/// Token hashes: (player id, expiry in Unix milliseconds).
const TOKENS: TableDefinition<&[u8], (&str, u64)> = TableDefinition::new("tokens");
/// Each player's token hashes.
const PLAYER_TOKENS: MultimapTableDefinition<&str, &[u8]> =
    MultimapTableDefinition::new("player_tokens");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the embedded store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("the embedded store {path} failed: {message}")]
    Io { path: PathBuf, message: String },
}

/// A player as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPlayer {
    pub id: String,
    pub name: String,
    pub password_hash: String,
}

pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
}

impl EmbeddedStore {
    pub const FILE: &'static str = "tianxia.redb";

    /// Opens (or creates) the store in a data directory this process holds.
    pub fn open(dir: &DataDir) -> Result<EmbeddedStore, StoreError> {
        Self::open_file(&dir.path().join(Self::FILE))
    }

    fn open_file(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let store = EmbeddedStore {
            db,
            path: path.to_owned(),
        };
        // Create the tables, so readers find them.
        let txn = store.db.begin_write().map_err(|e| store.io(e))?;
        txn.open_table(PLAYERS).map_err(|e| store.io(e))?;
        txn.open_table(TOKENS).map_err(|e| store.io(e))?;
        txn.open_multimap_table(PLAYER_TOKENS)
            .map_err(|e| store.io(e))?;
        txn.commit().map_err(|e| store.io(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            message: error.to_string(),
        }
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
            held.sort();
            let live = held.iter().filter(|(expiry, _)| *expiry > now).count();
            let mut excess = (live + 1).saturating_sub(keep.max(1));
            for (expiry, key) in &held {
                let drop = if *expiry <= now {
                    true
                } else if excess > 0 {
                    excess -= 1;
                    true
                } else {
                    false
                };
                if drop {
                    tokens.remove(key.as_slice()).map_err(|e| self.io(e))?;
                    by_player
                        .remove(player, key.as_slice())
                        .map_err(|e| self.io(e))?;
                }
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
        if expires <= now {
            self.revoke_token(hash)?;
            return Ok(None);
        }
        if refresh_to >= expires.saturating_add(refresh_after) {
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

#[cfg(test)]
mod tests {
    use super::*;

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

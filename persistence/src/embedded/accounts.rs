//! Accounts in the embedded store (docs/http.md#accounts): players and the hashes of their
//! tokens, in the tables `players`, `tokens` and `player_tokens`; [`EmbeddedAccounts`] serves
//! them to the HTTP side from the blocking pool (every commit is synced).

use std::sync::Arc;

use components::accounts::PlayerRecord;
use redb::{ReadableDatabase, ReadableMultimapTable, ReadableTable};

use super::{EmbeddedStore, PLAYER_TOKENS, PLAYERS, TOKENS};
use crate::{
    StoreError, StoreFuture,
    accounts::{PlayerTables, StoreAccounts},
    tokens::{TokenUse, token_use, tokens_to_drop},
};

impl EmbeddedStore {
    /// Stores a new player; `false` if the id is taken.
    pub fn create_player(&self, player: &PlayerRecord) -> Result<bool, StoreError> {
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

    pub fn player(&self, id: &str) -> Result<Option<PlayerRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = txn.open_table(PLAYERS).map_err(|e| self.io(e))?;
        let found = table.get(id).map_err(|e| self.io(e))?.map(|v| {
            let (name, hash) = v.value();
            PlayerRecord {
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

/// The embedded store's players and tokens, each call on the blocking pool (every commit is
/// synced).
impl PlayerTables for Arc<EmbeddedStore> {
    fn create_player(&self, player: PlayerRecord) -> StoreFuture<'_, bool> {
        Box::pin(self.on_blocking_pool(move |store| store.create_player(&player)))
    }

    fn player<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PlayerRecord>> {
        let id = id.to_string();
        Box::pin(self.on_blocking_pool(move |store| store.player(&id)))
    }

    fn put_token<'a>(
        &'a self,
        hash: [u8; 32],
        player: &'a str,
        expires: u64,
        now: u64,
        keep: usize,
    ) -> StoreFuture<'a, ()> {
        let player = player.to_string();
        Box::pin(
            self.on_blocking_pool(move |store| store.put_token(&hash, &player, expires, now, keep)),
        )
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: u64,
        refresh_to: u64,
        refresh_after: u64,
    ) -> StoreFuture<'_, Option<String>> {
        Box::pin(
            self.on_blocking_pool(move |store| {
                store.use_token(&hash, now, refresh_to, refresh_after)
            }),
        )
    }

    fn revoke_token(&self, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        Box::pin(self.on_blocking_pool(move |store| store.revoke_token(&hash)))
    }
}

/// The embedded store's accounts, as the HTTP side's [`components::accounts::AccountStore`].
pub type EmbeddedAccounts = StoreAccounts<Arc<EmbeddedStore>>;

//! Accounts in the world's store (docs/http.md#accounts): [`StoreAccounts`] is the HTTP side's
//! [`AccountStore`] over either store's [`PlayerTables`] (the embedded store's tables, on the
//! blocking pool; MongoDB's `players` and `tokens`). What both share lives here: times in Unix
//! milliseconds, a player's token limit, how often a used token's expiry is written again
//! (`tokens`), and every store failure told as "unavailable".

use std::time::SystemTime;

use components::{
    accounts::{AccountError, AccountFuture, AccountStore, PlayerRecord, TOKENS_PER_PLAYER},
    time::unix_ms,
};

use crate::{StoreError, StoreFuture, tokens::REFRESH_AFTER};

/// A store's players and token hashes, times in Unix milliseconds.
pub trait PlayerTables: Send + Sync + 'static {
    /// Stores a new player; `false` if the id is taken.
    fn create_player(&self, player: PlayerRecord) -> StoreFuture<'_, bool>;
    fn player<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PlayerRecord>>;
    /// Stores a token hash for `player` until `expires`; drops the player's expired tokens,
    /// and its oldest beyond `keep`.
    fn put_token<'a>(
        &'a self,
        hash: [u8; 32],
        player: &'a str,
        expires: u64,
        now: u64,
        keep: usize,
    ) -> StoreFuture<'a, ()>;
    /// The player a token hash belongs to if it has not expired by `now`; its expiry moves to
    /// `refresh_to` when that is at least `refresh_after` later than stored.
    fn use_token(
        &self,
        hash: [u8; 32],
        now: u64,
        refresh_to: u64,
        refresh_after: u64,
    ) -> StoreFuture<'_, Option<String>>;
    fn revoke_token(&self, hash: [u8; 32]) -> StoreFuture<'_, ()>;
}

/// The accounts of a store (a shared handle to it), as the HTTP side's [`AccountStore`].
pub struct StoreAccounts<T> {
    tables: T,
}

impl<T> StoreAccounts<T> {
    pub fn new(tables: T) -> Self {
        StoreAccounts { tables }
    }
}

fn unavailable(error: StoreError) -> AccountError {
    AccountError::Unavailable(error.to_string())
}

impl<T: PlayerTables> AccountStore for StoreAccounts<T> {
    fn create(&self, player: PlayerRecord) -> AccountFuture<'_, ()> {
        Box::pin(async move {
            match self
                .tables
                .create_player(player)
                .await
                .map_err(unavailable)?
            {
                true => Ok(()),
                false => Err(AccountError::NameTaken),
            }
        })
    }

    fn find(&self, id: &str) -> AccountFuture<'_, Option<PlayerRecord>> {
        let id = id.to_string();
        Box::pin(async move { self.tables.player(&id).await.map_err(unavailable) })
    }

    fn put_token(
        &self,
        hash: [u8; 32],
        player: &str,
        expires: SystemTime,
    ) -> AccountFuture<'_, ()> {
        let player = player.to_string();
        Box::pin(async move {
            let now = unix_ms(SystemTime::now());
            self.tables
                .put_token(hash, &player, unix_ms(expires), now, TOKENS_PER_PLAYER)
                .await
                .map_err(unavailable)
        })
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: SystemTime,
        refresh_to: SystemTime,
    ) -> AccountFuture<'_, Option<String>> {
        let (now, refresh_to) = (unix_ms(now), unix_ms(refresh_to));
        let refresh_after = REFRESH_AFTER.as_millis() as u64;
        Box::pin(async move {
            self.tables
                .use_token(hash, now, refresh_to, refresh_after)
                .await
                .map_err(unavailable)
        })
    }

    fn revoke_token(&self, hash: [u8; 32]) -> AccountFuture<'_, ()> {
        Box::pin(async move { self.tables.revoke_token(hash).await.map_err(unavailable) })
    }
}

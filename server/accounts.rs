//! The players' accounts in the world's store: the HTTP side's `AccountStore` over
//! `persistence::EmbeddedStore` (each call on the blocking pool: the store syncs its
//! commits), or over MongoDB's `players` and `tokens` when `MONGODB_URI` is set.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use components::time::unix_ms;
use net::accounts::{
    AccountStore, PlayerRecord, StoreError, StoreFuture, TOKEN_TTL, TOKENS_PER_PLAYER,
};
use persistence::{EmbeddedStore, MongoStore, StoredPlayer};

/// A token's expiry is written again only when it would move by at least this much.
const REFRESH_AFTER: Duration = Duration::from_secs(3_600);

pub struct EmbeddedAccounts {
    store: Arc<EmbeddedStore>,
}

impl EmbeddedAccounts {
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedAccounts { store }
    }
}

fn stored(player: PlayerRecord) -> StoredPlayer {
    StoredPlayer {
        id: player.id,
        name: player.name,
        password_hash: player.password_hash,
    }
}

fn record(player: StoredPlayer) -> PlayerRecord {
    PlayerRecord {
        id: player.id,
        name: player.name,
        password_hash: player.password_hash,
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, persistence::StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

impl AccountStore for EmbeddedAccounts {
    fn create(&self, player: PlayerRecord) -> StoreFuture<'_, ()> {
        let store = self.store.clone();
        Box::pin(async move {
            let stored = stored(player);
            match blocking(move || store.create_player(&stored)).await? {
                true => Ok(()),
                false => Err(StoreError::NameTaken),
            }
        })
    }

    fn find(&self, id: &str) -> StoreFuture<'_, Option<PlayerRecord>> {
        let store = self.store.clone();
        let id = id.to_string();
        Box::pin(async move {
            let found = blocking(move || store.player(&id)).await?;
            Ok(found.map(record))
        })
    }

    fn put_token(&self, hash: [u8; 32], player: &str, expires: SystemTime) -> StoreFuture<'_, ()> {
        let store = self.store.clone();
        let player = player.to_string();
        Box::pin(async move {
            let now = unix_ms(SystemTime::now());
            blocking(move || {
                store.put_token(&hash, &player, unix_ms(expires), now, TOKENS_PER_PLAYER)
            })
            .await
        })
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: SystemTime,
        refresh_to: SystemTime,
    ) -> StoreFuture<'_, Option<String>> {
        let store = self.store.clone();
        let (now, refresh_to) = (unix_ms(now), unix_ms(refresh_to));
        let refresh_after = REFRESH_AFTER.as_millis() as u64;
        Box::pin(async move {
            blocking(move || store.use_token(&hash, now, refresh_to, refresh_after)).await
        })
    }

    fn revoke_token(&self, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        let store = self.store.clone();
        Box::pin(async move { blocking(move || store.revoke_token(&hash)).await })
    }
}

// The refresh step must stay well below a token's life.
const _: () = assert!(REFRESH_AFTER.as_secs() * 2 < TOKEN_TTL.as_secs());

/// Accounts in MongoDB (SPEC 8 `players`, and `tokens` with a TTL index).
pub struct MongoAccounts {
    store: Arc<MongoStore>,
}

impl MongoAccounts {
    pub fn new(store: Arc<MongoStore>) -> Self {
        MongoAccounts { store }
    }
}

fn unavailable(error: persistence::StoreError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl AccountStore for MongoAccounts {
    fn create(&self, player: PlayerRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let stored = stored(player);
            match self
                .store
                .create_player(&stored)
                .await
                .map_err(unavailable)?
            {
                true => Ok(()),
                false => Err(StoreError::NameTaken),
            }
        })
    }

    fn find(&self, id: &str) -> StoreFuture<'_, Option<PlayerRecord>> {
        let id = id.to_string();
        Box::pin(async move {
            let found = self.store.player(&id).await.map_err(unavailable)?;
            Ok(found.map(record))
        })
    }

    fn put_token(&self, hash: [u8; 32], player: &str, expires: SystemTime) -> StoreFuture<'_, ()> {
        let player = player.to_string();
        Box::pin(async move {
            let now = unix_ms(SystemTime::now());
            self.store
                .put_token(&hash, &player, unix_ms(expires), now, TOKENS_PER_PLAYER)
                .await
                .map_err(unavailable)
        })
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: SystemTime,
        refresh_to: SystemTime,
    ) -> StoreFuture<'_, Option<String>> {
        let (now, refresh_to) = (unix_ms(now), unix_ms(refresh_to));
        let refresh_after = REFRESH_AFTER.as_millis() as u64;
        Box::pin(async move {
            self.store
                .use_token(&hash, now, refresh_to, refresh_after)
                .await
                .map_err(unavailable)
        })
    }

    fn revoke_token(&self, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.store.revoke_token(&hash).await.map_err(unavailable) })
    }
}

/// Accounts in MongoDB with tokens in Redis (SPEC 7 `token:{sha256 of token}`: the player id,
/// expiring with the token), so every process of a Redis deployment shares them.
pub struct RedisAccounts {
    players: MongoAccounts,
    redis: redis::aio::ConnectionManager,
}

impl RedisAccounts {
    pub fn new(players: MongoAccounts, redis: redis::aio::ConnectionManager) -> Self {
        RedisAccounts { players, redis }
    }
}

/// `token:{sha256 of token}`, the hash in hex.
pub fn token_key(hash: &[u8; 32]) -> String {
    let mut key = String::with_capacity(6 + 64);
    key.push_str("token:");
    for byte in hash {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// `tokens:{player}`: a player's token keys by when they were issued, so at most
/// [`TOKENS_PER_PLAYER`] stay valid (the oldest is revoked).
pub fn tokens_index(player: &str) -> String {
    format!("tokens:{player}")
}

fn redis_unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("Redis: {error}"))
}

/// Milliseconds from `now` to `until`, at least 1.
fn ms_until(until: SystemTime, now: SystemTime) -> u64 {
    (unix_ms(until).saturating_sub(unix_ms(now))).max(1)
}

impl AccountStore for RedisAccounts {
    fn create(&self, player: PlayerRecord) -> StoreFuture<'_, ()> {
        self.players.create(player)
    }

    fn find(&self, id: &str) -> StoreFuture<'_, Option<PlayerRecord>> {
        self.players.find(id)
    }

    fn put_token(&self, hash: [u8; 32], player: &str, expires: SystemTime) -> StoreFuture<'_, ()> {
        let player = player.to_string();
        Box::pin(async move {
            let mut redis = self.redis.clone();
            let key = token_key(&hash);
            let index = tokens_index(&player);
            let now = SystemTime::now();
            // The token and its place in the player's index (oldest first) in one step.
            let (held,): (Vec<String>,) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(&player)
                .arg("PX")
                .arg(ms_until(expires, now))
                .ignore()
                .cmd("ZADD")
                .arg(&index)
                .arg(unix_ms(now))
                .arg(&key)
                .ignore()
                .cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(-1)
                .query_async(&mut redis)
                .await
                .map_err(redis_unavailable)?;
            if held.len() <= TOKENS_PER_PLAYER {
                return Ok(());
            }
            // Beyond the limit: forget the tokens that lapsed, then revoke the oldest.
            let mut exists = redis::pipe();
            for token in &held {
                exists.cmd("EXISTS").arg(token);
            }
            let alive: Vec<bool> = exists
                .query_async(&mut redis)
                .await
                .map_err(redis_unavailable)?;
            let live: Vec<&String> = held
                .iter()
                .zip(&alive)
                .filter(|(_, a)| **a)
                .map(|(t, _)| t)
                .collect();
            let revoke = &live[..live.len().saturating_sub(TOKENS_PER_PLAYER)];
            let forget: Vec<&String> = held
                .iter()
                .zip(&alive)
                .filter(|(_, a)| !**a)
                .map(|(t, _)| t)
                .chain(revoke.iter().copied())
                .collect();
            let mut trim = redis::pipe();
            trim.atomic().cmd("ZREM").arg(&index).arg(&forget).ignore();
            if !revoke.is_empty() {
                trim.cmd("DEL").arg(revoke).ignore();
            }
            trim.query_async::<()>(&mut redis)
                .await
                .map_err(redis_unavailable)
        })
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: SystemTime,
        refresh_to: SystemTime,
    ) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move {
            // Read and extend in one step; an expired token is gone already.
            redis::cmd("GETEX")
                .arg(token_key(&hash))
                .arg("PX")
                .arg(ms_until(refresh_to, now))
                .query_async::<Option<String>>(&mut self.redis.clone())
                .await
                .map_err(redis_unavailable)
        })
    }

    fn revoke_token(&self, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut redis = self.redis.clone();
            let key = token_key(&hash);
            let player: Option<String> = redis::cmd("GETDEL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .map_err(redis_unavailable)?;
            if let Some(player) = player {
                redis::cmd("ZREM")
                    .arg(tokens_index(&player))
                    .arg(&key)
                    .query_async::<i64>(&mut redis)
                    .await
                    .map_err(redis_unavailable)?;
            }
            Ok(())
        })
    }
}

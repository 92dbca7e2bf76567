//! Tokens in Redis (docs/redis.md#tokens): in Redis mode every process keeps players' tokens
//! in `token:{sha256 of token}` (the player id, expiring with the token, refreshed by `GETEX`)
//! so all of them share them; each player's index `tokens:{player}`, sorted by issue time,
//! keeps at most [`TOKENS_PER_PLAYER`] valid (a login beyond revokes the oldest). Players'
//! accounts themselves stay in their store.

use std::{sync::Arc, time::SystemTime};

use components::{
    accounts::{AccountError, AccountFuture, AccountStore, PlayerRecord, TOKENS_PER_PLAYER},
    time::unix_ms,
};
use redis::aio::ConnectionManager;

use super::keys;

/// Players from another store (MongoDB's), tokens in Redis.
pub struct RedisTokens {
    players: Arc<dyn AccountStore>,
    redis: ConnectionManager,
}

impl RedisTokens {
    pub fn new(players: Arc<dyn AccountStore>, redis: ConnectionManager) -> Self {
        RedisTokens { players, redis }
    }
}

fn redis_unavailable(error: redis::RedisError) -> AccountError {
    AccountError::Unavailable(format!("Redis: {error}"))
}

/// Milliseconds from `now` to `until`, at least 1.
fn ms_until(until: SystemTime, now: SystemTime) -> u64 {
    (unix_ms(until).saturating_sub(unix_ms(now))).max(1)
}

impl AccountStore for RedisTokens {
    fn create(&self, player: PlayerRecord) -> AccountFuture<'_, ()> {
        self.players.create(player)
    }

    fn find(&self, id: &str) -> AccountFuture<'_, Option<PlayerRecord>> {
        self.players.find(id)
    }

    fn put_token(
        &self,
        hash: [u8; 32],
        player: &str,
        expires: SystemTime,
    ) -> AccountFuture<'_, ()> {
        let player = player.to_string();
        Box::pin(async move {
            let mut redis = self.redis.clone();
            let key = keys::token(&hash);
            let index = keys::player_tokens(&player);
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
    ) -> AccountFuture<'_, Option<String>> {
        Box::pin(async move {
            // Read and extend in one step; an expired token is gone already.
            redis::cmd("GETEX")
                .arg(keys::token(&hash))
                .arg("PX")
                .arg(ms_until(refresh_to, now))
                .query_async::<Option<String>>(&mut self.redis.clone())
                .await
                .map_err(redis_unavailable)
        })
    }

    fn revoke_token(&self, hash: [u8; 32]) -> AccountFuture<'_, ()> {
        Box::pin(async move {
            let mut redis = self.redis.clone();
            let key = keys::token(&hash);
            let player: Option<String> = redis::cmd("GETDEL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .map_err(redis_unavailable)?;
            if let Some(player) = player {
                redis::cmd("ZREM")
                    .arg(keys::player_tokens(&player))
                    .arg(&key)
                    .query_async::<i64>(&mut redis)
                    .await
                    .map_err(redis_unavailable)?;
            }
            Ok(())
        })
    }
}

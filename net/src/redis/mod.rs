//! Redis mode (docs/redis.md): the command stream and its consumer group, the single-writer
//! lease, the L2 read models with their invalidations and the api's copy of them, presence,
//! tokens, the hot snapshot's write, and the readiness probe. Every key is named in
//! [`keys`]. Nothing here runs inside the tick: the World is reached only through channels
//! and the published read models.

pub mod hot;
pub mod keys;
pub mod l2;
pub mod lease;
pub mod mirror;
pub mod presence;
pub mod probe;
pub mod stream;
pub mod tokens;

use std::time::Duration;

use redis::{
    RedisResult,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

/// How long an ordinary Redis request may take.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection manager that reconnects by itself; `response_timeout` bounds each request.
/// Must be called within the runtime.
pub fn connect(
    client: &redis::Client,
    response_timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

/// The hash keys matching `pattern` (SCAN, in pages).
pub async fn scan_hashes(redis: &mut ConnectionManager, pattern: &str) -> RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .arg("TYPE")
            .arg("hash")
            .query_async(redis)
            .await?;
        keys.extend(found);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

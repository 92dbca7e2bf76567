//! `snapshot:{world}` in Redis (SPEC 7): the hot snapshot, written only by the lease holder
//! (one script compares the lease's token and sets the key in the same step, so a daemon
//! that lost its lease cannot overwrite a newer holder's snapshot) and read at recovery.
//! The bytes are `persistence::hot`'s.

use redis::{Script, aio::ConnectionManager};

use crate::lease::Tenure;

/// `snapshot:{world}`.
pub fn key(world: &str) -> String {
    format!("snapshot:{world}")
}

/// KEYS: lease, snapshot. ARGV: this holder's token, the bytes. 1 if written.
const WRITE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
";

/// Writes hot snapshots of one world under a lease.
#[derive(Clone)]
pub struct HotWriter {
    redis: ConnectionManager,
    key: String,
    tenure: Tenure,
    script: Script,
}

impl HotWriter {
    pub fn new(redis: ConnectionManager, world: &str, tenure: Tenure) -> HotWriter {
        HotWriter {
            redis,
            key: key(world),
            tenure,
            script: Script::new(WRITE),
        }
    }

    /// Writes `bytes` if this process still holds the lease: `Ok(false)` when it does not
    /// (nothing written).
    pub async fn write(&self, bytes: &[u8]) -> redis::RedisResult<bool> {
        if !self.tenure.fresh() {
            return Ok(false);
        }
        let written: i64 = self
            .script
            .key(&self.tenure.key)
            .key(&self.key)
            .arg(&self.tenure.token)
            .arg(bytes)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(written == 1)
    }
}

/// The hot snapshot's bytes, if there is one.
pub async fn read(
    redis: &mut ConnectionManager,
    world: &str,
) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("GET").arg(key(world)).query_async(redis).await
}

//! `snapshot:{world}` in Redis (docs/redis.md#writing-the-snapshot): the hot snapshot, written
//! only by the lease holder (one script compares the lease's token and sets the key in the same
//! step, so a daemon that lost its lease cannot overwrite a newer holder's snapshot) and read
//! at recovery. The bytes are `persistence::hot`'s.

use redis::{Script, aio::ConnectionManager};

use super::{keys, lease::Tenure};

/// KEYS: lease, snapshot. ARGV: this holder's token, the bytes, their lease epoch and
/// epoch. 1 if written, 0 if the lease is another's, -1 if the snapshot there is newer (by
/// the stamp in its header: a daemon that took a lapsed lease back never replaces a newer
/// holder's snapshot).
const WRITE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if redis.call('TYPE', KEYS[2])['ok'] == 'string' then
  local head = redis.call('GETRANGE', KEYS[2], 0, 63)
  local lease, epoch = string.match(head, '^TXH2 (%d+) (%d+)\n')
  if lease then
    local l, e = tonumber(lease), tonumber(epoch)
    local nl, ne = tonumber(ARGV[3]), tonumber(ARGV[4])
    if l > nl or (l == nl and e > ne) then
      return -1
    end
  end
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
";

/// What a write came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Written,
    /// This process does not hold the lease (or has not confirmed it lately).
    NotHolder,
    /// A newer snapshot is there.
    Older,
}

/// Writes hot snapshots of one world under a lease.
#[derive(Clone)]
pub struct HotWriter {
    redis: ConnectionManager,
    key: String,
    tenure: Tenure,
    script: Script,
}

impl HotWriter {
    /// `redis` should be a connection of its own: a snapshot can be large, and the lease's
    /// renewals must not wait behind it.
    pub fn new(redis: ConnectionManager, world: &str, tenure: Tenure) -> HotWriter {
        HotWriter {
            redis,
            key: keys::snapshot(world),
            tenure,
            script: Script::new(WRITE),
        }
    }

    /// Writes `bytes` (stamped `lease_epoch`, `epoch`) if this process holds the lease and
    /// nothing newer is there.
    pub async fn write(
        &self,
        bytes: &[u8],
        lease_epoch: u64,
        epoch: u64,
    ) -> redis::RedisResult<Written> {
        if !self.tenure.fresh() {
            return Ok(Written::NotHolder);
        }
        let outcome: i64 = self
            .script
            .key(&self.tenure.key)
            .key(&self.key)
            .arg(&self.tenure.token)
            .arg(bytes)
            .arg(lease_epoch)
            .arg(epoch)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match outcome {
            1 => Written::Written,
            0 => Written::NotHolder,
            _ => Written::Older,
        })
    }
}

/// The hot snapshot's bytes, if there is one (a key of another type counts as none).
pub async fn read(
    redis: &mut ConnectionManager,
    world: &str,
) -> redis::RedisResult<Option<Vec<u8>>> {
    let key = keys::snapshot(world);
    let kind: String = redis::cmd("TYPE").arg(&key).query_async(redis).await?;
    if kind != "string" {
        return Ok(None);
    }
    redis::cmd("GET").arg(key).query_async(redis).await
}

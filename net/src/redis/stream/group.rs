//! The consumer group's life cycle (docs/redis.md#stream-life-cycle): made continuous with
//! the checkpoint at start (created at its entry, the stream's ids raised above it if Redis
//! lost them), entries of dead consumers claimed, entries that are not commands moved to the
//! dead-letter stream, and entries acknowledged and trimmed once a checkpoint covers them.

use std::collections::BTreeMap;

use components::{command::Command, stream::EntryId};
use redis::{RedisResult, Value, aio::ConnectionManager};
use tracing::{info, warn};

use super::{DLQ_MAX, Entry, GROUP, READ_COUNT, StreamKeys, bytes, entries, protocol};

/// Pending entries acknowledged per round trip.
const ACK_PAGE: usize = 10_000;
/// Makes the consumer group continuous with a checkpoint at `from`
/// (docs/redis.md#starting-the-stream): the stream's ids are raised above `from` if the stream
/// was lost, and the group is created at `from` (the beginning without a checkpoint) if it does
/// not exist.
pub async fn prepare(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    from: Option<EntryId>,
) -> RedisResult<()> {
    let start = from.unwrap_or(EntryId::ZERO).to_string();
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.commands())
        .arg(GROUP)
        .arg(&start)
        .arg("MKSTREAM")
        .query_async(redis)
        .await;
    match created {
        Ok(()) => info!(stream = keys.commands(), from = %start, "consumer group created"),
        Err(e) if e.code() == Some("BUSYGROUP") => {}
        Err(e) => return Err(e),
    }
    if let Some(from) = from {
        let last = last_generated(redis, keys).await?;
        if last < from {
            warn!(stream = keys.commands(), %last, checkpoint = %from, "the stream is behind the checkpoint (lost by Redis?); raising its ids above the checkpoint's");
            redis::cmd("XSETID")
                .arg(keys.commands())
                .arg(from.to_string())
                .query_async::<()>(redis)
                .await?;
        }
    }
    Ok(())
}

/// The stream's last generated id.
pub async fn last_generated(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
) -> RedisResult<EntryId> {
    let info: redis::streams::StreamInfoStreamReply = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(keys.commands())
        .query_async(redis)
        .await?;
    info.last_generated_id
        .parse()
        .map_err(|_| protocol("XINFO STREAM last-generated-id"))
}

/// Claims every pending entry of the group for `consumer` (those of dead consumers,
/// docs/redis.md#starting-the-stream), in entry order, and forgets the consumers left with
/// nothing pending.
pub async fn claim(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    consumer: &str,
) -> RedisResult<Vec<Entry>> {
    let mut claimed = Vec::new();
    let mut start = EntryId::ZERO.to_string();
    loop {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(keys.commands())
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&start)
            .arg("COUNT")
            .arg(READ_COUNT)
            .query_async(redis)
            .await?;
        let Value::Array(mut parts) = reply else {
            return Err(protocol("XAUTOCLAIM"));
        };
        if parts.len() < 2 {
            return Err(protocol("XAUTOCLAIM"));
        }
        parts.truncate(2);
        let found = entries(parts.pop().unwrap_or(Value::Nil))?;
        let next = bytes(parts.pop().unwrap_or(Value::Nil))
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| protocol("XAUTOCLAIM cursor"))?;
        claimed.extend(found);
        if next == "0-0" {
            break;
        }
        start = next;
    }
    claimed.sort_by_key(|e| e.id);
    claimed.dedup_by_key(|e| e.id);
    let consumers: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(keys.commands())
        .arg(GROUP)
        .query_async(redis)
        .await?;
    for gone in consumers
        .consumers
        .iter()
        .filter(|c| c.name != consumer && c.pending == 0)
    {
        redis::cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(keys.commands())
            .arg(GROUP)
            .arg(&gone.name)
            .query_async::<i64>(redis)
            .await?;
    }
    Ok(claimed)
}

/// Bytes of an entry's error kept in the dead-letter stream and the log.
pub const DLQ_ERROR_MAX: usize = 1024;

/// Moves an entry that is not a command to the dead-letter stream with the error, and
/// acknowledges it.
pub async fn dead_letter(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    entry: &Entry,
    error: &str,
) -> RedisResult<()> {
    // Why, bounded: an error may quote the entry, which may be large.
    let error = &*components::text::clip(error, DLQ_ERROR_MAX);
    warn!(stream = keys.commands(), entry = %entry.id, error, "an entry is not a command; moved to the dead-letter stream");
    let mut add = redis::cmd("XADD");
    add.arg(keys.dlq())
        .arg("MAXLEN")
        .arg("~")
        .arg(DLQ_MAX)
        .arg("*");
    for (name, value) in entry.fields.as_deref().unwrap_or_default() {
        add.arg(name.as_slice()).arg(value.as_slice());
    }
    add.arg("error")
        .arg(error)
        .arg("entry")
        .arg(entry.id.to_string());
    let mut pipe = redis::pipe();
    pipe.atomic()
        .add_command(add)
        .ignore()
        .cmd("XACK")
        .arg(keys.commands())
        .arg(GROUP)
        .arg(entry.id.to_string())
        .ignore();
    pipe.query_async::<()>(redis).await
}

/// Acknowledges `consumer`'s pending entries up to `upto` (its checkpoint covers them) and
/// trims the stream below and at it; returns how many were acknowledged.
pub async fn acknowledge(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    upto: EntryId,
    consumer: &str,
) -> RedisResult<usize> {
    let mut acked = 0;
    loop {
        let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(keys.commands())
            .arg(GROUP)
            .arg("-")
            .arg(upto.to_string())
            .arg(ACK_PAGE)
            .arg(consumer)
            .query_async(redis)
            .await?;
        if pending.ids.is_empty() {
            break;
        }
        let ids: Vec<&str> = pending.ids.iter().map(|p| p.id.as_str()).collect();
        let n: usize = redis::cmd("XACK")
            .arg(keys.commands())
            .arg(GROUP)
            .arg(&ids)
            .query_async(redis)
            .await?;
        acked += n;
        if ids.len() < ACK_PAGE {
            break;
        }
    }
    redis::cmd("XTRIM")
        .arg(keys.commands())
        .arg("MINID")
        .arg(upto.next().to_string())
        .query_async::<i64>(redis)
        .await?;
    Ok(acked)
}

/// Entries of the group waiting for acknowledgement.
pub async fn pending(redis: &mut ConnectionManager, keys: &StreamKeys) -> RedisResult<usize> {
    let summary: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(keys.commands())
        .arg(GROUP)
        .query_async(redis)
        .await?;
    Ok(summary.count())
}

/// Commands of claimed entries after `after`, in order, dead-lettering those that are not
/// commands.
pub async fn commands_after(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    claimed: &[Entry],
    after: Option<EntryId>,
) -> RedisResult<BTreeMap<EntryId, Command>> {
    let mut commands = BTreeMap::new();
    for entry in claimed {
        if after.is_some_and(|a| entry.id <= a) || entry.fields.is_none() {
            continue;
        }
        match entry.command() {
            Ok(command) => {
                commands.insert(entry.id, command);
            }
            Err(error) => dead_letter(redis, keys, entry, &error).await?,
        }
    }
    Ok(commands)
}

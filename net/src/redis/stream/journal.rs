//! The submit script (docs/redis.md#the-submit-script): the HTTP side's [`Journal`] in Redis
//! mode. One script creates `order:{world}:{player}:{id}` if absent and adds the stream entry
//! in the same step; a known id answers its recorded status (same body) or a conflict.

use std::time::Duration;

use components::{
    command::{Command, Issuer},
    durable::{Appended, Journal, JournalError, JournalFuture},
    read_model::OrderStatus,
    stream::Payload,
};
use redis::{Script, aio::ConnectionManager};

use super::StreamKeys;

/// An order hash that never finishes is dropped after this long; a finished one 24 hours
/// after it finished (docs/redis.md#order-hashes).
pub const QUEUED_ORDER_TTL: Duration = Duration::from_secs(7 * 24 * 3_600);

/// Creates the order hash if absent and adds the stream entry, in one step. A known id
/// answers with its status (same body) or a conflict (another body) and adds nothing.
const SUBMIT: &str = r"
local prefix, id, hash, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if id ~= '' then
  local known = redis.call('HMGET', prefix .. id, 'body_hash', 'status')
  if known[1] then
    if known[1] == hash then return {'known', id, known[2] or 'queued'} end
    return {'conflict', id}
  end
end
local entry = redis.call('XADD', KEYS[1], '*', 'payload', payload)
if id == '' then id = 'srv-' .. entry end
local key = prefix .. id
redis.call('HSET', key, 'order_id', id, 'type', ARGV[5], 'general', ARGV[6],
  'status', 'queued', 'revision', '0', 'stage', '0', 'body_hash', hash, 'entry', entry)
redis.call('EXPIRE', key, ARGV[7])
return {'added', id, entry}
";

/// The command bus of Redis mode as the HTTP side sees it.
pub struct StreamJournal {
    redis: ConnectionManager,
    keys: StreamKeys,
    submit: Script,
}

impl StreamJournal {
    pub fn new(redis: ConnectionManager, keys: StreamKeys) -> Self {
        StreamJournal {
            redis,
            keys,
            submit: Script::new(SUBMIT),
        }
    }

    async fn add(&self, command: Command) -> Result<Appended, JournalError> {
        let Issuer::Player(player) = &command.issuer else {
            return Err(JournalError::Unavailable(
                "only players' commands travel the stream".into(),
            ));
        };
        let now = components::time::unix_ms(std::time::SystemTime::now());
        let payload = serde_json::to_string(&Payload::of(&command, player, now))
            .map_err(|e| JournalError::Unavailable(e.to_string()))?;
        let reply: Vec<String> = self
            .submit
            .key(self.keys.commands())
            .arg(self.keys.order_prefix(player))
            .arg(&command.id)
            .arg(command.body_hash().to_string())
            .arg(payload)
            .arg(command.body.command_type().name())
            .arg(command.general.as_deref().unwrap_or(""))
            .arg(QUEUED_ORDER_TTL.as_secs())
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| JournalError::Unavailable(format!("Redis: {e}")))?;
        match reply.as_slice() {
            [kind, id, entry] if kind == "added" => {
                let entry = entry.parse().map_err(|e: components::stream::BadEntryId| {
                    JournalError::Unavailable(e.to_string())
                })?;
                Ok(Appended::New(Command {
                    id: id.clone(),
                    entry: Some(entry),
                    ..command
                }))
            }
            [kind, id, status] if kind == "known" => Ok(Appended::Known {
                id: id.clone(),
                status: OrderStatus::from_name(status).unwrap_or(OrderStatus::Queued),
            }),
            [kind, id] if kind == "conflict" => Err(JournalError::Conflict(format!(
                "order id \"{id}\" was already used for another command"
            ))),
            other => Err(JournalError::Unavailable(format!(
                "unexpected answer from the submit script: {other:?}"
            ))),
        }
    }
}

impl Journal for StreamJournal {
    fn append(&self, command: Command) -> JournalFuture<'_> {
        Box::pin(self.add(command))
    }
}

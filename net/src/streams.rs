//! The command stream of Redis mode (SPEC 7). Producers add commands to `cmd:game:{world}`;
//! the HTTP side does it with one script that creates the order hash
//! `order:{world}:{player}:{id}` if absent and adds the entry in the same step, so a 202
//! always means the entry exists. The daemon reads the stream through the consumer group
//! `game-daemon` on a connection of its own (blocking reads), hands commands to the World in
//! entry order, sends entries that are not commands to `cmd:game:{world}:dlq`, and
//! acknowledges and trims entries only once a checkpoint covers them.

use std::{collections::BTreeMap, time::Duration};

use components::{
    command::{Command, Inbound, Issuer},
    read_model::OrderStatus,
    stream::{EntryId, Payload, parse_entry},
};
use crossbeam_channel::{Sender, TrySendError};
use redis::{RedisError, RedisResult, Script, Value, aio::ConnectionManager};
use tracing::{error, info, warn};

use crate::{
    durable::{Appended, Journal, JournalError, JournalFuture},
    lease::Tenure,
};

/// Reads the group only while the lease (KEYS[1]) holds this holder's token (ARGV[1]).
const READ: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEASED the lease is held by another daemon')
end
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[2], ARGV[5])
";

/// The daemons' consumer group.
pub const GROUP: &str = "game-daemon";
/// Most entries one read takes.
pub const READ_COUNT: usize = 1_000;
/// How long a blocking read waits for new entries.
pub const BLOCK: Duration = Duration::from_secs(1);
/// Entries kept in the dead-letter stream at most (approximately).
pub const DLQ_MAX: usize = 100_000;
/// Pending entries acknowledged per round trip.
const ACK_PAGE: usize = 10_000;
/// An order hash that never finishes is dropped after this long; a finished one 24 hours
/// after it finished (SPEC 7).
pub const QUEUED_ORDER_TTL: Duration = Duration::from_secs(7 * 24 * 3_600);

/// The Redis keys of one world.
#[derive(Clone, Debug)]
pub struct StreamKeys {
    world: String,
    commands: String,
    dlq: String,
}

impl StreamKeys {
    pub fn new(world: &str) -> Self {
        StreamKeys {
            world: world.to_string(),
            commands: format!("cmd:game:{world}"),
            dlq: format!("cmd:game:{world}:dlq"),
        }
    }

    pub fn world(&self) -> &str {
        &self.world
    }

    /// `cmd:game:{world}`.
    pub fn commands(&self) -> &str {
        &self.commands
    }

    /// `cmd:game:{world}:dlq`.
    pub fn dlq(&self) -> &str {
        &self.dlq
    }

    /// `order:{world}:{player}:` (the order id follows).
    pub fn order_prefix(&self, player: &str) -> String {
        format!("order:{}:{player}:", self.world)
    }
}

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

/// One entry as read: its id and fields (none if the entry was deleted while pending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    /// The command the entry carries, or why it is none.
    pub fn command(&self) -> Result<Command, String> {
        let fields = self.fields.as_deref().unwrap_or_default();
        let named: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(name, value)| {
                (
                    std::str::from_utf8(name).unwrap_or("\u{fffd}"),
                    value.as_slice(),
                )
            })
            .collect();
        parse_entry(self.id, named).map_err(|e| e.to_string())
    }
}

fn protocol(message: &str) -> RedisError {
    RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected reply",
        message.to_string(),
    ))
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Entries of a reply's `[[id, [field, value, ...]], ...]`.
fn entries(value: Value) -> RedisResult<Vec<Entry>> {
    let Value::Array(items) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            _ => Err(protocol("entries are not an array")),
        };
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            return Err(protocol("an entry is not an array"));
        };
        if pair.len() != 2 {
            return Err(protocol("an entry is not [id, fields]"));
        }
        let fields = pair.pop().unwrap_or(Value::Nil);
        let id = bytes(pair.pop().unwrap_or(Value::Nil))
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| protocol("an entry id"))?;
        let fields = match fields {
            Value::Nil => None,
            Value::Array(flat) => {
                let mut pairs = Vec::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                    pairs.push((
                        bytes(name).unwrap_or_default(),
                        bytes(value).unwrap_or_default(),
                    ));
                }
                Some(pairs)
            }
            Value::Map(map) => Some(
                map.into_iter()
                    .map(|(n, v)| (bytes(n).unwrap_or_default(), bytes(v).unwrap_or_default()))
                    .collect(),
            ),
            _ => return Err(protocol("entry fields")),
        };
        out.push(Entry { id, fields });
    }
    Ok(out)
}

/// Entries of an `XREADGROUP` reply for one stream.
fn read_reply(value: Value) -> RedisResult<Vec<Entry>> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(mut streams) => match streams.pop() {
            Some(Value::Array(mut key_entries)) if key_entries.len() == 2 => {
                entries(key_entries.pop().unwrap_or(Value::Nil))
            }
            None => Ok(Vec::new()),
            _ => Err(protocol("XREADGROUP")),
        },
        Value::Map(mut streams) => match streams.pop() {
            Some((_, value)) => entries(value),
            None => Ok(Vec::new()),
        },
        _ => Err(protocol("XREADGROUP")),
    }
}

/// Makes the consumer group continuous with a checkpoint at `from` (SPEC 7): the stream's
/// ids are raised above `from` if the stream was lost, and the group is created at `from`
/// (the beginning without a checkpoint) if it does not exist.
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

/// Claims every pending entry of the group for `consumer` (those of dead consumers, SPEC 7),
/// in entry order, and forgets the consumers left with nothing pending.
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

/// Moves an entry that is not a command to the dead-letter stream with the error, and
/// acknowledges it.
pub async fn dead_letter(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    entry: &Entry,
    error: &str,
) -> RedisResult<()> {
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

/// Reads the stream for the World: new entries in order, each command handed over the
/// World's channel (waiting while it is full), each entry that is not a command dead-lettered.
/// After a failed read it reads its own pending entries after the last one it handed over
/// first, so an entry delivered in a lost reply is never skipped.
pub struct StreamReader {
    redis: ConnectionManager,
    keys: StreamKeys,
    consumer: String,
    world: Sender<Inbound>,
    /// The last entry handed over or dead-lettered.
    last: EntryId,
    /// Whether to read own pending entries after `last` before new ones.
    recovering: bool,
    /// With a lease: reading pauses while it is not fresh, and entries are taken only by a
    /// script that checks the lease is still this holder's.
    tenure: Option<Tenure>,
    read: Script,
}

/// Why a reader stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ReaderEnd {
    Stopped,
    WorldGone,
}

impl StreamReader {
    /// `redis` must not time out responses sooner than [`BLOCK`].
    pub fn new(
        redis: ConnectionManager,
        keys: StreamKeys,
        consumer: String,
        world: Sender<Inbound>,
        after: EntryId,
        tenure: Option<Tenure>,
    ) -> Self {
        StreamReader {
            redis,
            keys,
            consumer,
            world,
            last: after,
            recovering: true,
            tenure,
            read: Script::new(READ),
        }
    }

    /// Reads until `stop` says so or the World is gone; never cancels a read half way.
    pub async fn run(mut self, stop: tokio::sync::watch::Receiver<bool>) -> ReaderEnd {
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        loop {
            if *stop.borrow() {
                return ReaderEnd::Stopped;
            }
            if self.tenure.as_ref().is_some_and(|t| !t.fresh()) {
                // The lease is not confirmed: take nothing a successor may need.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            match self.round().await {
                Ok(Some(end)) => return end,
                Ok(None) => {
                    if failing {
                        info!(
                            stream = self.keys.commands(),
                            "reading the command stream again"
                        );
                    }
                    failing = false;
                    backoff = Duration::from_millis(100);
                }
                Err(e) if e.code() == Some("NOGROUP") => {
                    // Redis lost the group (and maybe the stream): make them continuous with
                    // what the World applied, then read on.
                    warn!(
                        stream = self.keys.commands(),
                        "the consumer group is gone (Redis lost its data?); creating it again"
                    );
                    if let Err(e) = prepare(&mut self.redis, &self.keys, Some(self.last)).await {
                        error!(error = %e, "cannot create the consumer group again");
                    }
                    self.recovering = true;
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    if !failing {
                        error!(stream = self.keys.commands(), error = %e, "cannot read the command stream; retrying with backoff");
                    }
                    failing = true;
                    self.recovering = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One read and its hand-over; `Some` when the reader must end.
    async fn round(&mut self) -> RedisResult<Option<ReaderEnd>> {
        let from = if self.recovering {
            self.last.to_string()
        } else {
            ">".to_string()
        };
        let reply: Value = match self.tenure.clone() {
            Some(tenure) => {
                if !self.recovering {
                    // Wait for news without taking anything: a plain read has no effect.
                    let news: Value = redis::cmd("XREAD")
                        .arg("COUNT")
                        .arg(1)
                        .arg("BLOCK")
                        .arg(BLOCK.as_millis() as u64)
                        .arg("STREAMS")
                        .arg(self.keys.commands())
                        .arg(self.last.to_string())
                        .query_async(&mut self.redis)
                        .await?;
                    if matches!(news, Value::Nil) {
                        return Ok(None);
                    }
                }
                // Take entries only while the lease is still this holder's, in one step.
                self.read
                    .key(&tenure.key)
                    .key(self.keys.commands())
                    .arg(&tenure.token)
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg(READ_COUNT)
                    .arg(&from)
                    .invoke_async(&mut self.redis)
                    .await?
            }
            None => {
                let mut read = redis::cmd("XREADGROUP");
                read.arg("GROUP")
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(READ_COUNT);
                if !self.recovering {
                    read.arg("BLOCK").arg(BLOCK.as_millis() as u64);
                }
                read.arg("STREAMS").arg(self.keys.commands()).arg(&from);
                read.query_async(&mut self.redis).await?
            }
        };
        let found = read_reply(reply)?;
        if self.recovering && found.is_empty() {
            self.recovering = false;
        }
        for entry in found {
            if entry.id <= self.last && !self.recovering {
                continue;
            }
            if entry.fields.is_none() {
                // Deleted while pending: nothing to apply.
                self.last = self.last.max(entry.id);
                continue;
            }
            match entry.command() {
                Ok(command) => {
                    if let Some(end) = self.hand_over(command).await {
                        return Ok(Some(end));
                    }
                }
                Err(error) => dead_letter(&mut self.redis, &self.keys, &entry, &error).await?,
            }
            self.last = self.last.max(entry.id);
        }
        Ok(None)
    }

    async fn hand_over(&self, command: Command) -> Option<ReaderEnd> {
        let mut message = Inbound::Command(command);
        loop {
            match self.world.try_send(message) {
                Ok(()) => return None,
                Err(TrySendError::Full(back)) => {
                    message = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Some(ReaderEnd::WorldGone),
            }
        }
    }
}

/// The consumer name of one daemon run.
pub fn consumer_name(lease_epoch: u64) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let pid = std::process::id();
    if host.is_empty() {
        format!("daemon-{pid}-{lease_epoch}")
    } else {
        format!("daemon-{host}-{pid}-{lease_epoch}")
    }
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

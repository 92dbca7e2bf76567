//! The command stream of Redis mode (docs/redis.md#the-command-stream). Producers add commands
//! to `cmd:game:{world}`; the HTTP side does it through [`StreamJournal`]'s script, which
//! creates the order hash if absent and adds the entry in the same step, so a 202 always means
//! the entry exists. The daemon prepares the consumer group `game-daemon` at its checkpoint
//! and claims what dead consumers left pending ([`group`]), then a [`StreamReader`] reads on
//! a connection of its own, hands commands to the World in entry order and sends entries
//! that are not commands to `cmd:game:{world}:dlq`; entries are acknowledged and trimmed only
//! once a checkpoint covers them ([`group::acknowledge`]). [`CommandStream`] puts these
//! together for the daemon.

pub mod group;
mod journal;
mod reader;

use std::time::Duration;

use components::{
    command::{Command, Inbound},
    stream::{EntryId, parse_entry},
};
use redis::{RedisError, RedisResult, Value, aio::ConnectionManager};
use tokio::{runtime::Handle, sync::watch, task::JoinHandle};
use tracing::{info, warn};

pub use journal::{QUEUED_ORDER_TTL, StreamJournal};
pub use reader::{ReaderEnd, StreamReader};

use super::{REDIS_TIMEOUT, keys, lease::Tenure};

/// The daemons' consumer group.
pub const GROUP: &str = "game-daemon";
/// Most entries one read takes.
pub const READ_COUNT: usize = 1_000;
/// How long a blocking read waits for new entries.
pub const BLOCK: Duration = Duration::from_secs(1);
/// Entries kept in the dead-letter stream at most (approximately).
pub const DLQ_MAX: usize = 100_000;
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
            commands: keys::commands(world),
            dlq: keys::dead_letters(world),
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
        keys::order_prefix(&self.world, player)
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

/// The command stream of one world, as its daemon starts reading it.
pub struct CommandStream {
    pub redis: ConnectionManager,
    /// For blocking reads only (its responses may take as long as a block).
    reader: ConnectionManager,
    pub keys: StreamKeys,
    pub consumer: String,
}

impl CommandStream {
    /// `redis` serves ordinary requests; blocking reads get a connection of their own from
    /// `client`. Must be called within the runtime.
    pub fn new(
        client: &redis::Client,
        redis: ConnectionManager,
        world: &str,
        lease_epoch: u64,
    ) -> RedisResult<CommandStream> {
        Ok(CommandStream {
            redis,
            reader: super::connect(client, BLOCK + REDIS_TIMEOUT)?,
            keys: StreamKeys::new(world),
            consumer: consumer_name(lease_epoch),
        })
    }

    /// Makes the group continuous with the checkpoint's `from`, claims the entries dead
    /// consumers left pending and returns the commands among them after `from`, in order
    /// (the caller applies them again before anything new), and the last entry claimed.
    pub async fn recover(&mut self, from: Option<EntryId>) -> RedisResult<(Vec<Command>, EntryId)> {
        group::prepare(&mut self.redis, &self.keys, from).await?;
        let claimed = group::claim(&mut self.redis, &self.keys, &self.consumer).await?;
        let last = claimed
            .last()
            .map_or(EntryId::ZERO, |e| e.id)
            .max(from.unwrap_or(EntryId::ZERO));
        let commands = group::commands_after(&mut self.redis, &self.keys, &claimed, from).await?;
        if !claimed.is_empty() {
            info!(
                claimed = claimed.len(),
                to_apply = commands.len(),
                consumer = %self.consumer,
                "claimed the entries a previous daemon left pending"
            );
        }
        Ok((commands.into_values().collect(), last))
    }

    /// Starts reading after `after` for the World; returns the HTTP side's journal and the
    /// reader's task.
    pub fn start(
        self,
        runtime: &Handle,
        world: crossbeam_channel::Sender<Inbound>,
        after: EntryId,
        tenure: Option<Tenure>,
    ) -> (StreamJournal, ReaderTask) {
        let journal = StreamJournal::new(self.redis.clone(), self.keys.clone());
        let reader = StreamReader::new(self.reader, self.keys, self.consumer, world, after, tenure);
        let (stop, stop_rx) = watch::channel(false);
        let task = runtime.spawn(reader.run(stop_rx));
        (journal, ReaderTask { stop, task })
    }
}

/// The stream reader's task.
pub struct ReaderTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<ReaderEnd>,
}

impl ReaderTask {
    /// Stops reading (after the read under way, at most a block's length) and waits.
    pub fn stop(self, runtime: &Handle) {
        let _ = self.stop.send(true);
        match runtime.block_on(self.task) {
            Ok(end) => info!(?end, "stopped reading the command stream"),
            Err(e) => warn!(error = %e, "the stream reader failed"),
        }
    }
}

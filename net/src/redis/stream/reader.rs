//! The daemon's reader of the command stream (docs/redis.md#reading-under-the-lease): new
//! entries in order, each command handed over the World's channel, each entry that is not a
//! command dead-lettered; under a lease, entries are taken only by a script that checks the
//! lease is still this holder's.

use std::time::Duration;

use components::{
    command::{Command, Inbound},
    stream::EntryId,
};
use crossbeam_channel::{Sender, TrySendError};
use redis::{RedisResult, Script, Value, aio::ConnectionManager};
use tracing::{error, info, warn};

use super::{
    BLOCK, GROUP, READ_COUNT, StreamKeys,
    group::{dead_letter, prepare},
    read_reply,
};
use crate::redis::lease::Tenure;

/// Reads the group only while the lease (KEYS[1]) holds this holder's token (ARGV[1]).
const READ: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEASED the lease is held by another daemon')
end
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[2], ARGV[5])
";

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

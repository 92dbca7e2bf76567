//! The command bus as the HTTP side sees it (docs/http.md#submitting-a-command): a command
//! goes to the [`Journal`], which makes it durable (the embedded command log, synced, or the
//! Redis stream) and hands it on to the World in order; the 202 follows. Presence goes to the
//! World through a bounded channel, never waiting. Commands sent without an id get one
//! derived from their log sequence or stream entry (`srv-...`).
//!
//! Between the 202 and the World's first look at a command, its order is `queued`: the bus
//! remembers such commands until the published read models say the World has applied their
//! log position (or, bounded, until they are old), so `GET /api/orders/{id}` can answer at
//! once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use components::{
    command::{Command, CommandBody, Inbound, Issuer},
    durable::{Appended, Journal, JournalError},
    read_model::{OrderStatus, ReadModels},
    stream::EntryId,
};
use crossbeam_channel::Sender;

use crate::http::error::{ApiError, ErrorCode};

/// Presence is sent at most this often per player.
const SEEN_EVERY: Duration = Duration::from_secs(1);
/// Queued orders are forgotten after this long even if the World never published them.
const QUEUED_FOR: Duration = Duration::from_secs(600);

/// A command the World has not answered yet.
#[derive(Clone, Debug)]
pub struct Queued {
    pub command_type: &'static str,
    pub general: Option<String>,
    pub body_hash: u64,
    /// Its log position: once the World has applied this far, it has an order of its own.
    log_seq: u64,
    /// Its stream entry (Redis mode).
    entry: Option<EntryId>,
    since: Instant,
}

impl Queued {
    /// Whether the World still has to see it, as of `models`.
    fn waiting(&self, models: Option<&ReadModels>) -> bool {
        self.since.elapsed() < QUEUED_FOR
            && models.is_none_or(|m| {
                m.applied_log_seq < self.log_seq
                    || self
                        .entry
                        .is_some_and(|e| m.applied_entry.is_none_or(|a| a < e))
            })
    }
}

pub struct CommandBus {
    journal: Arc<dyn Journal>,
    /// Presence to the World.
    tx: Sender<Inbound>,
    /// When each player's presence was last sent.
    seen: Mutex<HashMap<String, Instant>>,
    /// (player, order id) → the command, until the World publishes its order.
    queued: Mutex<HashMap<(String, String), Queued>>,
    /// Bound on `seen` and `queued` before they are swept.
    sweep_at: usize,
}

impl CommandBus {
    pub fn new(journal: Arc<dyn Journal>, tx: Sender<Inbound>) -> Self {
        let sweep_at = tx.capacity().unwrap_or(65_536).max(1_024);
        CommandBus {
            journal,
            tx,
            seen: Mutex::new(HashMap::new()),
            queued: Mutex::new(HashMap::new()),
            sweep_at,
        }
    }

    /// Makes a player's command durable and sends it on; returns its order id and status
    /// (`queued`, or the recorded status of a repeat the journal recognised).
    pub async fn submit(
        &self,
        player: &str,
        id: Option<String>,
        general: Option<String>,
        body: CommandBody,
        models: Option<&ReadModels>,
    ) -> Result<(String, OrderStatus), ApiError> {
        let command = Command {
            id: id.unwrap_or_default(),
            issuer: Issuer::Player(player.to_string()),
            general,
            body,
            log_seq: 0,
            entry: None,
        };
        let command = match self.journal.append(command).await {
            Ok(Appended::New(command)) => command,
            Ok(Appended::Known { id, status }) => return Ok((id, status)),
            Err(JournalError::Conflict(message)) => {
                return Err(ApiError::new(ErrorCode::IdConflict, message));
            }
            Err(JournalError::Unavailable(e)) => {
                return Err(ApiError::unavailable(format!(
                    "the command was not taken: {e}; try again shortly"
                )));
            }
        };
        let queued = Queued {
            command_type: command.body.command_type().name(),
            general: command.general.clone(),
            body_hash: command.body_hash(),
            log_seq: command.log_seq,
            entry: command.entry,
            since: Instant::now(),
        };
        let mut map = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.sweep_at {
            map.retain(|_, q| q.waiting(models));
        }
        map.insert((player.to_string(), command.id.clone()), queued);
        Ok((command.id, OrderStatus::Queued))
    }

    /// A command the World has not applied yet, as of `models`.
    pub fn queued(&self, player: &str, id: &str, models: Option<&ReadModels>) -> Option<Queued> {
        let mut map = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let key = (player.to_string(), id.to_string());
        match map.get(&key) {
            Some(q) if q.waiting(models) => Some(q.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Forgets a queued command once its order is published.
    pub fn published(&self, player: &str, id: &str) {
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(player.to_string(), id.to_string()));
    }

    /// Where presence goes.
    pub fn sender(&self) -> Sender<Inbound> {
        self.tx.clone()
    }

    /// Tells the World a player is active, at most once a second per player; never waits and
    /// drops the news when the queue is full.
    pub fn seen(&self, player: &str) {
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get(player).is_some_and(|t| t.elapsed() < SEEN_EVERY) {
                return;
            }
            if seen.len() >= self.sweep_at {
                seen.retain(|_, t| t.elapsed() < SEEN_EVERY);
            }
            seen.insert(player.to_string(), Instant::now());
        }
        let _ = self.tx.try_send(Inbound::Seen {
            player: player.to_string(),
        });
    }
}

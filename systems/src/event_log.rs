//! The domain event outbox (SPEC 2.6): systems emit events here with the next per-world
//! sequence number; the publish step takes them for the read side (and, later, for the durable
//! log). Sequence numbers are never reused.

use bevy_ecs::resource::Resource;
use components::events::{DomainEvent, EventKind};

#[derive(Resource, Debug)]
pub struct Outbox {
    /// Sequence number of the most recent event emitted (0 before the first).
    last_seq: u64,
    /// Events emitted since the publish step last took them.
    pending: Vec<DomainEvent>,
}

impl Outbox {
    /// An outbox whose next event gets `last_seq + 1`.
    pub fn new(last_seq: u64) -> Self {
        Outbox {
            last_seq,
            pending: Vec::new(),
        }
    }

    /// Records an event and returns its sequence number.
    pub fn emit(&mut self, game_time: i64, aggregate: String, kind: EventKind) -> u64 {
        self.last_seq += 1;
        self.pending.push(DomainEvent {
            seq: self.last_seq,
            kind,
            game_time,
            aggregate,
        });
        self.last_seq
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Takes the events emitted since the last call, in sequence order.
    pub fn take(&mut self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.pending)
    }
}

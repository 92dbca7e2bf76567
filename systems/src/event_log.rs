//! The domain event outbox (docs/rules.md#domain-events): systems emit events here with the
//! next per-world sequence number; the publish step takes them for the read side and, in a
//! World with a store, keeps them for the next checkpoint epoch (docs/storage.md#what-counts:
//! events are durable with their epoch). Sequence numbers are never reused.

use bevy_ecs::resource::Resource;
use components::events::{DomainEvent, EventKind};

#[derive(Resource, Debug)]
pub struct Outbox {
    /// Sequence number of the most recent event emitted (0 before the first).
    last_seq: u64,
    /// Events emitted since the publish step last took them.
    pending: Vec<DomainEvent>,
    /// Whether events are also kept for the durable log (a World with a store).
    durable: bool,
    /// Events taken by the publish step that the next checkpoint epoch has not taken yet.
    for_store: Vec<DomainEvent>,
}

impl Outbox {
    /// An outbox whose next event gets `last_seq + 1`.
    pub fn new(last_seq: u64) -> Self {
        Outbox {
            last_seq,
            pending: Vec::new(),
            durable: false,
            for_store: Vec::new(),
        }
    }

    /// Keeps every event taken from now on for [`Outbox::take_for_store`] too.
    pub fn keep_for_store(&mut self) {
        self.durable = true;
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

    /// Where the outbox is, for [`Outbox::rollback`].
    pub fn mark(&self) -> (u64, usize) {
        (self.last_seq, self.pending.len())
    }

    /// Forgets the events emitted since `mark`: none of them was published (the publish step
    /// runs between commands, never inside one), so their numbers are given out again.
    pub fn rollback(&mut self, (last_seq, pending): (u64, usize)) {
        self.pending.truncate(pending);
        self.last_seq = last_seq;
    }

    /// Takes the events emitted since the last call, in sequence order.
    pub fn take(&mut self) -> Vec<DomainEvent> {
        let taken = std::mem::take(&mut self.pending);
        if self.durable {
            self.for_store.extend(taken.iter().cloned());
        }
        taken
    }

    /// Takes the events [`Outbox::take`] has handed out since the last call, for the durable
    /// log, in sequence order. Events still pending (not yet published) stay for the next.
    pub fn take_for_store(&mut self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.for_store)
    }

    /// Events up to `last_seq` that no store holds yet (recovered from a hot snapshot): the
    /// next checkpoint epoch takes them first.
    pub fn owe_to_store(&mut self, events: Vec<DomainEvent>) {
        let mut events = events;
        events.retain(|e| e.seq <= self.last_seq);
        events.append(&mut self.for_store);
        self.for_store = events;
    }

    /// Events kept for the next checkpoint epoch so far.
    pub fn for_store(&self) -> &[DomainEvent] {
        &self.for_store
    }

    /// Sequence of the last event handed out by [`Outbox::take`].
    pub fn last_taken(&self) -> u64 {
        self.last_seq - self.pending.len() as u64
    }
}

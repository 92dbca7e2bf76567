//! The events of epochs handed to the store, kept until the store reports them durable
//! (docs/redis.md#the-hot-snapshot): a hot snapshot carries them, so recovery from it can
//! write them. While the store is out, at most [`MAX_UNDURABLE`] are kept: beyond, the oldest
//! are let go, and the gap is remembered so no hot snapshot is taken until the store has
//! caught up past it (a hot snapshot that lacked events could not be recovered from).

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bevy_ecs::resource::Resource;
use components::events::DomainEvent;

/// Events of handed-over epochs kept until they are durable, at most.
pub const MAX_UNDURABLE: usize = 200_000;

/// Events handed to the store in epochs and not yet durable: a resource of a World that
/// takes hot snapshots. Closing an epoch adds to it; a hot snapshot reads it.
#[derive(Resource, Debug)]
pub struct Undurable {
    /// The sequence of the last durable event, as the store's worker reports it.
    durable_seq: Arc<AtomicU64>,
    /// Oldest first.
    events: VecDeque<DomainEvent>,
    /// Events up to this sequence were let go before they were durable.
    gap_until: u64,
}

impl Undurable {
    pub fn new(durable_seq: Arc<AtomicU64>) -> Self {
        Undurable {
            durable_seq,
            events: VecDeque::new(),
            gap_until: 0,
        }
    }

    /// Keeps the events of an epoch just handed to the store.
    pub fn handed(&mut self, events: &[DomainEvent]) {
        self.forget_durable();
        self.events.extend(events.iter().cloned());
        let excess = self.events.len().saturating_sub(MAX_UNDURABLE);
        if excess > 0
            && let Some(last) = self.events.drain(..excess).next_back()
        {
            self.gap_until = self.gap_until.max(last.seq);
        }
    }

    /// Lets go of the events the store has made durable; returns the durable sequence.
    pub fn forget_durable(&mut self) -> u64 {
        let durable = self.durable_seq.load(Ordering::Relaxed);
        while self.events.front().is_some_and(|e| e.seq <= durable) {
            self.events.pop_front();
        }
        durable
    }

    /// Events up to this sequence were let go before they were durable (0: none).
    pub fn gap_until(&self) -> u64 {
        self.gap_until
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &DomainEvent> {
        self.events.iter()
    }
}

#[cfg(test)]
mod tests {
    use components::events::EventKind;

    use super::*;

    fn event(seq: u64) -> DomainEvent {
        DomainEvent {
            seq,
            kind: EventKind::MonthBegan { year: 1, month: 1 },
            game_time: 0,
            aggregate: "world:w".into(),
        }
    }

    #[test]
    fn undurable_events_are_bounded_and_a_gap_is_remembered() {
        let durable = Arc::new(AtomicU64::new(0));
        let mut undurable = Undurable::new(durable.clone());
        let first: Vec<DomainEvent> = (1..=10).map(event).collect();
        undurable.handed(&first);
        assert_eq!(undurable.events.len(), 10);
        durable.store(4, Ordering::Relaxed);
        assert_eq!(undurable.forget_durable(), 4);
        assert_eq!(undurable.events.front().map(|e| e.seq), Some(5));
        assert_eq!(undurable.gap_until, 0);

        let many: Vec<DomainEvent> = (11..=(MAX_UNDURABLE as u64 + 20)).map(event).collect();
        undurable.handed(&many);
        assert_eq!(undurable.events.len(), MAX_UNDURABLE);
        let first_kept = undurable.events.front().unwrap().seq;
        assert_eq!(undurable.gap_until, first_kept - 1);
        assert_eq!(
            undurable.events.back().unwrap().seq,
            MAX_UNDURABLE as u64 + 20
        );
    }
}

//! The hot snapshot (SPEC 7 `snapshot:{world}`, SPEC 8 recovery): every few seconds the
//! World hands the whole of itself, its positions and the events not yet durable to a writer
//! outside the tick, so a daemon that dies between checkpoints is recovered from seconds ago
//! rather than from its last checkpoint.
//!
//! The events of epochs handed to the store stay here until the store reports them durable;
//! a hot snapshot carries them, so recovery from it can write them. While the store is out,
//! at most [`MAX_UNDURABLE`] are kept: beyond, the oldest are let go and no hot snapshot is
//! taken until the store has caught up past them (a hot snapshot that lacked events could not
//! be recovered from). The channel to the writer holds one snapshot: while the writer is
//! busy, snapshots are skipped rather than queued.
//!
//! Nothing here does I/O.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bevy_ecs::prelude::*;
use components::{
    events::DomainEvent,
    persist::{HotSnapshot, StoredEntity},
    time::GameClock,
};
use crossbeam_channel::Sender;
use tracing::{debug, warn};

use crate::{
    event_log::Outbox,
    persist::{Extract, checkpoint_record, every_entity},
};

/// Events of handed-over epochs kept until they are durable, at most.
pub const MAX_UNDURABLE: usize = 200_000;

/// Where and how often the World hands over hot snapshots.
#[derive(Clone)]
pub struct HotSettings {
    /// To the writer; a bounded channel (a full one skips a snapshot).
    pub sink: Sender<HotSnapshot>,
    /// Real time between snapshots.
    pub interval: Duration,
    /// The sequence of the last durable event, as the store's worker reports it.
    pub durable_seq: Arc<AtomicU64>,
}

impl std::fmt::Debug for HotSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotSettings")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The hot snapshots' state in the World.
#[derive(Resource)]
pub struct Hot {
    settings: HotSettings,
    last: Instant,
    /// Events handed to the store in epochs, oldest first, until they are durable.
    undurable: VecDeque<DomainEvent>,
    /// Events up to this sequence were let go before they were durable.
    gap_until: u64,
    /// Whether the last attempt was skipped for that gap (logged once per gap).
    gap_logged: bool,
}

impl Hot {
    pub fn new(settings: HotSettings) -> Hot {
        Hot {
            settings,
            last: Instant::now(),
            undurable: VecDeque::new(),
            gap_until: 0,
            gap_logged: false,
        }
    }

    /// Keeps the events of an epoch just handed to the store.
    pub(crate) fn handed(&mut self, events: &[DomainEvent]) {
        self.forget_durable();
        self.undurable.extend(events.iter().cloned());
        let excess = self.undurable.len().saturating_sub(MAX_UNDURABLE);
        if excess > 0
            && let Some(last) = self.undurable.drain(..excess).next_back()
        {
            self.gap_until = self.gap_until.max(last.seq);
        }
    }

    /// Lets go of the events the store has made durable; returns the durable sequence.
    fn forget_durable(&mut self) -> u64 {
        let durable = self.settings.durable_seq.load(Ordering::Relaxed);
        while self.undurable.front().is_some_and(|e| e.seq <= durable) {
            self.undurable.pop_front();
        }
        durable
    }
}

/// Hands over a hot snapshot when one is due and the writer can take it. Runs at the end of
/// the publish step, after the epoch (if any) has closed.
pub fn take_hot_snapshot(world: &mut World) {
    let durable = {
        let mut hot = world.resource_mut::<Hot>();
        if hot.last.elapsed() < hot.settings.interval || hot.settings.sink.is_full() {
            return;
        }
        hot.last = Instant::now();
        let durable = hot.forget_durable();
        if hot.gap_until > durable {
            if !hot.gap_logged {
                hot.gap_logged = true;
                warn!(
                    durable_seq = durable,
                    waiting_for = hot.gap_until,
                    "hot snapshots paused: more events wait for the store than they can carry"
                );
            }
            return;
        }
        hot.gap_logged = false;
        durable
    };
    let started = Instant::now();
    let now = world.resource::<GameClock>().game_seconds;
    let (snapshots, _) = every_entity(world, now);
    let entities: Vec<StoredEntity> = snapshots
        .into_iter()
        .filter_map(|s| {
            s.state.map(|state| StoredEntity {
                taken_at: s.taken_at,
                state,
            })
        })
        .collect();
    let mut events: Vec<DomainEvent> = world.resource::<Hot>().undurable.iter().cloned().collect();
    events.extend(
        world
            .resource::<Outbox>()
            .for_store()
            .iter()
            .filter(|e| e.seq > durable)
            .cloned(),
    );
    let (lease_epoch, epoch) = {
        let extract = world.resource::<Extract>();
        // The epoch under way: a checkpoint closed after this snapshot has one as high.
        (extract.lease_epoch(), extract.epoch() + 1)
    };
    let snapshot = HotSnapshot {
        checkpoint: checkpoint_record(world, lease_epoch, epoch),
        entities,
        events,
    };
    debug!(
        entities = snapshot.entities.len(),
        events = snapshot.events.len(),
        took_us = started.elapsed().as_micros() as u64,
        "hot snapshot taken"
    );
    let _ = world.resource::<Hot>().settings.sink.try_send(snapshot);
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
        let (sink, _rx) = crossbeam_channel::bounded(1);
        let durable = Arc::new(AtomicU64::new(0));
        let mut hot = Hot::new(HotSettings {
            sink,
            interval: Duration::from_secs(1),
            durable_seq: durable.clone(),
        });
        let first: Vec<DomainEvent> = (1..=10).map(event).collect();
        hot.handed(&first);
        assert_eq!(hot.undurable.len(), 10);
        durable.store(4, Ordering::Relaxed);
        assert_eq!(hot.forget_durable(), 4);
        assert_eq!(hot.undurable.front().map(|e| e.seq), Some(5));
        assert_eq!(hot.gap_until, 0);

        let many: Vec<DomainEvent> = (11..=(MAX_UNDURABLE as u64 + 20)).map(event).collect();
        hot.handed(&many);
        assert_eq!(hot.undurable.len(), MAX_UNDURABLE);
        let first_kept = hot.undurable.front().unwrap().seq;
        assert_eq!(hot.gap_until, first_kept - 1);
        assert_eq!(hot.undurable.back().unwrap().seq, MAX_UNDURABLE as u64 + 20);
    }
}

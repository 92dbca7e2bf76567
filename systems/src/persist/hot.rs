//! The hot snapshot (docs/redis.md#the-hot-snapshot): every few seconds the lease holder's
//! World hands the whole of itself, its positions and the events not yet durable (kept by
//! [`super::undurable`]) to a writer outside the tick, so a daemon that dies between
//! checkpoints is recovered from seconds ago rather than from its last checkpoint. No hot
//! snapshot is taken while events it would need were let go before they were durable. The
//! channel to the writer holds one snapshot: while the writer is busy, snapshots are skipped
//! rather than queued.
//!
//! Nothing here does I/O.

use std::{
    sync::{Arc, atomic::AtomicU64},
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

use super::{
    Extract,
    state::{checkpoint_record, every_entity},
    undurable::Undurable,
};
use crate::event_log::Outbox;

/// Where and how often the World hands over hot snapshots.
#[derive(Clone)]
pub struct HotSettings {
    /// To the writer; a bounded channel (a full one skips a snapshot).
    pub sink: Sender<HotSnapshot>,
    /// Real time between snapshots.
    pub interval: Duration,
    /// The sequence of the last durable event, as the store's worker reports it (read by
    /// [`Undurable`]).
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
    /// Whether the last attempt was skipped for a gap in the undurable events (logged once
    /// per gap).
    gap_logged: bool,
}

impl Hot {
    pub fn new(settings: HotSettings) -> Hot {
        Hot {
            settings,
            last: Instant::now(),
            gap_logged: false,
        }
    }
}

/// Hands over a hot snapshot when one is due and the writer can take it. Runs at the end of
/// the publish step, after the epoch (if any) has closed.
pub fn take_hot_snapshot(world: &mut World) {
    {
        let hot = world.resource::<Hot>();
        if hot.last.elapsed() < hot.settings.interval || hot.settings.sink.is_full() {
            return;
        }
    }
    world.resource_mut::<Hot>().last = Instant::now();
    let (durable, gap_until) = {
        let mut undurable = world.resource_mut::<Undurable>();
        (undurable.forget_durable(), undurable.gap_until())
    };
    {
        let mut hot = world.resource_mut::<Hot>();
        if gap_until > durable {
            if !hot.gap_logged {
                hot.gap_logged = true;
                warn!(
                    durable_seq = durable,
                    waiting_for = gap_until,
                    "hot snapshots paused: more events wait for the store than they can carry"
                );
            }
            return;
        }
        hot.gap_logged = false;
    }
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
    let mut events: Vec<DomainEvent> = world.resource::<Undurable>().events().cloned().collect();
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

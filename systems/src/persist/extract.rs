//! Checkpoint epochs (docs/storage.md#when-epochs-close): [`collect_changes`] notes what
//! changed in each pass, [`close_epoch_when_due`] closes an epoch when the interval has
//! passed, a city was captured or a nation destroyed, or one was asked for, and
//! [`close_epoch`] builds the [`Batch`] and hands it to the store's worker without waiting.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use bevy_ecs::prelude::*;
use components::{
    events::EventKind,
    persist::{Batch, EntityState, Snapshot, SnapshotKind},
    time::GameClock,
    world::{City, General, Nation},
};
use crossbeam_channel::Sender;
use tracing::error;

use super::{
    PersistSettings,
    state::{checkpoint_record, every_entity, player_state},
    undurable::Undurable,
};
use crate::{
    battle::{Battle, stored::StoredBattle},
    event_log::Outbox,
    rules::{orders::Orders, presence::Presence},
};

/// What the World has changed since the last epoch.
#[derive(Resource)]
pub struct Extract {
    sink: Sender<Batch>,
    interval: Duration,
    lease_epoch: u64,
    epoch: u64,
    last_close: Instant,
    /// The next epoch holds every live entity (the first of an incarnation).
    full: bool,
    /// An epoch is wanted now (a capture, a nation destroyed, or asked for).
    urgent: bool,
    /// Newest state of each changed entity (a tombstone: it no longer exists).
    changed: HashMap<(SnapshotKind, String), Snapshot>,
    /// Battles changed; their state is built when the epoch closes.
    battles: HashSet<Entity>,
    /// Battle ids by entity, to write tombstones for battles that ended.
    battle_ids: HashMap<Entity, String>,
    /// Whether the store's worker was found gone (logged once).
    sink_gone: bool,
    /// Events of this epoch already looked at for captures.
    scanned: usize,
}

impl Extract {
    pub(super) fn new(settings: &PersistSettings) -> Self {
        Extract {
            sink: settings.sink.clone(),
            interval: settings.flush_interval,
            lease_epoch: settings.lease_epoch,
            epoch: settings.last_epoch,
            last_close: Instant::now(),
            full: true,
            urgent: false,
            changed: HashMap::new(),
            battles: HashSet::new(),
            battle_ids: HashMap::new(),
            sink_gone: false,
            scanned: 0,
        }
    }

    /// Asks for an epoch at the end of the next pass.
    pub fn request(&mut self) {
        self.urgent = true;
    }

    /// The last epoch closed.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The lease generation stamped on every epoch.
    pub fn lease_epoch(&self) -> u64 {
        self.lease_epoch
    }

    /// A stored battle restored as `entity`: if it ends before the first epoch is written,
    /// its tombstone is.
    pub(crate) fn remember_battle(&mut self, entity: Entity, id: String) {
        self.battle_ids.insert(entity, id);
    }
}

/// Notes what changed in this pass.
#[allow(clippy::too_many_arguments)] // a bevy system: one parameter per thing it reads
pub fn collect_changes(
    mut extract: ResMut<Extract>,
    nations: Query<&Nation, Changed<Nation>>,
    cities: Query<&City, Changed<City>>,
    generals: Query<&General, Changed<General>>,
    battles: Query<(Entity, &Battle), Changed<Battle>>,
    mut ended: RemovedComponents<Battle>,
    outbox: Res<Outbox>,
    clock: Res<GameClock>,
) {
    let extract = &mut *extract;
    let now = clock.game_seconds;
    for entity in ended.read() {
        extract.battles.remove(&entity);
        if let Some(id) = extract.battle_ids.remove(&entity) {
            extract.changed.insert(
                (SnapshotKind::Battle, id.clone()),
                Snapshot {
                    kind: SnapshotKind::Battle,
                    ref_id: id,
                    state: None,
                    taken_at: now,
                },
            );
        }
    }
    if extract.full {
        // The whole World goes into the next epoch anyway (with the tombstones above).
        return;
    }
    let mut note = |state: EntityState, ref_id: &String| {
        let kind = state.kind();
        extract.changed.insert(
            (kind, ref_id.clone()),
            Snapshot {
                kind,
                ref_id: ref_id.clone(),
                state: Some(state),
                taken_at: now,
            },
        );
    };
    for nation in &nations {
        note(EntityState::Nation(nation.clone()), &nation.id);
    }
    for city in &cities {
        note(EntityState::City(city.clone()), &city.id);
    }
    for general in &generals {
        note(EntityState::General(general.clone()), &general.id);
    }
    for (entity, battle) in &battles {
        extract.battles.insert(entity);
        extract
            .battle_ids
            .entry(entity)
            .or_insert_with(|| battle.id.clone());
    }
    let events = outbox.for_store();
    if events.len() > extract.scanned {
        extract.urgent |= events[extract.scanned..].iter().any(|e| {
            matches!(
                e.kind,
                EventKind::CityCaptured { .. } | EventKind::NationDestroyed { .. }
            )
        });
        extract.scanned = events.len();
    }
}

/// Answers owed to operators' requests (`POST /admin/flush`, `/admin/maintenance`,
/// [`crate::admin`]): each gets the number of the epoch closed at the end of the pass.
#[derive(Resource, Default)]
pub struct EpochReplies(pub Vec<Sender<u64>>);

/// Closes an epoch when one is due: the interval has passed, or a capture or a nation's
/// destruction happened in this pass, or one was asked for.
pub fn close_epoch_when_due(world: &mut World) {
    let asked: Vec<Sender<u64>> = world
        .get_resource_mut::<EpochReplies>()
        .map(|mut r| std::mem::take(&mut r.0))
        .unwrap_or_default();
    let due = !asked.is_empty() || {
        let extract = world.resource::<Extract>();
        extract.urgent || extract.full || extract.last_close.elapsed() >= extract.interval
    };
    if due {
        let epoch = close_epoch(world);
        for reply in asked {
            let _ = reply.try_send(epoch);
        }
    }
}

/// Closes the current epoch now and hands it to the store. Returns its number.
pub fn close_epoch(world: &mut World) -> u64 {
    let batch = build_batch(world);
    let epoch = batch.checkpoint.epoch;
    let mut extract = world.resource_mut::<Extract>();
    if extract.sink.send(batch).is_err() && !extract.sink_gone {
        extract.sink_gone = true;
        error!(
            epoch,
            "the store's worker has stopped: this epoch cannot be written"
        );
    }
    epoch
}

fn build_batch(world: &mut World) -> Batch {
    let now = world.resource::<GameClock>().game_seconds;
    let events = world.resource_mut::<Outbox>().take_for_store();
    if let Some(mut undurable) = world.get_resource_mut::<Undurable>() {
        // Hot snapshots carry them until the store has them.
        undurable.handed(&events);
    }
    let full = world.resource::<Extract>().full;
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let dirty_players: HashSet<String> = {
        let mut players: HashSet<String> = world
            .resource_mut::<Orders>()
            .take_dirty()
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        players.extend(world.resource_mut::<Presence>().take_dirty());
        players
    };
    if full {
        let (all, battle_ids) = every_entity(world, now);
        snapshots = all;
        let mut extract = world.resource_mut::<Extract>();
        // Battles stored before (a recovered World's) that ended since: their tombstones.
        let ended = std::mem::take(&mut extract.changed)
            .into_values()
            .filter(|s| s.state.is_none());
        snapshots.extend(ended);
        extract.battles.clear();
        extract.battle_ids = battle_ids;
    } else {
        let (changed, battles) = {
            let mut extract = world.resource_mut::<Extract>();
            (
                std::mem::take(&mut extract.changed),
                std::mem::take(&mut extract.battles),
            )
        };
        snapshots.extend(changed.into_values());
        for entity in battles {
            if let Some(battle) = world.get::<Battle>(entity) {
                snapshots.push(Snapshot {
                    kind: SnapshotKind::Battle,
                    ref_id: battle.id.clone(),
                    state: Some(StoredBattle::of(battle).state()),
                    taken_at: now,
                });
            }
        }
        let orders = world.resource::<Orders>();
        let presence = world.resource::<Presence>();
        for player in dirty_players {
            let state = player_state(orders, presence, &player);
            snapshots.push(Snapshot {
                kind: SnapshotKind::Player,
                ref_id: player,
                state: Some(EntityState::Player(state)),
                taken_at: now,
            });
        }
    }
    let (lease_epoch, epoch) = {
        let mut extract = world.resource_mut::<Extract>();
        extract.epoch += 1;
        extract.full = false;
        extract.urgent = false;
        extract.scanned = 0;
        extract.last_close = Instant::now();
        (extract.lease_epoch, extract.epoch)
    };
    Batch {
        checkpoint: checkpoint_record(world, lease_epoch, epoch),
        snapshots,
        events,
        full,
    }
}

//! The World's side of persistence (SPEC 8): after each pass, `collect_changes` notes the
//! entities whose components changed (bevy change detection), the players whose order window
//! or activity changed, and the events published; every `flush_interval`, and at once after
//! a capture or a nation's destruction, `close_epoch` turns them into one checkpoint
//! [`Batch`] and hands it to the store's worker through a channel, without waiting.
//!
//! Recovery goes the other way: [`restore_world`] builds a World from a [`Recovered`]
//! checkpoint, and the server replays the command log after it.
//!
//! Nothing here does I/O.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use components::{
    battle::SideView,
    command::Command,
    events::{EventKind, aggregate},
    persist::{Batch, Checkpoint, EntityState, PlayerState, Recovered, Snapshot, SnapshotKind},
    read_model::OrderStatus,
    time::{GameClock, unix_ms},
    world::{City, General, Nation, Registry, WorldInfo},
};
use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::{
    assets::{Data, GameData},
    battle::{Battle, record::hash_hex, setup::BattleSetup, sim::BattleSim},
    event_log::Outbox,
    hot::{Hot, HotSettings, take_hot_snapshot},
    read_models::publish_read_models,
    rules::{
        commands::{AppliedEntry, AppliedSeq, apply_logged},
        orders::{Orders, Revision, Timeline},
        points::regain_points,
        presence::Presence,
    },
    schedule::Publish,
    spawn::WorldSettings,
};

/// A battle under way as stored: enough to rebuild its simulation step for step.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BattleState {
    id: String,
    city: String,
    attacker: SideView,
    defender: SideView,
    garrison: u32,
    started_at: i64,
    /// The JSON of the [`BattleSetup`] (as text: its seed uses all 64 bits, which not every
    /// store keeps as a number).
    setup: String,
    steps: u32,
    state_hash: String,
}

impl BattleState {
    fn of(battle: &Battle) -> BattleState {
        BattleState {
            id: battle.id.clone(),
            city: battle.city.clone(),
            attacker: battle.attacker.clone(),
            defender: battle.defender.clone(),
            garrison: battle.garrison,
            started_at: battle.started_at,
            setup: serde_json::to_string(battle.sim.setup()).unwrap_or_default(),
            steps: battle.sim.steps(),
            state_hash: hash_hex(battle.sim.state_hash()),
        }
    }
}

/// How a World hands its epochs to a store.
#[derive(Clone, Debug)]
pub struct PersistSettings {
    pub sink: Sender<Batch>,
    /// Real time between epochs (`--flush-interval`).
    pub flush_interval: Duration,
    /// Lease generation stamped on every epoch (0 without a lease).
    pub lease_epoch: u64,
    /// The epoch of the checkpoint the World was recovered from (0 for a new world).
    pub last_epoch: u64,
    /// The World's incarnation, begun durably by the store's recovery.
    pub incarnation: u64,
    /// Hot snapshots between epochs (with a lease, SPEC 7).
    pub hot: Option<HotSettings>,
}

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
}

pub struct PersistPlugin(pub PersistSettings);

impl Plugin for PersistPlugin {
    fn build(&self, app: &mut App) {
        let settings = &self.0;
        app.insert_resource(Extract {
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
        })
        .add_systems(
            Publish,
            (collect_changes, close_epoch_when_due)
                .chain()
                .after(publish_read_models),
        );
        if let Some(hot) = &settings.hot {
            app.insert_resource(Hot::new(hot.clone()))
                .add_systems(Publish, take_hot_snapshot.after(close_epoch_when_due));
        }
    }

    fn finish(&self, app: &mut App) {
        app.world_mut().resource_mut::<Outbox>().keep_for_store();
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

/// Closes an epoch when one is due: the interval has passed, or a capture or a nation's
/// destruction happened in this pass, or one was asked for.
pub fn close_epoch_when_due(world: &mut World) {
    let due = {
        let extract = world.resource::<Extract>();
        extract.urgent || extract.full || extract.last_close.elapsed() >= extract.interval
    };
    if due {
        close_epoch(world);
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

fn player_state(orders: &Orders, presence: &Presence, player: &str) -> PlayerState {
    PlayerState {
        player: player.to_string(),
        last_seen: presence.last_seen(player),
        orders: orders.stored(player),
    }
}

/// The state of every live entity (nations, cities, generals, battles, players with their
/// order windows), taken at game second `now`; with the battles' ids by entity.
pub(crate) fn every_entity(
    world: &mut World,
    now: i64,
) -> (Vec<Snapshot>, HashMap<Entity, String>) {
    let mut snapshots = Vec::new();
    let mut push = |state: EntityState, id: String| {
        snapshots.push(Snapshot {
            kind: state.kind(),
            ref_id: id,
            state: Some(state),
            taken_at: now,
        })
    };
    for nation in world.query::<&Nation>().iter(world) {
        push(EntityState::Nation(nation.clone()), nation.id.clone());
    }
    for city in world.query::<&City>().iter(world) {
        push(EntityState::City(city.clone()), city.id.clone());
    }
    for general in world.query::<&General>().iter(world) {
        push(EntityState::General(general.clone()), general.id.clone());
    }
    let mut battle_ids = HashMap::new();
    for (entity, battle) in world.query::<(Entity, &Battle)>().iter(world) {
        battle_ids.insert(entity, battle.id.clone());
        push(battle_state(battle), battle.id.clone());
    }
    let players: HashSet<String> = world
        .resource::<Orders>()
        .players()
        .chain(world.resource::<Presence>().players().map(String::as_str))
        .map(str::to_string)
        .collect();
    let orders = world.resource::<Orders>();
    let presence = world.resource::<Presence>();
    for player in players {
        push(
            EntityState::Player(player_state(orders, presence, &player)),
            player,
        );
    }
    (snapshots, battle_ids)
}

/// The checkpoint record of the World as it is now, for `epoch` of `lease_epoch`.
pub(crate) fn checkpoint_record(world: &World, lease_epoch: u64, epoch: u64) -> Checkpoint {
    let clock = world.resource::<GameClock>();
    let info = world.resource::<WorldInfo>();
    Checkpoint {
        world: info.name.clone(),
        lease_epoch,
        epoch,
        incarnation: world.resource::<Revision>().0,
        last_seq: world.resource::<Outbox>().last_taken(),
        stream_id: world.resource::<AppliedEntry>().0,
        log_seq: world.resource::<AppliedSeq>().0,
        game_seconds: clock.game_seconds,
        tick: clock.tick,
        data_hash: info.data_hash.clone(),
        scenario: info.scenario.clone(),
        updated_at: unix_ms(SystemTime::now()),
    }
}

fn build_batch(world: &mut World) -> Batch {
    let now = world.resource::<GameClock>().game_seconds;
    let events = world.resource_mut::<Outbox>().take_for_store();
    if let Some(mut hot) = world.get_resource_mut::<Hot>() {
        hot.handed(&events);
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
                    state: Some(battle_state(battle)),
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

fn battle_state(battle: &Battle) -> EntityState {
    EntityState::Battle(serde_json::to_value(BattleState::of(battle)).unwrap_or_default())
}

/// Why a checkpoint cannot become a World.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "the stored world was built from scenario \"{stored}\", not \"{asked}\": start with --scenario {stored}, or use another data directory or world"
    )]
    Scenario { stored: String, asked: String },
    #[error("stored battle {id} cannot be rebuilt: {message}")]
    Battle { id: String, message: String },
}

/// Fills an empty World from a checkpoint: entities, battles rebuilt step for step, order
/// windows republished under the next incarnation, presence, the clock and the log
/// positions. Emits `WorldRecovered`.
pub fn restore_world(
    world: &mut World,
    data: Arc<GameData>,
    settings: &WorldSettings,
    recovered: Recovered,
) -> Result<(), RestoreError> {
    let checkpoint = recovered.checkpoint;
    if checkpoint.scenario != data.scenario.id {
        return Err(RestoreError::Scenario {
            stored: checkpoint.scenario,
            asked: data.scenario.id.clone(),
        });
    }
    if checkpoint.data_hash != data.data_hash {
        warn!(
            stored = %checkpoint.data_hash,
            now = %data.data_hash,
            "the designer data changed since the checkpoint; the World goes on with the new data"
        );
    }
    let incarnation = recovered.incarnation.max(checkpoint.incarnation + 1);
    let mut registry = Registry::default();
    let mut orders = Orders::new(data.balance.orders.finished_window.clamp(1, 100_000) as usize);
    let mut presence = Presence::default();
    let mut timeline = Timeline::default();
    let mut battles = Vec::new();
    for stored in recovered.entities {
        match stored.state {
            EntityState::Nation(nation) => {
                let id = nation.id.clone();
                registry.nations.insert(id, world.spawn(nation).id());
            }
            EntityState::City(city) => {
                let id = city.id.clone();
                registry.cities.insert(id, world.spawn(city).id());
            }
            EntityState::General(mut general) => {
                // Points regained since the state was taken changed nothing else.
                regain_points(
                    &mut general,
                    &data,
                    stored.taken_at,
                    checkpoint.game_seconds,
                );
                let id = general.id.clone();
                let owner = general.owner.clone();
                let due = match (&general.march, &general.order) {
                    (Some(march), _) => Some(march.next_at),
                    (None, Some(order)) => Some(order.completes_at),
                    (None, None) => None,
                };
                let entity = world.spawn(general).id();
                if let Some(due) = due {
                    timeline.schedule(due, entity);
                }
                if let Some(owner) = owner {
                    registry.players.insert(owner, id.clone());
                }
                registry.generals.insert(id, entity);
            }
            EntityState::Battle(value) => battles.push(value),
            EntityState::Player(player) => {
                if let Some(at) = player.last_seen {
                    presence.seen(&player.player, at);
                }
                orders.restore(&player.player, player.orders, incarnation);
            }
        }
    }
    for value in battles {
        let state: BattleState =
            serde_json::from_value(value).map_err(|e| RestoreError::Battle {
                id: "?".into(),
                message: e.to_string(),
            })?;
        let battle = rebuild_battle(state)?;
        let id = battle.id.clone();
        let entity = world.spawn(battle).id();
        if let Some(mut extract) = world.get_resource_mut::<Extract>() {
            // So a battle that ends before the first epoch is written leaves a tombstone.
            extract.battle_ids.insert(entity, id.clone());
        }
        registry.battles.insert(id, entity);
    }
    let mut clock = GameClock::new(data.scenario.meta.start, settings.speed);
    clock.game_seconds = checkpoint.game_seconds;
    clock.tick = checkpoint.tick;
    let info = WorldInfo {
        name: settings.name.clone(),
        scenario: data.scenario.id.clone(),
        data_hash: data.data_hash.clone(),
    };
    let mut outbox = Outbox::new(checkpoint.last_seq);
    outbox.owe_to_store(recovered.events);
    outbox.emit(
        clock.game_seconds,
        aggregate("world", &info.name),
        EventKind::WorldRecovered {
            last_seq: checkpoint.last_seq,
            incarnation,
            game_seconds: clock.game_seconds,
        },
    );
    world.insert_resource(registry);
    world.insert_resource(outbox);
    world.insert_resource(clock);
    world.insert_resource(info);
    world.insert_resource(Data(data));
    world.insert_resource(orders);
    world.insert_resource(presence);
    world.insert_resource(timeline);
    world.insert_resource(AppliedSeq(checkpoint.log_seq));
    world.insert_resource(AppliedEntry(checkpoint.stream_id));
    world.insert_resource(Revision(incarnation));
    Ok(())
}

fn rebuild_battle(state: BattleState) -> Result<Battle, RestoreError> {
    let id = state.id.clone();
    let fail = |message: String| RestoreError::Battle {
        id: id.clone(),
        message,
    };
    let setup: BattleSetup = serde_json::from_str(&state.setup).map_err(|e| fail(e.to_string()))?;
    let mut sim = BattleSim::new(setup).map_err(|e| fail(e.to_string()))?;
    while sim.steps() < state.steps && sim.outcome().is_none() {
        sim.step();
    }
    let hash = hash_hex(sim.state_hash());
    if hash != state.state_hash || sim.steps() != state.steps {
        // Another build steps differently: the battle goes on from where this one got.
        warn!(
            battle = %id,
            steps = state.steps,
            reached = sim.steps(),
            hash,
            stored = %state.state_hash,
            "a stored battle replayed to another state; it goes on from the replayed one"
        );
    }
    Ok(Battle {
        id: state.id,
        city: state.city,
        attacker: state.attacker,
        defender: state.defender,
        garrison: state.garrison,
        started_at: state.started_at,
        sim: Box::new(sim),
    })
}

/// Applies commands from the log after a recovery, in log order, each once, as the intake
/// does ([`apply_logged`]: those at or below the World's applied position are skipped, and
/// each counts as its player's activity). Every order a replayed command decides is
/// republished under the World's new revision with an `OrderRevised` event (the World cannot
/// know what a process that died reported). Returns how many were applied.
pub fn replay(world: &mut World, commands: impl IntoIterator<Item = Command>) -> u64 {
    let mut replayed = 0;
    for command in commands {
        if !apply_logged(world, &command) {
            continue;
        }
        replayed += 1;
        if let Some(player) = command.issuer.player() {
            let revision = world.resource::<Revision>().0;
            let record = world
                .resource::<Orders>()
                .get(player, &command.id)
                .map(|r| r.view.clone());
            if let Some(view) = record
                && view.status != OrderStatus::Queued
            {
                let now = world.resource::<GameClock>().game_seconds;
                world.resource_mut::<Outbox>().emit(
                    now,
                    aggregate("player", player),
                    EventKind::OrderRevised {
                        order_id: view.order_id,
                        player: player.to_string(),
                        revision,
                        status: view.status,
                        reason: view.reason,
                    },
                );
            }
        }
    }
    if replayed > 0 {
        info!(replayed, "commands from the log applied again");
    }
    replayed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use components::{
        command::{CommandBody, Issuer},
        read_model::ReadHandle,
    };

    use super::*;
    use crate::{
        app::{AppSettings, Origin, build_app_with},
        driver::run_headless_tick,
        rules::tests::assets,
    };

    fn settings() -> AppSettings {
        AppSettings::new(WorldSettings {
            name: "persist-test".into(),
            speed: 24.0,
        })
    }

    /// A World handing its epochs to `sink`, closing them only when asked (or at once).
    fn persisted(
        data: Arc<GameData>,
        inbox: Option<crossbeam_channel::Receiver<components::command::Inbound>>,
        origin: Origin,
        sink: crossbeam_channel::Sender<Batch>,
    ) -> bevy_app::App {
        let persist = PersistSettings {
            sink,
            flush_interval: Duration::from_secs(3_600),
            lease_epoch: 0,
            last_epoch: 0,
            incarnation: 1,
            hot: None,
        };
        build_app_with(
            data,
            &settings(),
            ReadHandle::default(),
            inbox,
            origin,
            Some(persist),
        )
        .unwrap()
    }

    /// What a store would hold after `batches`: the newest state per entity, the last
    /// checkpoint.
    fn fold(batches: impl IntoIterator<Item = Batch>) -> Recovered {
        let mut entities: BTreeMap<(SnapshotKind, String), components::persist::StoredEntity> =
            BTreeMap::new();
        let mut checkpoint = None;
        let mut last_event = 0;
        for batch in batches {
            for event in &batch.events {
                assert_eq!(
                    event.seq,
                    last_event + 1,
                    "events are contiguous across epochs"
                );
                last_event = event.seq;
            }
            for snapshot in batch.snapshots {
                let key = (snapshot.kind, snapshot.ref_id);
                match snapshot.state {
                    Some(state) => entities.insert(
                        key,
                        components::persist::StoredEntity {
                            taken_at: snapshot.taken_at,
                            state,
                        },
                    ),
                    None => entities.remove(&key),
                };
            }
            assert_eq!(batch.checkpoint.last_seq, last_event);
            checkpoint = Some(batch.checkpoint);
        }
        Recovered {
            checkpoint: checkpoint.expect("at least one epoch"),
            entities: entities.into_values().collect(),
            incarnation: 2,
            events: Vec::new(),
        }
    }

    /// Player ann joins (log sequence 1) and trains (2), each command applied and published
    /// in a pass of its own; `after` runs after each pass.
    fn ann_joins_and_trains(
        world: &mut World,
        bus: &crossbeam_channel::Sender<components::command::Inbound>,
        mut after: impl FnMut(),
    ) {
        for (seq, body) in [
            (
                1,
                CommandBody::parse("JOIN", Some(serde_json::json!({"name": "Ann"}))),
            ),
            (2, CommandBody::parse("TRAIN", None)),
        ] {
            bus.send(components::command::Inbound::Command(Command {
                id: format!("c{seq}"),
                issuer: Issuer::Player("ann".into()),
                general: (seq == 2).then(|| "g-ann".to_string()),
                body: body.unwrap(),
                seq,
                entry: None,
            }))
            .unwrap();
            world.run_schedule(crate::schedule::Intake);
            world.run_schedule(Publish);
            after();
        }
    }

    fn components<T: Component + Clone>(
        world: &mut World,
        id: impl Fn(&T) -> String,
    ) -> BTreeMap<String, T> {
        world
            .query::<&T>()
            .iter(world)
            .map(|c| (id(c), c.clone()))
            .collect()
    }

    #[test]
    fn a_world_restored_from_its_epochs_is_the_world_that_was_stored() {
        let data = Arc::new(crate::assets::load(&assets(), "190").unwrap());
        let (sink, batches) = crossbeam_channel::unbounded();
        let (bus, inbox) = crossbeam_channel::unbounded();
        let mut app = persisted(data.clone(), Some(inbox), Origin::Scenario, sink);
        let world = app.world_mut();
        world.run_schedule(Publish);
        // A player joins and trains; the AI marches, fights and captures.
        ann_joins_and_trains(world, &bus, || {});
        let mut battle_seen = false;
        for _ in 0..2_000 {
            run_headless_tick(world, 1_200);
            world.run_schedule(Publish);
            if world
                .query::<&Battle>()
                .iter(world)
                .any(|b| b.sim.steps() > 10)
            {
                battle_seen = true;
                break;
            }
        }
        assert!(battle_seen, "the AI starts a battle within the span");
        let last = close_epoch(world);
        let mut epochs: Vec<Batch> = batches.try_iter().collect();
        assert_eq!(epochs.last().map(|b| b.checkpoint.epoch), Some(last));
        assert!(epochs[0].full && epochs.iter().skip(1).all(|b| !b.full));
        assert!(epochs.len() > 2, "captures close epochs at once");
        let recovered = fold(epochs.drain(..));
        assert_eq!(recovered.checkpoint.log_seq, 2);

        let mut restored = build_app_with(
            data,
            &settings(),
            ReadHandle::default(),
            None,
            Origin::Checkpoint(Box::new(recovered)),
            None,
        )
        .unwrap();
        let copy = restored.world_mut();
        assert_eq!(
            components::<Nation>(world, |n| n.id.clone()),
            components::<Nation>(copy, |n| n.id.clone())
        );
        assert_eq!(
            components::<City>(world, |c| c.id.clone()),
            components::<City>(copy, |c| c.id.clone())
        );
        assert_eq!(
            components::<General>(world, |g| g.id.clone()),
            components::<General>(copy, |g| g.id.clone())
        );
        let battles = |w: &mut World| -> BTreeMap<String, (u32, u64)> {
            w.query::<&Battle>()
                .iter(w)
                .map(|b| (b.id.clone(), (b.sim.steps(), b.sim.state_hash())))
                .collect()
        };
        let before = battles(world);
        assert!(!before.is_empty());
        assert_eq!(before, battles(copy));
        let clock = world.resource::<GameClock>();
        let restored_clock = copy.resource::<GameClock>();
        assert_eq!(
            (clock.game_seconds, clock.tick),
            (restored_clock.game_seconds, restored_clock.tick)
        );
        let window = |w: &World| {
            let mut orders = w.resource::<Orders>().stored("ann");
            for order in &mut orders {
                order.view.revision = 0;
            }
            orders
        };
        assert_eq!(window(world), window(copy));
        assert!(
            copy.resource::<Orders>()
                .stored("ann")
                .iter()
                .all(|o| o.view.revision == 2)
        );
        assert_eq!(copy.resource::<Revision>().0, 2);
        assert_eq!(copy.resource::<AppliedSeq>().0, 2);
        assert_eq!(
            world.resource::<Presence>().last_seen("ann"),
            copy.resource::<Presence>().last_seen("ann")
        );
        assert_eq!(
            copy.resource::<Outbox>().last_seq(),
            world.resource::<Outbox>().last_seq() + 1,
            "WorldRecovered follows the last stored event"
        );
        assert_eq!(
            copy.resource::<Timeline>().len(),
            world
                .query::<&General>()
                .iter(world)
                .filter(|g| g.order.is_some() || g.march.is_some())
                .count()
        );

        // Both go on alike: the restored battles step to the same states.
        for w in [&mut *world, &mut *copy] {
            for _ in 0..5 {
                run_headless_tick(w, 60);
            }
        }
        assert_eq!(battles(world), battles(copy));
    }

    #[test]
    fn a_battle_that_ends_before_a_recovered_worlds_first_epoch_leaves_a_tombstone() {
        let data = Arc::new(crate::assets::load(&assets(), "190").unwrap());
        let (sink, batches) = crossbeam_channel::unbounded();
        let mut app = persisted(data.clone(), None, Origin::Scenario, sink);
        let world = app.world_mut();
        world.run_schedule(Publish);
        while world.query::<&Battle>().iter(world).next().is_none() {
            run_headless_tick(world, 1_200);
            world.run_schedule(Publish);
        }
        close_epoch(world);
        let recovered = fold(batches.try_iter());
        let stored: Vec<String> = world
            .query::<&Battle>()
            .iter(world)
            .map(|b| b.id.clone())
            .collect();

        let (sink, batches) = crossbeam_channel::unbounded();
        let mut restored = persisted(data, None, Origin::Checkpoint(Box::new(recovered)), sink);
        let copy = restored.world_mut();
        // Catching up before the first pass publishes: the battles end.
        for _ in 0..500 {
            if copy.query::<&Battle>().iter(copy).next().is_none() {
                break;
            }
            run_headless_tick(copy, 1_200);
        }
        assert!(copy.query::<&Battle>().iter(copy).next().is_none());
        copy.run_schedule(Publish);
        let first = batches.try_recv().unwrap();
        assert!(first.full);
        for id in stored {
            assert!(
                first
                    .snapshots
                    .iter()
                    .any(|s| s.kind == SnapshotKind::Battle && s.ref_id == id && s.state.is_none()),
                "no tombstone for {id}"
            );
        }
    }

    #[test]
    fn a_world_recovered_from_a_hot_snapshot_owes_its_store_the_undurable_events() {
        use std::sync::atomic::{AtomicU64, Ordering};

        use components::persist::HotSnapshot;

        use crate::hot::HotSettings;

        let data = Arc::new(crate::assets::load(&assets(), "190").unwrap());
        let (sink, batches) = crossbeam_channel::unbounded();
        let (hot_tx, hot_rx) = crossbeam_channel::bounded::<HotSnapshot>(1);
        let durable = Arc::new(AtomicU64::new(0));
        let (bus, inbox) = crossbeam_channel::unbounded();
        let persist = PersistSettings {
            sink,
            flush_interval: Duration::from_secs(3_600),
            lease_epoch: 3,
            last_epoch: 0,
            incarnation: 1,
            hot: Some(HotSettings {
                sink: hot_tx,
                interval: Duration::ZERO,
                durable_seq: durable.clone(),
            }),
        };
        let mut app = build_app_with(
            data.clone(),
            &settings(),
            ReadHandle::default(),
            Some(inbox),
            Origin::Scenario,
            Some(persist),
        )
        .unwrap();
        let world = app.world_mut();
        world.run_schedule(Publish);
        // The first (full) epoch is durable; what follows is not.
        let first = batches.try_recv().unwrap();
        durable.store(first.checkpoint.last_seq, Ordering::Relaxed);
        let _ = hot_rx.try_recv();
        ann_joins_and_trains(world, &bus, || {
            let _ = hot_rx.try_recv();
        });
        for _ in 0..50 {
            run_headless_tick(world, 1_200);
            world.run_schedule(Publish);
            let _ = hot_rx.try_recv();
        }
        // An epoch is handed over (not durable), then more happens before the snapshot.
        close_epoch(world);
        for _ in 0..20 {
            run_headless_tick(world, 1_200);
        }
        world.run_schedule(Publish);
        let hot = hot_rx.try_recv().expect("a hot snapshot each pass");
        assert_eq!(hot.checkpoint.lease_epoch, 3);
        assert!(batches.try_iter().count() >= 1);
        assert_eq!(
            hot.checkpoint.epoch,
            world.resource::<Extract>().epoch() + 1,
            "the epoch under way"
        );
        assert_eq!(hot.checkpoint.log_seq, 2);
        assert_eq!(
            hot.checkpoint.last_seq,
            world.resource::<Outbox>().last_taken()
        );
        let seqs: Vec<u64> = hot.events.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> =
            (first.checkpoint.last_seq + 1..=hot.checkpoint.last_seq).collect();
        assert_eq!(
            seqs, expected,
            "every event after the durable one, in order"
        );

        // Recovery from it: the same World, and the first epoch writes the owed events.
        let (sink, batches) = crossbeam_channel::unbounded();
        let recovered = Recovered {
            checkpoint: hot.checkpoint.clone(),
            entities: hot.entities,
            incarnation: 2,
            events: hot.events,
        };
        let mut restored = persisted(data, None, Origin::Checkpoint(Box::new(recovered)), sink);
        let copy = restored.world_mut();
        assert_eq!(
            components::<General>(world, |g| g.id.clone()),
            components::<General>(copy, |g| g.id.clone())
        );
        assert_eq!(
            components::<City>(world, |c| c.id.clone()),
            components::<City>(copy, |c| c.id.clone())
        );
        assert_eq!(copy.resource::<AppliedSeq>().0, 2);
        assert!(copy.resource::<Orders>().get("ann", "c2").is_some());
        close_epoch(copy);
        let owed = batches.try_recv().unwrap();
        assert!(owed.full);
        assert_eq!(owed.checkpoint.last_seq, hot.checkpoint.last_seq);
        let written: Vec<u64> = owed.events.iter().map(|e| e.seq).collect();
        assert_eq!(written, expected);
        copy.run_schedule(Publish);
        close_epoch(copy);
        let next = batches.try_recv().unwrap();
        assert_eq!(
            next.events.first().map(|e| (e.seq, e.kind.name())),
            Some((hot.checkpoint.last_seq + 1, "WorldRecovered"))
        );
    }
}

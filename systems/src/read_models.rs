//! Publishing read models (docs/http.md#read-consistency): after each pass of ticks the World
//! turns what changed into immutable views and swaps a new [`ReadModels`] into the shared
//! handle. Only changed entities are rebuilt; the persistent maps share the rest with the
//! previous snapshot, and readers holding an old snapshot are never disturbed.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use components::{
    battle::{BattleStatus, BattleView, FrameView},
    data::PositionsFile,
    events::DomainEvent,
    read_model::{
        CityView, GeneralView, Key, MarchView, NationView, ORDER_FEED_LEN, OrderChange,
        OrderRecord, PositionView, ReadHandle, ReadModels, RulesView, WorldSummary,
    },
    time::GameClock,
    world::{City, General, Nation, NationStatus, WorldInfo},
};
use imbl::{OrdMap, Vector};

use crate::{
    assets::Data,
    battle::{Battle, FinishedBattles},
    event_log::Outbox,
    rules::{
        intake::{AppliedEntry, AppliedLogSeq},
        orders::{Incarnation, OrderTouch, Orders, RecoveredSeq, active_view},
    },
    schedule::{Publish, PublishSet},
};

/// Battle steps between two frames of a battle: 10 frames per second of battle time.
pub const FRAME_EVERY_STEPS: u32 = 6;
/// Finished battles kept in the read models by default, most recent first.
pub const FINISHED_BATTLES_KEPT: usize = 100;
/// Battle steps between two recordings of a battle under way: one per second of battle time.
pub const RECORD_EVERY_STEPS: u32 = 60;

/// Publishes read models into `handle`, keeping the last `event_window` events.
pub struct ReadModelPlugin {
    pub handle: ReadHandle,
    pub event_window: usize,
    /// Finished battles kept, with their last frame and recording.
    pub battles_kept: usize,
}

impl Plugin for ReadModelPlugin {
    fn build(&self, app: &mut App) {
        let mut publisher = ReadPublisher::new(self.handle.clone(), self.event_window);
        publisher.battles_kept = self.battles_kept.max(1);
        app.insert_resource(publisher)
            .add_systems(Publish, publish_read_models.in_set(PublishSet::ReadModels));
    }
}

#[derive(Default)]
struct Members {
    cities: BTreeSet<String>,
    generals: BTreeSet<String>,
}

/// The read side's view of the World, kept between publishes.
#[derive(Resource)]
pub struct ReadPublisher {
    handle: ReadHandle,
    nations: OrdMap<Key, Arc<NationView>>,
    cities: OrdMap<Key, Arc<CityView>>,
    generals: OrdMap<Key, Arc<GeneralView>>,
    battles: OrdMap<Key, Arc<BattleView>>,
    frames: OrdMap<Key, Arc<FrameView>>,
    final_frames: OrdMap<Key, Arc<FrameView>>,
    /// The recording of each battle: as it stood at its last recorded step while under way,
    /// as it ended once finished.
    recordings: OrdMap<Key, Arc<str>>,
    /// The step of each battle under way's last recording.
    recorded_at: HashMap<String, u32>,
    /// Finished battles kept.
    battles_kept: usize,
    /// Finished battles in the read models, oldest first.
    finished: VecDeque<String>,
    events: Vector<Arc<DomainEvent>>,
    orders: OrdMap<Key, OrdMap<Key, Arc<OrderRecord>>>,
    order_feed: Vector<OrderChange>,
    /// Cities and generals of each nation, kept up to date from ownership changes.
    members: HashMap<String, Members>,
    /// Most recent events kept in the read models (the live events' window; `GET
    /// /api/events` reads the durable log).
    event_window: usize,
    /// The rules of the data in force, rebuilt when its hash changes.
    rules: Arc<RulesView>,
}

impl ReadPublisher {
    pub fn new(handle: ReadHandle, event_window: usize) -> Self {
        ReadPublisher {
            handle,
            nations: OrdMap::new(),
            cities: OrdMap::new(),
            generals: OrdMap::new(),
            battles: OrdMap::new(),
            frames: OrdMap::new(),
            final_frames: OrdMap::new(),
            recordings: OrdMap::new(),
            recorded_at: HashMap::new(),
            battles_kept: FINISHED_BATTLES_KEPT,
            finished: VecDeque::new(),
            events: Vector::new(),
            orders: OrdMap::new(),
            order_feed: Vector::new(),
            members: HashMap::new(),
            event_window: event_window.max(1),
            rules: Arc::new(RulesView::default()),
        }
    }

    /// Moves `id` from `old`'s members to `new`'s, marking both nations for rebuilding.
    fn move_member(
        &mut self,
        id: &str,
        old: Option<&String>,
        new: Option<&String>,
        pick: fn(&mut Members) -> &mut BTreeSet<String>,
        dirty: &mut BTreeSet<String>,
    ) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            pick(self.members.entry(old.clone()).or_default()).remove(id);
            dirty.insert(old.clone());
        }
        if let Some(new) = new {
            pick(self.members.entry(new.clone()).or_default()).insert(id.to_string());
            dirty.insert(new.clone());
        }
    }
}

/// A view carrying a version that increases each time it changes.
trait Versioned: PartialEq {
    fn version(&self) -> u64;
    fn set_version(&mut self, version: u64);
}

macro_rules! versioned {
    ($($view:ty),*) => {$(
        impl Versioned for $view {
            fn version(&self) -> u64 {
                self.version
            }
            fn set_version(&mut self, version: u64) {
                self.version = version;
            }
        }
    )*};
}
versioned!(NationView, CityView, GeneralView, BattleView);

/// `view` with the version after `old`'s, or `None` if nothing but the version differs.
fn next_version<T: Versioned>(old: Option<&Arc<T>>, mut view: T) -> Option<Arc<T>> {
    let previous = old.map_or(0, |o| o.version());
    view.set_version(previous);
    if old.is_some_and(|o| **o == view) {
        return None;
    }
    view.set_version(previous + 1);
    Some(Arc::new(view))
}

fn city_view(city: &City) -> CityView {
    CityView {
        id: city.id.clone(),
        name: city.name.clone(),
        x: city.x,
        y: city.y,
        nation: city.owner.clone(),
        population: city.population,
        agriculture: city.agriculture,
        commerce: city.commerce,
        defense: city.defense,
        walls: city.walls,
        gold: city.gold,
        rice: city.rice,
        garrison: city.garrison,
        neighbors: city.neighbors.clone(),
        version: 0,
    }
}

fn general_view(general: &General, positions: &PositionsFile, incarnation: u64) -> GeneralView {
    GeneralView {
        id: general.id.clone(),
        name: general.name.clone(),
        owner: general.owner.clone(),
        nation: general.nation.clone(),
        city: general.city.clone(),
        status: general.status,
        leadership: general.stats.leadership,
        strength: general.stats.strength,
        intelligence: general.stats.intelligence,
        politics: general.stats.politics,
        charm: general.stats.charm,
        troops: general.troops,
        troop_type: general.troop_type,
        training: general.training,
        morale: general.morale,
        pcp: general.pcp.points(),
        pcp_max: general.pcp_max.points(),
        mcp: general.mcp.points(),
        mcp_max: general.mcp_max.points(),
        position: general.position.as_ref().map(|p| {
            let card = positions.card(p.kind);
            PositionView {
                name: p.kind.name().to_string(),
                level: card.level as u8,
                cp_multiplier: card.cp_multiplier,
                city: p.city.clone(),
            }
        }),
        order: general
            .order
            .as_ref()
            .map(|o| Box::new(active_view(o, &general.id, incarnation))),
        march: general.march.as_ref().map(|m| {
            Box::new(MarchView {
                from: m.from().to_string(),
                to: m.to().to_string(),
                path: m.path.clone(),
                eta: m.eta,
                started_at: m.started_at,
            })
        }),
        protected: general.protected,
        ai_delegate: general.ai_delegate,
        version: 0,
    }
}

fn nation_view(nation: &Nation, members: Option<&Members>) -> NationView {
    NationView {
        id: nation.id.clone(),
        name: nation.name.clone(),
        color: nation.color.clone(),
        status: nation.status,
        ruler: nation.ruler.clone(),
        capital: nation.capital.clone(),
        gold: nation.gold,
        rice: nation.rice,
        tax_rate: nation.tax_rate,
        relations: nation.relations.clone(),
        relations_since: nation.relations_since.clone(),
        city_ids: members.map_or_else(Vec::new, |m| m.cities.iter().cloned().collect()),
        general_ids: members.map_or_else(Vec::new, |m| m.generals.iter().cloned().collect()),
        version: 0,
    }
}

/// Rebuilds the views of what changed and swaps the new snapshot in.
#[allow(clippy::too_many_arguments)]
pub fn publish_read_models(
    mut publisher: ResMut<ReadPublisher>,
    mut outbox: ResMut<Outbox>,
    clock: Res<GameClock>,
    info: Res<WorldInfo>,
    data: Res<Data>,
    nations: Query<Ref<Nation>>,
    cities: Query<Ref<City>>,
    generals: Query<Ref<General>>,
    battles: Query<Ref<Battle>>,
    mut finished: ResMut<FinishedBattles>,
    mut orders: ResMut<Orders>,
    incarnation: Res<Incarnation>,
    recovered_seq: Option<Res<RecoveredSeq>>,
    applied: Option<Res<AppliedLogSeq>>,
    applied_entry: Option<Res<AppliedEntry>>,
    (sandbox, maintenance): (
        Option<Res<components::world::Sandbox>>,
        Option<Res<components::world::Maintenance>>,
    ),
) {
    let publisher = &mut *publisher;
    let mut dirty = BTreeSet::new();

    for city in cities.iter().filter(|c| c.is_changed()) {
        let old = publisher.cities.get(city.id.as_str()).cloned();
        if let Some(view) = next_version(old.as_ref(), city_view(&city)) {
            let old_owner = old.and_then(|o| o.nation.clone());
            publisher.move_member(
                &city.id,
                old_owner.as_ref(),
                view.nation.as_ref(),
                |m| &mut m.cities,
                &mut dirty,
            );
            publisher.cities.insert(Key::from(city.id.as_str()), view);
        }
    }
    for general in generals.iter().filter(|g| g.is_changed()) {
        let old = publisher.generals.get(general.id.as_str()).cloned();
        let view = general_view(&general, &data.positions, incarnation.0);
        if let Some(view) = next_version(old.as_ref(), view) {
            let old_nation = old.and_then(|o| o.nation.clone());
            publisher.move_member(
                &general.id,
                old_nation.as_ref(),
                view.nation.as_ref(),
                |m| &mut m.generals,
                &mut dirty,
            );
            publisher
                .generals
                .insert(Key::from(general.id.as_str()), view);
        }
    }
    let mut active_nations = 0;
    for nation in &nations {
        active_nations += usize::from(nation.status == NationStatus::Active);
        if nation.is_changed() || dirty.contains(&nation.id) {
            let old = publisher.nations.get(nation.id.as_str()).cloned();
            let view = nation_view(&nation, publisher.members.get(&nation.id));
            if let Some(view) = next_version(old.as_ref(), view) {
                publisher
                    .nations
                    .insert(Key::from(nation.id.as_str()), view);
            }
        }
    }

    let mut battles_active = 0;
    for battle in &battles {
        if battle.sim.outcome().is_none() {
            battles_active += 1;
        }
        if !battle.is_changed() {
            continue;
        }
        let old = publisher.battles.get(battle.id.as_str()).cloned();
        if let Some(view) = next_version(old.as_ref(), battle.view()) {
            publisher
                .battles
                .insert(Key::from(battle.id.as_str()), view);
        }
        let last_frame = publisher.frames.get(battle.id.as_str()).map(|f| f.tick);
        if last_frame.is_none_or(|tick| battle.sim.steps() >= tick + FRAME_EVERY_STEPS) {
            let frame = FrameView {
                battle: battle.id.clone(),
                tick: battle.sim.steps(),
                units: battle.sim.frame_units(),
                groups: battle.sim.frame_groups(),
                last: false,
            };
            publisher
                .frames
                .insert(Key::from(battle.id.as_str()), Arc::new(frame));
        }
        let last_record = publisher.recorded_at.get(battle.id.as_str()).copied();
        if last_record.is_none_or(|step| battle.sim.steps() >= step + RECORD_EVERY_STEPS) {
            publisher
                .recorded_at
                .insert(battle.id.clone(), battle.sim.steps());
            if let Some(recording) = battle.recording() {
                publisher
                    .recordings
                    .insert(Key::from(battle.id.as_str()), recording);
            }
        }
    }
    for crate::battle::Finished {
        view,
        last_frame,
        recording,
    } in finished.0.drain(..)
    {
        debug_assert_eq!(view.status, BattleStatus::Finished);
        let old = publisher.battles.get(view.id.as_str()).cloned();
        publisher.frames.remove(view.id.as_str());
        publisher.recorded_at.remove(view.id.as_str());
        publisher
            .final_frames
            .insert(Key::from(view.id.as_str()), Arc::new(last_frame));
        match recording {
            Some(recording) => {
                publisher
                    .recordings
                    .insert(Key::from(view.id.as_str()), recording);
            }
            // A recording of the battle under way is not its end.
            None => {
                publisher.recordings.remove(view.id.as_str());
            }
        }
        if let Some(view) = next_version(old.as_ref(), view) {
            publisher.finished.push_back(view.id.clone());
            publisher.battles.insert(Key::from(view.id.as_str()), view);
        }
        while publisher.finished.len() > publisher.battles_kept {
            if let Some(oldest) = publisher.finished.pop_front() {
                publisher.battles.remove(oldest.as_str());
                publisher.final_frames.remove(oldest.as_str());
                publisher.recordings.remove(oldest.as_str());
            }
        }
    }

    let mut feed_seq = publisher.order_feed.back().map_or(0, |c| c.seq);
    for touch in orders.take_changed() {
        let (player, id, entry, evicted) = match touch {
            OrderTouch::Put(player, id) => {
                let entry = orders.get(&player, &id).cloned();
                (player, id, entry, false)
            }
            OrderTouch::Evicted(player, id, last) => (player, id, Some(last), true),
        };
        // In place where the player is known; keys are the World's own (shared, not copied).
        // A player's window is made by its first order the window still holds.
        if entry.is_some() && !evicted && publisher.orders.get(&*player).is_none() {
            publisher.orders.insert(player.clone(), OrdMap::new());
        }
        let window = publisher.orders.get_mut(&*player);
        let fed = match (entry, evicted) {
            // A put order the window has since let go: its eviction, later in the list,
            // carries its last state.
            (None, _) => {
                if let Some(window) = window {
                    window.remove(&*id);
                }
                None
            }
            // Fed unless this publish already fed that same state (nothing was fed for a
            // player never published).
            (Some(last), true) => {
                let last = Arc::new(last);
                let unchanged = window
                    .and_then(|w| w.remove(&*id))
                    .is_some_and(|old| *old == *last);
                (!unchanged).then_some(last)
            }
            (Some(entry), false) => {
                let Some(window) = window else {
                    continue;
                };
                match window.get_mut(&*id) {
                    Some(old) if **old == entry => None,
                    Some(old) => {
                        *old = Arc::new(entry);
                        Some(old.clone())
                    }
                    None => {
                        let entry = Arc::new(entry);
                        window.insert(id, entry.clone());
                        Some(entry)
                    }
                }
            }
        };
        if let Some(record) = fed {
            feed_seq += 1;
            publisher.order_feed.push_back(OrderChange {
                seq: feed_seq,
                player,
                record,
            });
        }
    }
    while publisher.order_feed.len() > ORDER_FEED_LEN {
        publisher.order_feed.pop_front();
    }

    for event in outbox.take() {
        publisher.events.push_back(Arc::new(event));
    }
    while publisher.events.len() > publisher.event_window {
        publisher.events.pop_front();
    }

    let world = WorldSummary {
        world: info.name.clone(),
        scenario: info.scenario.clone(),
        data_hash: info.data_hash.clone(),
        game_seconds: clock.game_seconds,
        game_date: clock.date(),
        speed: clock.speed,
        effective_speed: clock.effective_speed,
        clock_lag_seconds: clock.lag_seconds,
        tick: clock.tick,
        nations: active_nations,
        cities: publisher.cities.len(),
        generals: publisher.generals.len(),
        battles_active,
        incarnation: incarnation.0,
        recovered_seq: recovered_seq.map_or(0, |r| r.0),
        sandbox: sandbox.is_some(),
        paused: sandbox.is_some_and(|s| s.paused),
        maintenance: maintenance.map(|m| m.message.clone()),
    };
    if publisher.rules.data_hash != data.data_hash || publisher.rules.commands.is_empty() {
        publisher.rules = Arc::new(crate::rules_view::rules_view(&data));
    }
    publisher.handle.store(Some(Arc::new(ReadModels {
        world: Arc::new(world),
        rules: publisher.rules.clone(),
        nations: publisher.nations.clone(),
        cities: publisher.cities.clone(),
        generals: publisher.generals.clone(),
        battles: publisher.battles.clone(),
        frames: publisher.frames.clone(),
        final_frames: publisher.final_frames.clone(),
        recordings: publisher.recordings.clone(),
        events: publisher.events.clone(),
        orders: publisher.orders.clone(),
        order_feed: publisher.order_feed.clone(),
        applied_log_seq: applied.map_or(0, |a| a.0),
        applied_entry: applied_entry.and_then(|a| a.0),
    })));
}

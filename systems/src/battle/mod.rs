//! Battles in the World (docs/rules.md#battles): a battle is an entity holding its own
//! simulation, stepped by the [`BattleTick`] schedule independently of other battles and of the
//! strategy tick.
//!
//! Battle time is tied to game time: a battle started at game second `s` is owed `(now - s) /
//! game_seconds_per_step` steps, where `now` is the strategy clock, so its outcome does not
//! depend on the speed. Battles never run ahead of the strategy clock (so a reinforcement
//! arriving at game time `t` always joins at the same step); when they fall behind by more than
//! two strategy ticks, the driver holds the clock until they catch up.
//!
//! The rules (marches that meet, capture) call [`spawn_battle`] and [`join_battle`]; the
//! battle's end puts the survivors back into the generals' troops and the city's garrison and
//! leaves its result in [`BattleResults`] for the rules to act on. This module knows nothing of
//! the rules.

pub mod baseline;
pub mod grid;
pub mod pool;
pub mod record;
pub mod setup;
#[cfg(test)]
mod siege_tests;
pub mod sim;
pub mod stored;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use components::{
    battle::{BattleStatus, BattleView, FrameView, Side, SideView, UnitsAlive},
    data::TroopsFile,
    events::{EventKind, aggregate},
    time::GameClock,
    world::{City, General, GeneralStatus, Registry, TroopType, WorldInfo},
};
use metrics::gauge;
pub use pool::BattlePool;
use pool::Stepping;
use setup::{BattleParams, BattleSetup, GroupSetup, SetupError};
use sim::{BattleSim, seed_from};

use crate::{
    assets::Data,
    event_log::Outbox,
    schedule::{BattleSet, BattleTick},
};

/// Id of the group a city's garrison forms.
pub const GARRISON: &str = "garrison";

/// A battle under way.
#[derive(Component)]
pub struct Battle {
    pub id: String,
    pub city: String,
    pub attacker: SideView,
    pub defender: SideView,
    /// Garrison soldiers that joined the defence.
    pub garrison: u32,
    /// Game second the battle began.
    pub started_at: i64,
    /// Hash of the designer data in force when it began: its setup holds a copy of that
    /// data's numbers, whatever is reloaded while it lasts.
    pub data_hash: String,
    pub sim: Box<BattleSim>,
}

impl Battle {
    /// Steps the strategy clock says this battle should have run by game second `now`.
    pub fn due_steps(&self, now: i64) -> u64 {
        let ms = (now - self.started_at).max(0) as u64 * 1_000;
        ms / u64::from(self.sim.setup().params.game_ms_per_step)
    }

    /// Game second at which the battle's last simulated step ended.
    pub fn game_time(&self) -> i64 {
        let ms = u64::from(self.sim.steps()) * u64::from(self.sim.setup().params.game_ms_per_step);
        self.started_at + (ms / 1_000) as i64
    }

    /// The read model of this battle.
    /// The battle's recording as it stands (the JSON `tianxia battle run` replays to its
    /// state hash). Never a fault of the World: a recording that cannot be written is not
    /// kept.
    pub fn recording(&self) -> Option<Arc<str>> {
        serde_json::to_string_pretty(&record::BattleRecord::of(
            &self.sim,
            &self.id,
            &self.data_hash,
        ))
        .inspect_err(|e| {
            tracing::warn!(battle = %self.id, error = %e, "the battle's recording cannot be written")
        })
        .ok()
        .map(Arc::from)
    }

    pub fn view(&self) -> BattleView {
        let alive = self.sim.units_alive();
        let outcome = self.sim.outcome();
        let casualties =
            self.sim
                .group_results()
                .into_iter()
                .fold(BTreeMap::new(), |mut map, g| {
                    *map.entry(g.id).or_insert(0) += g.casualties;
                    map
                });
        BattleView {
            id: self.id.clone(),
            city: self.city.clone(),
            status: if outcome.is_some() {
                BattleStatus::Finished
            } else {
                BattleStatus::Active
            },
            attacker: self.attacker.clone(),
            defender: self.defender.clone(),
            started_at: self.started_at,
            ended_at: outcome.map(|_| self.game_time()),
            winner: outcome.map(|o| o.winner),
            reason: outcome.map(|o| o.reason),
            units_alive: UnitsAlive {
                attacker: alive[0],
                defender: alive[1],
            },
            casualties,
            steps: self.sim.steps(),
            field: self.sim.field(),
            data_hash: self.data_hash.clone(),
            version: 0,
        }
    }
}

/// How the driver wants battles stepped this run.
#[derive(Resource, Clone, Debug)]
pub struct BattlePace {
    /// Step as fast as `budget` allows: the strategy clock is waiting for battles.
    pub catch_up: bool,
    /// Share of a battle's owed steps to run per battle tick when not catching up (the
    /// battle period over the strategy period), so steps spread evenly between strategy
    /// ticks.
    pub share: f64,
    /// Real time one run of the battle schedule may take.
    pub budget: Duration,
}

impl Default for BattlePace {
    fn default() -> Self {
        BattlePace {
            catch_up: false,
            share: 1.0,
            budget: Duration::from_millis(16),
        }
    }
}

/// Threads the battle pool has unless configured: one per core the process may use.
pub fn default_battle_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Game milliseconds of steps the furthest-behind battle owes the strategy clock.
pub fn backlog_ms(world: &mut World) -> u64 {
    let now = world.resource::<GameClock>().game_seconds;
    world
        .query::<&Battle>()
        .iter(world)
        .filter(|battle| battle.sim.outcome().is_none())
        .map(|battle| {
            let owed = battle
                .due_steps(now)
                .saturating_sub(u64::from(battle.sim.steps()));
            owed * u64::from(battle.sim.setup().params.game_ms_per_step)
        })
        .max()
        .unwrap_or(0)
}

/// A battle that ended, as the rules that act on it need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Concluded {
    pub battle: String,
    pub city: String,
    pub winner: Side,
    pub attacker_nation: Option<String>,
    pub attackers: Vec<String>,
    /// Game second it ended.
    pub at: i64,
}

/// Battles concluded since the rules last looked.
#[derive(Resource, Default, Debug)]
pub struct BattleResults(pub Vec<Concluded>);

/// A battle that ended, as the read side keeps it: its view, its last frame, and its
/// recording (the JSON `tianxia battle run` replays).
pub struct Finished {
    pub view: BattleView,
    pub last_frame: FrameView,
    pub recording: Option<Arc<str>>,
}

/// Battles that ended since the last publish, for the read side.
#[derive(Resource, Default)]
pub struct FinishedBattles(pub Vec<Finished>);

pub struct BattlePlugin {
    /// Threads of the [`BattlePool`].
    pub threads: usize,
}

impl Plugin for BattlePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<BattlePace>()
            .insert_resource(BattlePool::new(self.threads))
            .init_resource::<FinishedBattles>()
            .init_resource::<BattleResults>()
            .add_systems(BattleTick, step_battles.in_set(BattleSet::Step))
            .add_systems(BattleTick, conclude_battles.in_set(BattleSet::Conclude));
    }
}

/// Steps every battle towards the strategy clock: evenly between strategy ticks, or as fast
/// as the budget allows when catching up; in rounds of one step each, the battles of a round
/// side by side on the [`BattlePool`].
pub fn step_battles(
    mut battles: Query<&mut Battle>,
    clock: Res<GameClock>,
    pace: Res<BattlePace>,
    pool: Res<BattlePool>,
) {
    let now = clock.game_seconds;
    let mut quota: Vec<(Mut<Battle>, u64)> = battles
        .iter_mut()
        .map(|battle| {
            let owed = battle
                .due_steps(now)
                .saturating_sub(u64::from(battle.sim.steps()));
            let quota = if pace.catch_up {
                owed
            } else {
                owed.min(((owed as f64 * pace.share).ceil() as u64).max(1))
            };
            (battle, quota)
        })
        .collect();
    gauge!("tianxia_battles_active").set(quota.len() as f64);
    gauge!("tianxia_battle_units").set(
        quota
            .iter()
            .map(|(b, _)| b.sim.units_alive().iter().sum::<u32>())
            .sum::<u32>() as f64,
    );
    quota.retain(|(battle, quota)| *quota > 0 && battle.sim.outcome().is_none());
    if quota.is_empty() {
        return;
    }
    // With a budget, rounds of one step each keep the battles abreast when the pass runs out
    // of time; without one (headless runs), each battle takes its whole quota at once.
    let (per_round, deadline) = match Instant::now().checked_add(pace.budget) {
        Some(deadline) if pace.budget != Duration::MAX => (1, Some(deadline)),
        _ => (u64::MAX, None),
    };
    let mut stepping: Vec<Stepping<'_, BattleSim>> = quota
        .iter_mut()
        .map(|(battle, quota)| Stepping {
            battle: &mut *battle.sim,
            quota: *quota,
        })
        .collect();
    pool.run(&mut stepping, per_round, deadline);
}

/// Ends the battles that have an outcome: the losses come off the generals' troops and the
/// garrison (so soldiers recruited meanwhile are kept), generals go back to what they were
/// doing, `BattleEnded` is told and the battle leaves the World.
#[allow(clippy::too_many_arguments)]
pub fn conclude_battles(
    mut commands: Commands,
    battles: Query<(Entity, &Battle)>,
    mut generals: Query<&mut General>,
    mut cities: Query<&mut City>,
    mut registry: ResMut<Registry>,
    mut outbox: ResMut<Outbox>,
    mut finished: ResMut<FinishedBattles>,
    mut results: ResMut<BattleResults>,
) {
    let mut ended: Vec<(Entity, &Battle)> = battles
        .iter()
        .filter(|(_, b)| b.sim.outcome().is_some())
        .collect();
    ended.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    for (entity, battle) in ended {
        let Some(outcome) = battle.sim.outcome() else {
            continue;
        };
        let mut casualties = BTreeMap::new();
        for group in battle.sim.group_results() {
            *casualties.entry(group.id.clone()).or_insert(0) += group.casualties;
            if group.id == GARRISON {
                if let Some(mut city) = registry
                    .cities
                    .get(&battle.city)
                    .and_then(|e| cities.get_mut(*e).ok())
                {
                    city.garrison = city.garrison.saturating_sub(group.casualties);
                }
            } else if let Some(mut general) = registry
                .generals
                .get(&group.id)
                .and_then(|e| generals.get_mut(*e).ok())
            {
                general.troops = general.troops.saturating_sub(group.casualties);
                if general.status == GeneralStatus::InBattle {
                    // A defender pulled into the battle from a timed order goes back to it.
                    general.status = if general.order.is_some() {
                        GeneralStatus::Busy
                    } else {
                        GeneralStatus::Idle
                    };
                }
            }
        }
        outbox.emit(
            battle.game_time(),
            aggregate("battle", &battle.id),
            EventKind::BattleEnded {
                battle: battle.id.clone(),
                city: battle.city.clone(),
                winner: outcome.winner,
                reason: outcome.reason,
                steps: outcome.steps,
                casualties,
                state_hash: record::hash_hex(battle.sim.state_hash()),
            },
        );
        results.0.push(Concluded {
            battle: battle.id.clone(),
            city: battle.city.clone(),
            winner: outcome.winner,
            attacker_nation: battle.attacker.nation.clone(),
            attackers: battle.attacker.generals.clone(),
            at: battle.game_time(),
        });
        finished.0.push(Finished {
            view: battle.view(),
            last_frame: FrameView {
                battle: battle.id.clone(),
                tick: battle.sim.steps(),
                units: battle.sim.frame_units(),
                groups: battle.sim.frame_groups(),
                last: true,
            },
            recording: battle.recording(),
        });
        registry.battles.remove(&battle.id);
        commands.entity(entity).despawn();
    }
}

/// A battle to start: who attacks whom, where.
#[derive(Clone, Debug, PartialEq)]
pub struct BattleRequest {
    pub city: String,
    /// Generals on the attacking side.
    pub attackers: Vec<String>,
    /// Generals on the defending side.
    pub defenders: Vec<String>,
    /// Whether the city's garrison defends too.
    pub garrison: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BattleError {
    #[error("no city \"{0}\"")]
    UnknownCity(String),
    #[error("no general \"{0}\"")]
    UnknownGeneral(String),
    #[error("general \"{0}\" is already in a battle")]
    InBattle(String),
    #[error("a battle is already under way at \"{0}\"")]
    AlreadyActive(String),
    #[error("no battle \"{0}\"")]
    UnknownBattle(String),
    #[error("the {0:?} side has nobody with troops to fight")]
    NoTroops(Side),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// A general's group in a battle fought under `troops`. A general whose troop type that data
/// does not define (removed from the files while the world was stopped) fights as the
/// `[join] troop_type`, or else as the first type of the data.
fn group_of(general: &General, side: Side, troops: &TroopsFile, fallback: TroopType) -> GroupSetup {
    let troop_type = [general.troop_type, fallback]
        .into_iter()
        .chain(troops.types())
        .find(|t| troops.get(*t).is_some())
        .unwrap_or(general.troop_type);
    if troop_type != general.troop_type {
        tracing::warn!(
            general = %general.id,
            leads = %general.troop_type,
            fights_as = %troop_type,
            "the battle's data does not define the general's troop type: it fights as another"
        );
    }
    GroupSetup {
        id: general.id.clone(),
        side,
        troop_type,
        soldiers: general.troops,
        leadership: general.stats.leadership,
        training: general.training,
        morale: general.morale,
        join_step: 0,
    }
}

/// Looks up generals that may fight: known, not already in a battle.
fn fighters(world: &World, ids: &[String]) -> Result<Vec<General>, BattleError> {
    let registry = world.resource::<Registry>();
    ids.iter()
        .map(|id| {
            let general = registry
                .generals
                .get(id)
                .and_then(|e| world.get::<General>(*e))
                .ok_or_else(|| BattleError::UnknownGeneral(id.clone()))?;
            if general.status == GeneralStatus::InBattle {
                return Err(BattleError::InBattle(id.clone()));
            }
            Ok(general.clone())
        })
        .collect()
}

fn set_in_battle(world: &mut World, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        let entity = world.resource::<Registry>().generals.get(&id).copied();
        if let Some(mut general) = entity.and_then(|e| world.get_mut::<General>(e)) {
            general.status = GeneralStatus::InBattle;
        }
    }
}

/// Starts a battle at `request.city` now. Returns the battle's id, derived from the city and
/// the strategy tick (docs/rules.md#ids).
pub fn spawn_battle(world: &mut World, request: &BattleRequest) -> Result<String, BattleError> {
    let clock = world.resource::<GameClock>().clone();
    let city = world
        .resource::<Registry>()
        .cities
        .get(&request.city)
        .and_then(|e| world.get::<City>(*e))
        .cloned()
        .ok_or_else(|| BattleError::UnknownCity(request.city.clone()))?;
    let id = format!("b-{}-{}", city.id, clock.tick);
    let already = world
        .query::<&Battle>()
        .iter(world)
        .any(|b| b.city == city.id);
    if already || world.resource::<Registry>().battles.contains_key(&id) {
        return Err(BattleError::AlreadyActive(city.id));
    }
    let attackers = fighters(world, &request.attackers)?;
    let defenders = fighters(world, &request.defenders)?;
    let data = world.resource::<Data>().clone();
    let balance = &data.balance.battle;
    let fallback = data.balance.join.troop_type;
    let mut groups: Vec<GroupSetup> = Vec::new();
    groups.extend(
        attackers
            .iter()
            .filter(|g| g.troops > 0)
            .map(|g| group_of(g, Side::Attacker, &data.troops, fallback)),
    );
    groups.extend(
        defenders
            .iter()
            .filter(|g| g.troops > 0)
            .map(|g| group_of(g, Side::Defender, &data.troops, fallback)),
    );
    let garrison = if request.garrison { city.garrison } else { 0 };
    if garrison > 0 {
        groups.push(GroupSetup {
            id: GARRISON.into(),
            side: Side::Defender,
            troop_type: balance.garrison_troop_type,
            soldiers: garrison,
            leadership: balance.garrison_leadership.clamp(1, 100) as u8,
            training: balance.garrison_training.clamp(0, 100) as u8,
            morale: balance.garrison_morale.clamp(0, 100) as u8,
            join_step: 0,
        });
    }
    for side in Side::BOTH {
        if !groups.iter().any(|g| g.side == side) {
            return Err(BattleError::NoTroops(side));
        }
    }
    let world_name = world.resource::<WorldInfo>().name.clone();
    let setup = BattleSetup {
        seed: seed_from(&[&world_name, &id]),
        walls: city.walls,
        params: BattleParams::from_balance(balance),
        troops: data.troops.clone(),
        groups,
    };
    let sim = BattleSim::new(setup)?;
    let side_view = |nation: Option<String>, generals: &[General]| SideView {
        nation,
        generals: generals.iter().map(|g| g.id.clone()).collect(),
    };
    let battle = Battle {
        id: id.clone(),
        city: city.id.clone(),
        attacker: side_view(attackers.first().and_then(|g| g.nation.clone()), &attackers),
        defender: side_view(city.owner.clone(), &defenders),
        garrison,
        started_at: clock.game_seconds,
        data_hash: data.data_hash.clone(),
        sim: Box::new(sim),
    };
    world.resource_mut::<Outbox>().emit(
        clock.game_seconds,
        aggregate("battle", &id),
        EventKind::BattleStarted {
            battle: id.clone(),
            city: city.id.clone(),
            attacker: battle.attacker.clone(),
            defender: battle.defender.clone(),
            garrison,
        },
    );
    let entity = world.spawn(battle).id();
    world
        .resource_mut::<Registry>()
        .battles
        .insert(id.clone(), entity);
    set_in_battle(
        world,
        request.attackers.iter().chain(&request.defenders).cloned(),
    );
    Ok(id)
}

/// A general joins a battle under way on `side`, arriving at game second `at` (its march's
/// arrival time, so the join step does not depend on the speed): it deploys at the step of
/// `at`, or at the battle's next step if that has passed. Returns the step it deploys at.
pub fn join_battle(
    world: &mut World,
    battle_id: &str,
    general_id: &str,
    side: Side,
    at: i64,
) -> Result<u32, BattleError> {
    let general = fighters(world, &[general_id.to_string()])?.remove(0);
    let entity = world
        .resource::<Registry>()
        .battles
        .get(battle_id)
        .copied()
        .ok_or_else(|| BattleError::UnknownBattle(battle_id.into()))?;
    if general.troops == 0 {
        return Err(BattleError::NoTroops(side));
    }
    let fallback = world.resource::<Data>().balance.join.troop_type;
    let Some(mut battle) = world.get_mut::<Battle>(entity) else {
        return Err(BattleError::UnknownBattle(battle_id.into()));
    };
    let due = battle.due_steps(at).min(u64::from(u32::MAX)) as u32;
    let mut group = group_of(&general, side, &battle.sim.setup().troops, fallback);
    group.join_step = due;
    let step = battle.sim.add_group(group)?;
    match side {
        Side::Attacker => battle.attacker.generals.push(general.id.clone()),
        Side::Defender => battle.defender.generals.push(general.id.clone()),
    }
    let started_at = battle.started_at;
    world.resource_mut::<Outbox>().emit(
        at.max(started_at),
        aggregate("battle", battle_id),
        EventKind::BattleReinforced {
            battle: battle_id.to_string(),
            general: general.id.clone(),
            side,
            soldiers: general.troops,
        },
    );
    set_in_battle(world, [general.id]);
    Ok(step)
}

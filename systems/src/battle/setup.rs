//! What a battle is made of (docs/rules.md#units): the groups that fight (a general's troops or
//! a city's garrison), the rules numbers in force, and the walls. A [`BattleSetup`] holds
//! everything a battle depends on besides its steps, so a recorded setup replays anywhere to
//! the same outcome, without the designer files.

use components::{
    battle::Side,
    data::{BattleBalance, TroopsFile},
    world::TroopType,
};
use serde::{Deserialize, Serialize};

/// Battle steps per second of battle time.
pub const STEPS_PER_SECOND: f32 = 60.0;

/// The rules numbers of battles (balance.toml `[battle]`), resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BattleParams {
    pub soldiers_per_unit: u32,
    /// Steps after which the defender holds.
    pub time_limit_steps: u32,
    /// Game milliseconds per step.
    pub game_ms_per_step: u32,
    pub stat_floor: f32,
    pub damage_variation: f32,
    pub morale_loss_per_percent: f32,
    pub rout_morale: f32,
    pub wall_defense_bonus: f32,
    pub search_radius: f32,
    pub retarget_steps: u32,
    pub deploy_gap: f32,
    /// Wall geometry (metres). Recordings made before these were rules have the values that
    /// were built in then.
    #[serde(default = "WallGeometry::built_in")]
    pub walls: WallGeometry,
    /// Physics solver iterations per step. Recordings made before this was a rule ran with
    /// rapier's default of 4.
    #[serde(default = "rapier_default_solver_iterations")]
    pub solver_iterations: u32,
}

/// The shape of city walls on the field.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallGeometry {
    /// Metres of wall per gate; a wall has at least one gate.
    pub per_gate: f32,
    /// Width of a gate, or `None` for three unit spacings (the rule before this was data).
    pub gate_width: Option<f32>,
    /// Thickness at level 0 and per level.
    pub thickness: f32,
    pub thickness_per_level: f32,
}

impl WallGeometry {
    fn built_in() -> WallGeometry {
        WallGeometry {
            per_gate: 150.0,
            gate_width: None,
            thickness: 2.0,
            thickness_per_level: 0.4,
        }
    }
}

fn rapier_default_solver_iterations() -> u32 {
    4
}

impl BattleParams {
    pub fn from_balance(b: &BattleBalance) -> BattleParams {
        let game_ms_per_step = ((b.game_seconds_per_step * 1_000.0).round() as u32).max(1);
        BattleParams {
            soldiers_per_unit: b.soldiers_per_unit.clamp(1, i64::from(u32::MAX)) as u32,
            time_limit_steps: (b.time_limit.max(1) as u64 * 1_000 / u64::from(game_ms_per_step))
                .clamp(1, u64::from(u32::MAX)) as u32,
            game_ms_per_step,
            stat_floor: b.stat_floor as f32,
            damage_variation: b.damage_variation as f32,
            morale_loss_per_percent: b.morale_loss_per_percent as f32,
            rout_morale: b.rout_morale as f32,
            wall_defense_bonus: b.wall_defense_bonus as f32,
            search_radius: b.search_radius as f32,
            retarget_steps: b.retarget_steps.clamp(1, i64::from(u32::MAX)) as u32,
            deploy_gap: b.deploy_gap as f32,
            walls: WallGeometry {
                per_gate: b.wall_per_gate as f32,
                gate_width: Some(b.gate_width as f32),
                thickness: b.wall_thickness as f32,
                thickness_per_level: b.wall_thickness_per_level as f32,
            },
            solver_iterations: b.solver_iterations.clamp(1, 8) as u32,
        }
    }

    /// The factor a stat of 0–100 scales a unit by.
    pub fn stat_factor(&self, stat: u8) -> f32 {
        self.stat_floor + (1.0 - self.stat_floor) * f32::from(stat.min(100)) / 100.0
    }
}

/// One fighting group: a general's troops, or a city's garrison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSetup {
    /// General id, or `garrison`.
    pub id: String,
    pub side: Side,
    pub troop_type: TroopType,
    pub soldiers: u32,
    pub leadership: u8,
    pub training: u8,
    pub morale: u8,
    /// Step at which the group deploys: 0 for those present at the start, later for
    /// reinforcements.
    #[serde(default)]
    pub join_step: u32,
}

/// Everything a battle depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BattleSetup {
    pub seed: u64,
    /// Wall level of the city; 0 for none.
    pub walls: u32,
    pub params: BattleParams,
    pub troops: TroopsFile,
    /// Groups in the order they were added; reinforcements after the initial groups.
    pub groups: Vec<GroupSetup>,
}

/// The largest number of groups a battle takes.
pub const MAX_GROUPS: usize = u16::MAX as usize;

/// Why a setup cannot be simulated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("a battle needs a group on each side")]
    OneSided,
    #[error("group {0}: a group needs at least one soldier")]
    EmptyGroup(String),
    #[error("too many groups: at most {MAX_GROUPS}")]
    TooManyGroups,
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    #[error("troop type {0} is not in the battle's troop data")]
    UnknownTroopType(TroopType),
}

/// Most troop types a battle's data may define (as `check` allows).
pub const TROOP_TYPES_MAX: usize = 32;

impl BattleSetup {
    /// Checks what a hand-edited or damaged record could get wrong.
    pub fn validate(&self) -> Result<(), SetupError> {
        if self.groups.len() > MAX_GROUPS {
            return Err(SetupError::TooManyGroups);
        }
        for group in &self.groups {
            if group.soldiers == 0 {
                return Err(SetupError::EmptyGroup(group.id.clone()));
            }
            if group.leadership > 100 || group.training > 100 || group.morale > 100 {
                return Err(SetupError::OutOfRange(
                    "a group's leadership, training or morale",
                ));
            }
        }
        for side in Side::BOTH {
            if !self
                .groups
                .iter()
                .any(|g| g.side == side && g.join_step == 0)
            {
                return Err(SetupError::OneSided);
            }
        }
        let p = &self.params;
        let finite = |v: f32, lo: f32, hi: f32| v.is_finite() && (lo..=hi).contains(&v);
        let checks = [
            (p.soldiers_per_unit >= 1, "params.soldiers_per_unit"),
            (p.time_limit_steps >= 1, "params.time_limit_steps"),
            (p.game_ms_per_step >= 1, "params.game_ms_per_step"),
            (p.retarget_steps >= 1, "params.retarget_steps"),
            (
                (1..=8).contains(&p.solver_iterations),
                "params.solver_iterations",
            ),
            (finite(p.stat_floor, 0.0, 1.0), "params.stat_floor"),
            (
                finite(p.damage_variation, 0.0, 0.9),
                "params.damage_variation",
            ),
            (
                finite(p.morale_loss_per_percent, 0.0, 100.0),
                "params.morale_loss_per_percent",
            ),
            (finite(p.rout_morale, 0.0, 100.0), "params.rout_morale"),
            (
                finite(p.wall_defense_bonus, 0.0, 10.0),
                "params.wall_defense_bonus",
            ),
            (
                finite(p.walls.per_gate, 10.0, 10_000.0),
                "params.walls.per_gate",
            ),
            (
                p.walls.gate_width.is_none_or(|w| finite(w, 1.0, 1_000.0)),
                "params.walls.gate_width",
            ),
            (
                finite(p.walls.thickness, 0.5, 100.0),
                "params.walls.thickness",
            ),
            (
                finite(p.walls.thickness_per_level, 0.0, 10.0),
                "params.walls.thickness_per_level",
            ),
            (
                finite(p.search_radius, 1.0, 10_000.0),
                "params.search_radius",
            ),
            (finite(p.deploy_gap, 0.0, 10_000.0), "params.deploy_gap"),
            (self.walls <= 1_000, "walls"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(SetupError::OutOfRange(what));
        }
        if let Some(group) = self
            .groups
            .iter()
            .find(|g| self.troops.get(g.troop_type).is_none())
        {
            return Err(SetupError::UnknownTroopType(group.troop_type));
        }
        if self.troops.0.len() > TROOP_TYPES_MAX {
            return Err(SetupError::OutOfRange("the number of troop types"));
        }
        for t in self.troops.0.values() {
            let specs = [
                (t.mass, 0.01, 1e6),
                (t.radius, 0.1, 50.0),
                (t.max_speed, 0.01, 100.0),
                (t.hit_points, 0.01, 1e6),
                (t.attack, 0.01, 1e6),
                (t.defense, 0.0, 1e6),
                (t.range, 0.01, 1_000.0),
                (t.cooldown, 0.01, 600.0),
            ];
            let counters = t.counters.values().map(|v| (*v, 0.0, 100.0));
            if specs
                .into_iter()
                .chain(counters)
                .any(|(v, lo, hi)| !(v.is_finite() && (lo..=hi).contains(&v)))
            {
                return Err(SetupError::OutOfRange("a troop type's characteristics"));
            }
        }
        Ok(())
    }
}

/// How one group's units fight, derived from its troop type and stats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupStats {
    pub side: Side,
    pub troop_type: TroopType,
    /// Damage per soldier per hit, before the target's defense.
    pub attack: f32,
    pub defense: f32,
    pub hit_points: f32,
    /// Reach from body edge to body edge.
    pub range: f32,
    pub cooldown_steps: u16,
    pub max_speed: f32,
    pub radius: f32,
    pub mass: f32,
    pub morale: f32,
    /// The troop type's place among the data's types (alphabetical), for the counters table
    /// ([`counter_table`]).
    pub type_index: u8,
}

/// What soldiers of each type deal to each type (both by their place among `troops`' types),
/// as a multiple of their plain damage: the types' `counters`, 1 where they list none.
pub type CounterTable = [[f32; TROOP_TYPES_MAX]; TROOP_TYPES_MAX];

pub fn counter_table(troops: &TroopsFile) -> Box<CounterTable> {
    let mut table = Box::new([[1.0; TROOP_TYPES_MAX]; TROOP_TYPES_MAX]);
    for (row, attacker) in table.iter_mut().zip(troops.types()) {
        for (cell, target) in row.iter_mut().zip(troops.types()) {
            *cell = troops.counter(attacker, target) as f32;
        }
    }
    table
}

impl GroupStats {
    pub fn new(
        group: &GroupSetup,
        troops: &TroopsFile,
        params: &BattleParams,
    ) -> Result<GroupStats, SetupError> {
        let (type_index, spec) = troops
            .0
            .iter()
            .enumerate()
            .find(|(_, (name, _))| **name == group.troop_type)
            .map(|(i, (_, spec))| (i, spec))
            .filter(|(i, _)| *i < TROOP_TYPES_MAX)
            .ok_or(SetupError::UnknownTroopType(group.troop_type))?;
        let lead = params.stat_factor(group.leadership);
        let train = params.stat_factor(group.training);
        Ok(GroupStats {
            side: group.side,
            troop_type: group.troop_type,
            type_index: type_index as u8,
            attack: spec.attack as f32 * lead * train,
            defense: spec.defense as f32 * lead,
            hit_points: spec.hit_points as f32,
            range: spec.range as f32,
            cooldown_steps: ((spec.cooldown as f32 * STEPS_PER_SECOND).round() as u16).max(1),
            max_speed: spec.max_speed as f32,
            radius: spec.radius as f32,
            mass: spec.mass as f32,
            morale: f32::from(group.morale.min(100)),
        })
    }
}

/// The troop types a benchmark mixes: `shipped` (a fixed pattern of the shipped types, so
/// the benches' figures and hashes compare across runs) when the data defines them all, else
/// each type of the data in turn.
pub fn bench_types(troops: &TroopsFile, shipped: &[TroopType]) -> Vec<TroopType> {
    if shipped.iter().all(|t| troops.get(*t).is_some()) {
        shipped.to_vec()
    } else {
        troops.types().collect()
    }
}

/// A field battle of about `units` unit bodies, half a side, for benchmarks: even armies of
/// infantry, cavalry and archers in groups of 50 units, no walls, so the two sides close and
/// stay in dense contact.
pub fn field_battle(
    units: u32,
    seed: u64,
    params: &BattleParams,
    troops: &TroopsFile,
) -> BattleSetup {
    let types = bench_types(
        troops,
        &[
            TroopType::INFANTRY,
            TroopType::INFANTRY,
            TroopType::CAVALRY,
            TroopType::ARCHER,
        ],
    );
    let per_side = (units / 2).max(1);
    let group_units = 50u32;
    let mut groups = Vec::new();
    for side in Side::BOTH {
        let mut left = per_side;
        let mut n = 0;
        while left > 0 {
            let these = left.min(group_units);
            left -= these;
            groups.push(GroupSetup {
                id: format!("{}-{n}", if side == Side::Attacker { "a" } else { "d" }),
                side,
                troop_type: types[n % types.len()],
                soldiers: these * params.soldiers_per_unit,
                leadership: 70,
                training: 60,
                morale: 80,
                join_step: 0,
            });
            n += 1;
        }
    }
    BattleSetup {
        seed,
        walls: 0,
        params: params.clone(),
        troops: troops.clone(),
        groups,
    }
}

/// Soldiers of each unit a group of `soldiers` splits into: full units, then the rest.
pub fn unit_sizes(soldiers: u32, per_unit: u32) -> impl Iterator<Item = u32> {
    let per_unit = per_unit.max(1);
    let full = soldiers / per_unit;
    let rest = soldiers % per_unit;
    std::iter::repeat_n(per_unit, full as usize).chain((rest > 0).then_some(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_into_full_units_and_a_rest() {
        assert_eq!(unit_sizes(250, 100).collect::<Vec<_>>(), vec![100, 100, 50]);
        assert_eq!(
            unit_sizes(300, 100).collect::<Vec<_>>(),
            vec![100, 100, 100]
        );
        assert_eq!(unit_sizes(7, 100).collect::<Vec<_>>(), vec![7]);
        assert_eq!(unit_sizes(0, 100).count(), 0);
    }
}

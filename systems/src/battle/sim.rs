//! The battle simulation (SPEC 3): units as dynamic circle bodies in a rapier2d world of the
//! battle's own, stepped at a fixed 1/60 s of battle time. Each step every unit that fights
//! keeps or finds its nearest enemy through a grid, steers towards it, and strikes when in
//! range and off cooldown; damage lands after all have struck, costs soldiers and morale, and
//! a unit whose morale breaks flees to its own side's edge of the field.
//!
//! Determinism: the same [`BattleSetup`] gives the same steps everywhere. Units are visited in
//! index order, randomness comes from a seeded ChaCha8 stream, the physics runs with rapier's
//! enhanced determinism, and nothing depends on wall-clock time or on how many steps are run
//! at once. [`BattleSim::state_hash`] condenses the whole state to check this.
//!
//! Layout: unit state is kept in parallel arrays (one entry per unit), so the per-step loops
//! stream through memory; the physics world is only touched to read positions and set
//! velocities.

use components::{
    battle::{EndReason, Side, UnitFrame},
    world::TroopType,
};
use rand_chacha::{
    ChaCha8Rng,
    rand_core::{RngCore, SeedableRng},
};
use rapier2d::{
    math::Vector,
    prelude::{ColliderBuilder, PhysicsWorld, RigidBodyBuilder, RigidBodyHandle},
};
use serde::{Deserialize, Serialize};

use super::{
    grid::Grid,
    setup::{BattleSetup, GroupSetup, GroupStats, STEPS_PER_SECOND, SetupError, unit_sizes},
};

/// No target.
const NONE: u32 = u32::MAX;
/// Metres of open ground around the deployed armies.
const MARGIN: f32 = 30.0;
/// Side of a grid cell, metres.
const CELL: f32 = 12.0;
/// Routed units run this much faster than they march.
const FLIGHT_SPEED: f32 = 1.2;
/// A unit that covers less than this share of the distance it was sent is blocked.
const BLOCKED: f32 = 0.4;
/// Steps a blocked unit stands before it presses on again (half a second of battle time).
const HOLD_STEPS: u32 = 30;
/// A unit does not walk into a friend that is not advancing within this gap (metres) ahead
/// of it ...
const QUEUE_GAP: f32 = 0.6;
/// ... in the cone whose half-angle has this cosine (about 45 degrees) ...
const QUEUE_CONE: f32 = 0.7;
/// ... unless it can step round it, heading this way (forward and sideways shares of its
/// speed: 60 degrees off its course) ...
const SIDESTEP: (f32, f32) = (0.5, 0.866);
/// ... otherwise it looks again after this many steps.
const QUEUE_STEPS: u32 = 12;
/// A unit far from any enemy searches again after at most this many times `retarget_steps`.
const SEARCH_WAIT_MAX: u32 = 4;
/// Steps between two headings of a moving unit.
const STEER_EVERY: usize = 4;
/// Squared difference (m²/s²) below which a body's velocity counts as the one wanted.
const CLOSE_ENOUGH: f32 = 0.01;

/// What a unit is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum UnitState {
    Fighting = 0,
    /// Broken: running for its own edge of the field; can still be struck.
    Routed = 1,
    /// Every soldier fell.
    Dead = 2,
    /// Left the field; its soldiers survive.
    Fled = 3,
}

impl UnitState {
    fn on_field(self) -> bool {
        matches!(self, UnitState::Fighting | UnitState::Routed)
    }
}

/// How a battle ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub winner: Side,
    pub reason: EndReason,
    /// Steps simulated.
    pub steps: u32,
}

/// What became of one group's soldiers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResult {
    pub id: String,
    pub side: Side,
    /// Soldiers it brought.
    pub initial: u32,
    /// Soldiers still alive, fled ones included; `initial = survivors + casualties`.
    pub survivors: u32,
    pub casualties: u32,
}

/// City walls across the field, between the defenders and the attackers, with gates.
#[derive(Clone, Debug, PartialEq)]
struct Walls {
    x: f32,
    /// Gate centres (y) and half width.
    gates: Vec<f32>,
    gate_half_width: f32,
    defense_factor: f32,
}

/// See [`BattleSim::last_inputs`].
pub struct LastInputs<'a> {
    sim: &'a BattleSim,
}

impl LastInputs<'_> {
    /// Bodies removed, in order.
    pub fn removed(&self) -> impl Iterator<Item = RigidBodyHandle> + '_ {
        self.sim.removed.iter().map(|&i| self.sim.body[i as usize])
    }

    /// Bodies given a velocity before the physics step, with it, in order.
    pub fn velocities(&self) -> impl Iterator<Item = (RigidBodyHandle, Vector)> + '_ {
        let sim = self.sim;
        sim.steered
            .iter()
            .map(|&i| (sim.body[i as usize], sim.vel[i as usize]))
    }
}

pub struct BattleSim {
    setup: BattleSetup,
    stats: Vec<GroupStats>,
    /// Groups not yet deployed, by (join step, index).
    pending: Vec<u16>,
    physics: PhysicsWorld,
    rng: ChaCha8Rng,
    step: u32,
    outcome: Option<Outcome>,

    // Per unit, parallel.
    body: Vec<RigidBodyHandle>,
    pos: Vec<Vector>,
    /// Velocity the unit wants this step.
    vel: Vec<Vector>,
    /// Velocity the body came out of the last physics step with.
    body_vel: Vec<Vector>,
    group: Vec<u16>,
    state: Vec<UnitState>,
    /// Soldiers when deployed, for morale.
    deployed_soldiers: Vec<u32>,
    soldiers: Vec<u32>,
    /// Damage taken below one soldier's hit points.
    wounds: Vec<f32>,
    morale: Vec<f32>,
    cooldown: Vec<u16>,
    target: Vec<u32>,
    /// Until this step the unit stands instead of pressing forward: its last advance was
    /// blocked (by friends ahead, usually), and pushing on would only crush the crowd.
    hold_until: Vec<u32>,
    /// The step at which the unit next looks for the nearest enemy (sooner if its target
    /// falls): the farther the enemy, the longer it can wait.
    next_search: Vec<u32>,
    /// Damage struck at the unit this step, applied after every unit has acted.
    incoming: Vec<f32>,

    grids: [Grid; 2],
    /// (cell, unit) of each side's units on the field, filled each step for the grids.
    entries: [Vec<(u32, u32)>; 2],
    /// Field bounds; a routed unit that crosses its side's edge has fled.
    min: Vector,
    max: Vector,
    /// Rearmost line of each side, where reinforcements form up behind.
    rear: [f32; 2],
    spacing: f32,
    rows: usize,
    walls: Option<Walls>,
    /// Units taken out of the physics world during the last step.
    removed: Vec<u32>,
    /// Units whose body was given a new velocity during the last step.
    steered: Vec<u32>,
}

/// FNV-1a, 64 bits: a small, stable hash for state comparison.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }
}

/// A seed derived from a name, for battles created in play.
pub fn seed_from(parts: &[&str]) -> u64 {
    let mut h = Fnv::new();
    for part in parts {
        h.bytes(part.as_bytes());
        h.bytes(&[0xff]);
    }
    h.0
}

impl BattleSim {
    /// Deploys the groups present at the start. Reinforcements of the setup deploy at their
    /// join steps.
    pub fn new(setup: BattleSetup) -> Result<BattleSim, SetupError> {
        setup.validate()?;
        let stats: Vec<GroupStats> = setup
            .groups
            .iter()
            .map(|g| GroupStats::new(g, setup.troops.get(g.troop_type), &setup.params))
            .collect();
        let max_radius = [TroopType::Infantry, TroopType::Cavalry, TroopType::Archer]
            .iter()
            .map(|t| setup.troops.get(*t).radius as f32)
            .fold(0.0, f32::max);
        let spacing = 2.0 * max_radius + 1.0;
        let units_of = |side: Side| -> usize {
            setup
                .groups
                .iter()
                .filter(|g| g.side == side && g.join_step == 0)
                .map(|g| unit_sizes(g.soldiers, setup.params.soldiers_per_unit).count())
                .sum()
        };
        let widest = units_of(Side::Attacker)
            .max(units_of(Side::Defender))
            .max(1);
        let rows = ((widest as f32 * 3.0).sqrt().ceil() as usize).max(1);
        let depth = |n: usize| (n.div_ceil(rows).max(1) - 1) as f32 * spacing;
        let half_gap = setup.params.deploy_gap / 2.0;
        let half_height = rows as f32 * spacing / 2.0 + MARGIN;
        let min = Vector::new(
            -half_gap - depth(units_of(Side::Attacker)) - MARGIN,
            -half_height,
        );
        let max = Vector::new(
            half_gap + depth(units_of(Side::Defender)) + MARGIN,
            half_height,
        );

        let mut physics = PhysicsWorld::new();
        physics.gravity = Vector::ZERO;
        physics.integration_parameters.num_solver_iterations =
            setup.params.solver_iterations as usize;
        let walls = (setup.walls > 0)
            .then(|| Self::build_walls(&mut physics, &setup, half_gap, half_height, spacing));
        let grid = || {
            Grid::new(
                min - Vector::splat(MARGIN),
                max + Vector::splat(MARGIN),
                CELL,
            )
        };

        let mut pending: Vec<u16> = (0..setup.groups.len() as u16).collect();
        pending.sort_by_key(|&g| (setup.groups[g as usize].join_step, g));
        let mut sim = BattleSim {
            rng: ChaCha8Rng::seed_from_u64(setup.seed),
            setup,
            stats,
            pending,
            physics,
            step: 0,
            outcome: None,
            body: Vec::new(),
            pos: Vec::new(),
            vel: Vec::new(),
            body_vel: Vec::new(),
            group: Vec::new(),
            state: Vec::new(),
            deployed_soldiers: Vec::new(),
            soldiers: Vec::new(),
            wounds: Vec::new(),
            morale: Vec::new(),
            cooldown: Vec::new(),
            target: Vec::new(),
            hold_until: Vec::new(),
            next_search: Vec::new(),
            incoming: Vec::new(),
            grids: [grid(), grid()],
            entries: [Vec::new(), Vec::new()],
            min,
            max,
            rear: [-half_gap, half_gap],
            spacing,
            rows,
            walls,
            removed: Vec::new(),
            steered: Vec::new(),
        };
        sim.deploy_due();
        Ok(sim)
    }

    fn build_walls(
        physics: &mut PhysicsWorld,
        setup: &BattleSetup,
        half_gap: f32,
        half_height: f32,
        spacing: f32,
    ) -> Walls {
        let level = setup.walls.min(10) as f32;
        let half_thickness = 1.0 + 0.2 * level;
        let x = half_gap - half_thickness - 2.0;
        let gate_count = ((2.0 * half_height / 150.0).ceil() as usize).max(1);
        let gate_half_width = 1.5 * spacing;
        let gates: Vec<f32> = (0..gate_count)
            .map(|i| -half_height + 2.0 * half_height * (i as f32 + 0.5) / gate_count as f32)
            .collect();
        // Wall segments between the gates, reaching far beyond the field at both ends.
        let far = half_height + 10_000.0;
        let mut edges = vec![-far];
        for gate in &gates {
            edges.push(gate - gate_half_width);
            edges.push(gate + gate_half_width);
        }
        edges.push(far);
        for pair in edges.chunks(2) {
            let (from, to) = (pair[0], pair[1]);
            let body = RigidBodyBuilder::fixed().translation(Vector::new(x, (from + to) / 2.0));
            let collider = ColliderBuilder::cuboid(half_thickness, (to - from) / 2.0).friction(0.0);
            physics.insert(body, collider);
        }
        Walls {
            x,
            gates,
            gate_half_width,
            defense_factor: 1.0 + setup.params.wall_defense_bonus * level,
        }
    }

    /// Adds a group during the battle: it deploys at `group.join_step`, or at the next step if
    /// that has passed. Returns the join step used.
    pub fn add_group(&mut self, mut group: GroupSetup) -> Result<u32, SetupError> {
        if group.soldiers == 0 {
            return Err(SetupError::EmptyGroup(group.id));
        }
        if self.setup.groups.len() >= super::setup::MAX_GROUPS {
            return Err(SetupError::TooManyGroups);
        }
        group.join_step = group.join_step.max(self.step);
        let index = self.setup.groups.len() as u16;
        let key = (group.join_step, index);
        self.stats.push(GroupStats::new(
            &group,
            self.setup.troops.get(group.troop_type),
            &self.setup.params,
        ));
        self.setup.groups.push(group);
        let at = self
            .pending
            .partition_point(|&g| (self.setup.groups[g as usize].join_step, g) < key);
        self.pending.insert(at, index);
        Ok(key.0)
    }

    /// Deploys the pending groups whose join step has come, in (join step, index) order.
    fn deploy_due(&mut self) {
        let due = self
            .pending
            .partition_point(|&g| self.setup.groups[g as usize].join_step <= self.step);
        if due == 0 {
            return;
        }
        let groups: Vec<u16> = self.pending.drain(..due).collect();
        for side in Side::BOTH {
            // The fastest form up in front, so an advancing army does not run into itself;
            // archers end up behind, in range over their friends.
            let mut members: Vec<u16> = groups
                .iter()
                .copied()
                .filter(|&g| self.stats[g as usize].side == side)
                .collect();
            members.sort_by(|a, b| {
                let speed = |g: &u16| self.stats[*g as usize].max_speed;
                speed(b).total_cmp(&speed(a)).then(a.cmp(b))
            });
            if !members.is_empty() {
                self.deploy_block(side, &members);
            }
        }
    }

    /// Forms `groups` up in a block behind the side's rearmost line (the front line at first).
    fn deploy_block(&mut self, side: Side, groups: &[u16]) {
        let s = side.index();
        let dir = if side == Side::Attacker { -1.0 } else { 1.0 };
        let first = self.step == 0;
        let front = if first {
            self.rear[s]
        } else {
            self.rear[s] + dir * 2.0 * self.spacing
        };
        let mut slot = 0usize;
        for &g in groups {
            let stats = self.stats[g as usize];
            let soldiers = self.setup.groups[g as usize].soldiers;
            for size in unit_sizes(soldiers, self.setup.params.soldiers_per_unit) {
                let column = slot / self.rows;
                let row = slot % self.rows;
                slot += 1;
                let jitter = Vector::new(self.unit_random() - 0.5, self.unit_random() - 0.5)
                    * (0.1 * self.spacing);
                let p = Vector::new(
                    front + dir * column as f32 * self.spacing,
                    (row as f32 - (self.rows as f32 - 1.0) / 2.0) * self.spacing,
                ) + jitter;
                let body = RigidBodyBuilder::dynamic().translation(p).lock_rotations();
                let collider = ColliderBuilder::ball(stats.radius)
                    .mass(stats.mass)
                    .friction(0.0)
                    .restitution(0.0);
                let (handle, _) = self.physics.insert(body, collider);
                self.body.push(handle);
                self.pos.push(p);
                self.vel.push(Vector::ZERO);
                self.body_vel.push(Vector::ZERO);
                self.group.push(g);
                self.state.push(UnitState::Fighting);
                self.deployed_soldiers.push(size);
                self.soldiers.push(size);
                self.wounds.push(0.0);
                self.morale.push(stats.morale);
                self.cooldown.push(0);
                self.target.push(NONE);
                self.hold_until.push(0);
                let slot = self.next_search.len() as u32 % self.setup.params.retarget_steps;
                self.next_search.push(self.step + slot);
                self.incoming.push(0.0);
            }
        }
        let columns = slot.div_ceil(self.rows).max(1);
        self.rear[s] = front + dir * (columns - 1) as f32 * self.spacing;
        if side == Side::Attacker {
            self.min.x = self.min.x.min(self.rear[s] - MARGIN);
        } else {
            self.max.x = self.max.x.max(self.rear[s] + MARGIN);
        }
    }

    /// A uniform number in [0, 1) from the battle's random stream.
    fn unit_random(&mut self) -> f32 {
        (self.rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }

    pub fn setup(&self) -> &BattleSetup {
        &self.setup
    }

    /// Steps simulated so far.
    pub fn steps(&self) -> u32 {
        self.step
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    pub fn unit_count(&self) -> usize {
        self.body.len()
    }

    /// Units on the field (fighting or fleeing) of each side.
    pub fn units_alive(&self) -> [u32; 2] {
        let mut alive = [0; 2];
        for (i, state) in self.state.iter().enumerate() {
            if state.on_field() {
                alive[self.stats[self.group[i] as usize].side.index()] += 1;
            }
        }
        alive
    }

    /// Soldiers of every group: brought, alive (fled ones included), lost.
    pub fn group_results(&self) -> Vec<GroupResult> {
        let mut survivors = vec![0u32; self.setup.groups.len()];
        for (i, &soldiers) in self.soldiers.iter().enumerate() {
            survivors[self.group[i] as usize] += soldiers;
        }
        self.setup
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                // A reinforcement that has not deployed yet has lost nothing.
                let deployed = !self.pending.contains(&(g as u16));
                let alive = if deployed {
                    survivors[g]
                } else {
                    group.soldiers
                };
                GroupResult {
                    id: group.id.clone(),
                    side: group.side,
                    initial: group.soldiers,
                    survivors: alive,
                    casualties: group.soldiers - alive,
                }
            })
            .collect()
    }

    /// Runs one step of 1/60 s of battle time; does nothing once the battle has ended.
    pub fn step(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        self.removed.clear();
        self.steered.clear();
        self.deploy_due();
        let sides = self.survey();
        self.act(sides);
        let fighting = self.apply_damage();
        // Bodies whose velocity is already about right are left alone: a mutable access makes
        // rapier re-examine the body at the next step, which costs more than this check.
        for (i, state) in self.state.iter().enumerate() {
            if state.on_field() && (self.vel[i] - self.body_vel[i]).length_squared() > CLOSE_ENOUGH
            {
                let velocity = self.vel[i];
                self.physics.bodies[self.body[i]].set_linvel(velocity, velocity != Vector::ZERO);
                self.steered.push(i as u32);
            }
        }
        self.physics.step();
        let hold = self.step + HOLD_STEPS;
        for (i, state) in self.state.iter().enumerate() {
            if !state.on_field() {
                continue;
            }
            let body = &self.physics.bodies[self.body[i]];
            let now = body.translation();
            self.body_vel[i] = body.linvel();
            let wanted = self.vel[i];
            // Blocked: the advance along the wanted direction fell short of BLOCKED of a
            // step's travel (both sides of the comparison multiplied by the speed).
            if *state == UnitState::Fighting
                && wanted != Vector::ZERO
                && (now - self.pos[i]).dot(wanted)
                    < BLOCKED * wanted.length_squared() / STEPS_PER_SECOND
            {
                self.hold_until[i] = hold;
            }
            self.pos[i] = now;
        }
        self.step += 1;
        self.outcome = self.judge(fighting);
    }

    /// One pass over the units on the field: the grids of each side, and where each side
    /// stands (its centre and the box around it).
    fn survey(&mut self) -> [Option<(Vector, Vector, Vector)>; 2] {
        let mut sum = [Vector::ZERO; 2];
        let mut low = [Vector::splat(f32::MAX); 2];
        let mut high = [Vector::splat(f32::MIN); 2];
        let [attackers, defenders] = &mut self.entries;
        attackers.clear();
        defenders.clear();
        for (i, state) in self.state.iter().enumerate() {
            if !state.on_field() {
                continue;
            }
            let s = self.stats[self.group[i] as usize].side.index();
            let p = self.pos[i];
            sum[s] += p;
            low[s] = low[s].min(p);
            high[s] = high[s].max(p);
            let entry = (self.grids[s].cell_of(p), i as u32);
            if s == 0 {
                attackers.push(entry)
            } else {
                defenders.push(entry)
            }
        }
        self.grids[0].fill(&self.entries[0]);
        self.grids[1].fill(&self.entries[1]);
        [0, 1].map(|s| {
            let count = self.entries[s].len();
            (count > 0).then(|| (sum[s] / count as f32, low[s], high[s]))
        })
    }

    /// Every unit on the field picks what to do: target, strike, move or flee.
    fn act(&mut self, sides: [Option<(Vector, Vector, Vector)>; 2]) {
        let mut march = [f32::MAX; 2];
        let mut fastest = 0.1f32;
        for (g, stats) in self.stats.iter().enumerate() {
            if !self.pending.contains(&(g as u16)) {
                let s = stats.side.index();
                march[s] = march[s].min(stats.max_speed);
                fastest = fastest.max(stats.max_speed * FLIGHT_SPEED);
            }
        }
        let params = &self.setup.params;
        let (radius, retarget) = (params.search_radius, params.retarget_steps);
        for i in 0..self.state.len() {
            self.cooldown[i] = self.cooldown[i].saturating_sub(1);
            let stats = self.stats[self.group[i] as usize];
            match self.state[i] {
                UnitState::Fighting => {}
                UnitState::Routed => {
                    let away = if stats.side == Side::Attacker {
                        -1.0
                    } else {
                        1.0
                    };
                    self.vel[i] = Vector::new(away * stats.max_speed * FLIGHT_SPEED, 0.0);
                    continue;
                }
                UnitState::Dead | UnitState::Fled => continue,
            }
            let enemy = stats.side.other().index();
            let me = self.pos[i];
            let in_reach = |sim: &Self, t: u32| {
                let their = &sim.stats[sim.group[t as usize] as usize];
                let reach = stats.range + stats.radius + their.radius;
                (sim.pos[t as usize] - me).length_squared() <= reach * reach
            };
            let mut target = self.target[i];
            let lost = target != NONE && !self.state[target as usize].on_field();
            let mut striking = !lost && target != NONE && in_reach(self, target);
            // A unit looks again when its target falls or flees, and when its search is due
            // unless it is striking; never when no enemy can be within reach.
            if lost || (!striking && self.step >= self.next_search[i]) {
                let reachable = sides[enemy].is_some_and(|(_, low, high)| {
                    let gap = (low - me).max(me - high).max(Vector::ZERO);
                    gap.length_squared() <= radius * radius
                });
                target = if reachable {
                    self.grids[enemy]
                        .nearest(me, radius, &self.pos)
                        .unwrap_or(NONE)
                } else {
                    NONE
                };
                striking = target != NONE && in_reach(self, target);
                // The next search waits `retarget` steps, or longer while the enemy is far:
                // up to half the time the gap takes to close at twice the fastest pace.
                let far = if target == NONE {
                    f32::MAX
                } else {
                    let their = &self.stats[self.group[target as usize] as usize];
                    let gap = (self.pos[target as usize] - me).length()
                        - (stats.range + stats.radius + their.radius);
                    gap / (4.0 * fastest) * STEPS_PER_SECOND
                };
                let wait = (far.max(0.0) as u32).clamp(retarget, SEARCH_WAIT_MAX * retarget);
                self.next_search[i] = self.step + wait;
            }
            let retargeted = target != self.target[i];
            self.target[i] = target;
            let goal = if striking {
                let t = target as usize;
                if self.cooldown[i] == 0 {
                    let their = self.stats[self.group[t] as usize];
                    self.strike(i, t, &stats, &their);
                    self.cooldown[i] = stats.cooldown_steps;
                }
                None
            } else if target != NONE {
                Some(self.pos[target as usize])
            } else {
                // Out of reach of any enemy, a unit keeps its place in the line and advances
                // the way its army faces the other: heading for the enemy's centre instead
                // would funnel the whole army into one crushed crowd.
                match (sides[stats.side.index()], sides[enemy]) {
                    (Some((ours, _, _)), Some((theirs, _, _))) => Some(me + (theirs - ours)),
                    _ => None,
                }
            };
            // Without an enemy in reach, an army advances together at its slowest pace.
            let speed = if target == NONE {
                march[stats.side.index()]
            } else {
                stats.max_speed
            };
            self.vel[i] = match goal {
                Some(goal) if self.step >= self.hold_until[i] => {
                    // A moving unit keeps its heading between its steering slots: its body's
                    // velocity then need not be touched while nothing pushes it.
                    let slot = (self.step as usize + i).is_multiple_of(STEER_EVERY);
                    if slot || retargeted || self.vel[i] == Vector::ZERO {
                        let wanted = self.steer(me, goal, stats.side, speed);
                        match self.blocker(i, wanted, &stats, QUEUE_GAP) {
                            None => wanted,
                            // Blocked by a friend: step round it, away from its side, if
                            // that way is open ground (no friend within a rank's spacing,
                            // so units do not squeeze into the gaps of their own ranks);
                            // otherwise stand for a while.
                            Some(offset) => {
                                let left = Vector::new(-wanted.y, wanted.x);
                                let away = if offset.dot(left) > 0.0 { -1.0 } else { 1.0 };
                                let aside = wanted * SIDESTEP.0 + left * (away * SIDESTEP.1);
                                if self.blocker(i, aside, &stats, self.spacing).is_none() {
                                    aside
                                } else {
                                    self.hold_until[i] = self.step + QUEUE_STEPS;
                                    Vector::ZERO
                                }
                            }
                        }
                    } else {
                        self.vel[i]
                    }
                }
                _ => Vector::ZERO,
            };
        }
    }

    /// The offset of a fighting friend within `gap` ahead of unit `i` (wanting to move at
    /// `wanted`) that is not advancing that way, if there is one. A unit does not push into such a
    /// friend: pushing crowds only crush together and multiply the contacts the physics must
    /// solve.
    fn blocker(&self, i: usize, wanted: Vector, stats: &GroupStats, gap: f32) -> Option<Vector> {
        if wanted == Vector::ZERO {
            return None;
        }
        let me = self.pos[i];
        let speed = wanted.length();
        let dir = wanted / speed;
        // Every friend that can block stands within `reach` in the cone ahead, which lies in
        // the rectangle from `me` `reach` forward and `reach × sin 45°` to either side.
        let reach = stats.radius + (self.spacing - 1.0) / 2.0 + gap;
        let side = Vector::new(-dir.y, dir.x) * (reach * 0.71);
        let ahead = dir * reach;
        let corners = [me + side, me - side, me + ahead + side, me + ahead - side];
        let low = corners
            .iter()
            .fold(Vector::splat(f32::MAX), |a, &c| a.min(c));
        let high = corners
            .iter()
            .fold(Vector::splat(f32::MIN), |a, &c| a.max(c));
        let mut found = None;
        self.grids[stats.side.index()].any_in(low, high, |u| {
            let u = u as usize;
            if u == i || self.state[u] != UnitState::Fighting {
                return false;
            }
            let d = self.pos[u] - me;
            let touch = stats.radius + self.stats[self.group[u] as usize].radius + gap;
            let forward = d.dot(dir);
            let distance_sq = d.length_squared();
            let blocks = distance_sq <= touch * touch
                && forward > 0.0
                && forward * forward >= QUEUE_CONE * QUEUE_CONE * distance_sq
                && self.body_vel[u].dot(dir) < 0.5 * speed;
            if blocks {
                found = Some(d);
            }
            blocks
        });
        found
    }

    /// Velocity from `me` towards `goal`, around walls: defenders hold behind them, attackers
    /// head for the nearest gate before crossing.
    fn steer(&self, me: Vector, goal: Vector, side: Side, speed: f32) -> Vector {
        let mut goal = goal;
        if let Some(walls) = &self.walls {
            let inside = |p: Vector| p.x > walls.x;
            match side {
                Side::Defender if inside(me) && !inside(goal) => return Vector::ZERO,
                Side::Attacker if !inside(me) && inside(goal) => {
                    let gate = walls
                        .gates
                        .iter()
                        .copied()
                        .min_by(|a, b| (a - me.y).abs().total_cmp(&(b - me.y).abs()))
                        .unwrap_or(0.0);
                    if (me.y - gate).abs() > 0.6 * walls.gate_half_width {
                        goal = Vector::new(walls.x - 2.0 * self.spacing, gate);
                    } else {
                        goal = Vector::new(goal.x.max(walls.x + self.spacing), gate);
                    }
                }
                _ => {}
            }
        }
        let d = goal - me;
        let len = d.length();
        if len < 1e-3 {
            Vector::ZERO
        } else {
            d * (speed / len)
        }
    }

    /// Unit `i` strikes unit `t`.
    fn strike(&mut self, i: usize, t: usize, stats: &GroupStats, their: &GroupStats) {
        let mut defense = their.defense;
        if let Some(walls) = &self.walls
            && their.side == Side::Defender
            && self.pos[t].x > walls.x
        {
            defense *= walls.defense_factor;
        }
        let per_soldier = stats.attack * stats.attack / (stats.attack + defense);
        let variation = self.setup.params.damage_variation * (2.0 * self.unit_random() - 1.0);
        self.incoming[t] += self.soldiers[i] as f32 * per_soldier * (1.0 + variation);
    }

    /// Lands the damage of this step, breaks morale, removes the fallen and the fled. Returns
    /// the units still fighting on each side.
    fn apply_damage(&mut self) -> [u32; 2] {
        let params = &self.setup.params;
        let mut fighting = [0u32; 2];
        for i in 0..self.state.len() {
            if !self.state[i].on_field() {
                continue;
            }
            let stats = &self.stats[self.group[i] as usize];
            let incoming = std::mem::take(&mut self.incoming[i]);
            if incoming > 0.0 {
                let total = self.wounds[i] + incoming;
                let lost = ((total / stats.hit_points) as u32).min(self.soldiers[i]);
                self.soldiers[i] -= lost;
                self.wounds[i] = if self.soldiers[i] == 0 {
                    0.0
                } else {
                    total - lost as f32 * stats.hit_points
                };
                self.morale[i] -= lost as f32 * 100.0 / self.deployed_soldiers[i] as f32
                    * params.morale_loss_per_percent;
            }
            let fled = self.state[i] == UnitState::Routed
                && match stats.side {
                    Side::Attacker => self.pos[i].x < self.min.x,
                    Side::Defender => self.pos[i].x > self.max.x,
                };
            if self.soldiers[i] == 0 || fled {
                self.state[i] = if fled {
                    UnitState::Fled
                } else {
                    UnitState::Dead
                };
                self.target[i] = NONE;
                self.physics.remove_body(self.body[i]);
                self.removed.push(i as u32);
                continue;
            }
            if self.state[i] == UnitState::Fighting && self.morale[i] <= params.rout_morale {
                self.state[i] = UnitState::Routed;
                self.target[i] = NONE;
            }
            if self.state[i] == UnitState::Fighting {
                fighting[stats.side.index()] += 1;
            }
        }
        fighting
    }

    fn judge(&self, fighting: [u32; 2]) -> Option<Outcome> {
        let reason_for = |loser: Side| {
            let any_left = self.state.iter().enumerate().any(|(i, s)| {
                self.stats[self.group[i] as usize].side == loser
                    && matches!(s, UnitState::Routed | UnitState::Fled)
            });
            if any_left {
                EndReason::Routed
            } else {
                EndReason::Eliminated
            }
        };
        let steps = self.step;
        match fighting {
            [0, _] => Some(Outcome {
                winner: Side::Defender,
                reason: reason_for(Side::Attacker),
                steps,
            }),
            [_, 0] => Some(Outcome {
                winner: Side::Attacker,
                reason: reason_for(Side::Defender),
                steps,
            }),
            _ if steps >= self.setup.params.time_limit_steps => Some(Outcome {
                winner: Side::Defender,
                reason: EndReason::TimeLimit,
                steps,
            }),
            _ => None,
        }
    }

    /// A hash of the whole state: the same setup and steps give the same hash.
    pub fn state_hash(&self) -> u64 {
        let mut h = Fnv::new();
        h.u32(self.step);
        h.u32(self.body.len() as u32);
        for i in 0..self.body.len() {
            h.bytes(&[self.state[i] as u8]);
            h.u32(self.soldiers[i]);
            h.f32(self.wounds[i]);
            h.f32(self.morale[i]);
            h.f32(self.pos[i].x);
            h.f32(self.pos[i].y);
            h.u32(self.target[i]);
            h.u32(u32::from(self.cooldown[i]));
            h.u32(self.hold_until[i]);
            h.u32(self.next_search[i]);
        }
        if let Some(outcome) = self.outcome {
            h.bytes(&[outcome.winner.index() as u8, outcome.reason as u8]);
        }
        h.0
    }

    /// Units on the field as a frame: `[id, side, kind, x, y, hp]`.
    pub fn frame_units(&self) -> Vec<UnitFrame> {
        (0..self.body.len())
            .filter(|&i| self.state[i].on_field())
            .map(|i| {
                let stats = &self.stats[self.group[i] as usize];
                let hp = self.soldiers[i] as f32 * stats.hit_points - self.wounds[i];
                UnitFrame(
                    i as u32,
                    stats.side.index() as u8,
                    stats.troop_type,
                    self.pos[i].x,
                    self.pos[i].y,
                    hp.max(0.0).round() as u32,
                )
            })
            .collect()
    }

    /// State of one unit, for tests and tools: (group, state, soldiers, position).
    pub fn unit(&self, i: usize) -> (usize, UnitState, u32, Vector) {
        (
            self.group[i] as usize,
            self.state[i],
            self.soldiers[i],
            self.pos[i],
        )
    }

    /// Bytes of unit state held outside the physics world.
    pub fn bytes_outside_physics(&self) -> usize {
        use std::mem::size_of;
        self.body.capacity() * size_of::<RigidBodyHandle>()
            + (self.pos.capacity() + self.vel.capacity() + self.body_vel.capacity())
                * size_of::<Vector>()
            + self.group.capacity() * 2
            + self.state.capacity()
            + (self.deployed_soldiers.capacity() + self.soldiers.capacity()) * 4
            + (self.wounds.capacity() + self.morale.capacity() + self.incoming.capacity()) * 4
            + self.cooldown.capacity() * 2
            + (self.target.capacity() + self.hold_until.capacity() + self.next_search.capacity())
                * 4
            + (self.removed.capacity() + self.steered.capacity()) * 4
            + self.grids.iter().map(Grid::bytes).sum::<usize>()
            + self.entries.iter().map(|e| e.capacity() * 8).sum::<usize>()
    }

    /// What the last step did to the physics world, for a bare world kept in step with this
    /// one: the units removed, then the velocity set on each body that needed one.
    pub fn last_inputs(&self) -> LastInputs<'_> {
        LastInputs { sim: self }
    }

    /// Gives up the simulation for its physics world (for a bare baseline).
    pub fn into_physics(self) -> PhysicsWorld {
        self.physics
    }
}

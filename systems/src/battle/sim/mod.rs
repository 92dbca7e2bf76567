//! The battle simulation (docs/rules.md#battles): units as dynamic circle bodies in a rapier2d
//! world of the battle's own, stepped at a fixed 1/60 s of battle time. Each step every unit
//! that fights keeps or finds its nearest enemy through a grid, steers towards it, and strikes
//! when in range and off cooldown; damage lands after all have struck, costs soldiers and
//! morale, and a unit whose morale breaks flees to its own side's edge of the field.
//!
//! Determinism: the same [`BattleSetup`] gives the same steps everywhere. Units are visited in
//! index order, randomness comes from a seeded ChaCha8 stream, the physics runs with rapier's
//! enhanced determinism, and nothing depends on wall-clock time or on how many steps are run at
//! once. [`BattleSim::state_hash`] condenses the whole state to check this.
//!
//! Layout: unit state is kept in parallel arrays (one entry per unit), so the per-step loops
//! stream through memory; the physics world is only touched to read positions and set
//! velocities. Deployment (the field, the walls, the armies and their reinforcements) is
//! [`deploy`](self::deploy); one step (survey, act, damage, physics, judge) is
//! [`step`](self::step); this file holds the state and what can be read of it.

pub mod deploy;
pub mod step;

use components::battle::{EndReason, FieldView, Side, UnitFrame, WallsView};
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
    half_thickness: f32,
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
    /// What each troop type deals to each, from the setup's troop data.
    counters: Box<crate::battle::setup::CounterTable>,
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

    /// Bodies in the physics world: the units on the field, and the walls.
    pub fn physics_bodies(&self) -> usize {
        self.physics.bodies.len()
    }

    pub fn unit_count(&self) -> usize {
        self.body.len()
    }

    /// The ground and the walls, as the read model shows them.
    pub fn field(&self) -> FieldView {
        FieldView {
            min: [self.min.x, self.min.y],
            max: [self.max.x, self.max.y],
            walls: self.walls.as_ref().map(|w| WallsView {
                x: w.x,
                thickness: 2.0 * w.half_thickness,
                gates: w.gates.clone(),
                gate_width: 2.0 * w.gate_half_width,
            }),
        }
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

    /// The groups' ids (a general's, or `garrison`), as a frame's units name them.
    pub fn frame_groups(&self) -> Vec<String> {
        self.setup.groups.iter().map(|g| g.id.clone()).collect()
    }

    /// Units on the field as a frame: `[id, side, kind, x, y, hp, group]`.
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
                    self.group[i],
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

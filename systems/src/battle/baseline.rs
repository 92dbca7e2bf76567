//! A bare rapier2d world kept in step with a battle, for the throughput benchmark: the same
//! bodies, the same velocities set each step and the same removals, hence the same contacts,
//! but no game logic. Timing its steps against the battle's gives the cost of the logic.

use rapier2d::{
    math::Vector,
    prelude::{PhysicsWorld, RigidBodyHandle},
};

use super::{
    setup::{BattleSetup, SetupError},
    sim::BattleSim,
};

/// What one battle step did to its physics world before stepping it.
#[derive(Clone, Debug, Default)]
pub struct StepInputs {
    /// Bodies removed, in order.
    pub removed: Vec<RigidBodyHandle>,
    /// Velocities set, in order.
    pub velocities: Vec<(RigidBodyHandle, Vector)>,
}

impl StepInputs {
    /// What `sim`'s last step did; call it before the next step.
    pub fn of(sim: &BattleSim) -> StepInputs {
        let inputs = sim.last_inputs();
        StepInputs {
            removed: inputs.removed().collect(),
            velocities: inputs.velocities().collect(),
        }
    }
}

pub struct Baseline {
    physics: PhysicsWorld,
}

impl Baseline {
    /// The physics world of a freshly deployed battle of `setup`. Reinforcements are not
    /// mirrored: use setups without them.
    pub fn new(setup: BattleSetup) -> Result<Baseline, SetupError> {
        Ok(Baseline {
            physics: BattleSim::new(setup)?.into_physics(),
        })
    }

    /// Applies a battle step's inputs: removals, then velocities.
    pub fn apply(&mut self, inputs: &StepInputs) {
        for &body in &inputs.removed {
            self.physics.remove_body(body);
        }
        for &(body, velocity) in &inputs.velocities {
            self.physics.bodies[body].set_linvel(velocity, velocity != Vector::ZERO);
        }
    }

    pub fn step(&mut self) {
        self.physics.step();
    }

    /// Bodies in the world.
    pub fn bodies(&self) -> usize {
        self.physics.bodies.len()
    }

    /// Collider pairs in touch after the last step: how dense the battle is.
    pub fn touching_pairs(&self) -> usize {
        self.physics
            .narrow_phase
            .contact_pairs()
            .filter(|p| p.has_any_active_contact())
            .count()
    }
}

//! Undoing a command whose enactment failed part way (docs/rules.md#faults): before
//! [`super::enact`] runs, a [`Rollback`] keeps what the plan can write — the components of the
//! generals, cities and nations it names, a sandbox CLOCK's state, and where the timeline, the
//! order windows and the outbox are, and a JOIN's player's presence — and, if enacting panics, puts all of it back, so the World is as it was
//! before the command and the command is rejected `internal`.

use bevy_ecs::{entity::Entity, world::World};
use components::{
    time::GameClock,
    world::{City, General, Nation, Registry, Sandbox},
};

use super::{Plan, sandbox::SandboxPlan};
use crate::{
    event_log::Outbox,
    rules::{
        orders::Orders,
        presence::Presence,
        residents::{remove_general, set_city},
        timeline::Timeline,
    },
};

/// What a plan may change, as it was before.
pub(super) struct Rollback {
    generals: Vec<(Entity, General)>,
    cities: Vec<(Entity, City)>,
    nations: Vec<(Entity, Nation)>,
    /// A JOIN's general (id, player): neither was registered before.
    joined: Option<(String, String)>,
    /// A JOIN's player's presence: (last seen, dirty).
    presence: Option<(Option<i64>, bool)>,
    /// A sandbox CLOCK's state and the clock's speed.
    clock: Option<(Sandbox, f64)>,
    timeline: u64,
    orders: usize,
    outbox: (u64, usize),
}

impl Rollback {
    /// Keeps what `plan` may change.
    pub(super) fn capture(world: &World, plan: &Plan) -> Rollback {
        let (generals, cities, nations): (Vec<Entity>, Vec<Entity>, Vec<Entity>) = match plan {
            Plan::Join { .. } => (vec![], vec![], vec![]),
            Plan::Timed {
                general, city_pays, ..
            } => (
                vec![*general],
                city_pays.iter().map(|(city, _, _)| *city).collect(),
                vec![],
            ),
            Plan::Appoint {
                issuer,
                target,
                replaced,
                ..
            } => (
                [Some(*issuer), Some(*target), *replaced]
                    .into_iter()
                    .flatten()
                    .collect(),
                vec![],
                vec![],
            ),
            Plan::Dismiss { issuer, target, .. } => (vec![*issuer, *target], vec![], vec![]),
            Plan::Relation {
                issuer,
                nation,
                other,
                ..
            } => (vec![*issuer], vec![], vec![*nation, *other]),
            Plan::SetTax { issuer, nation, .. } => (vec![*issuer], vec![], vec![*nation]),
            Plan::Sandbox(plan) => {
                let (general, city, nation) = plan.touches();
                (
                    general.into_iter().collect(),
                    city.into_iter().collect(),
                    nation.into_iter().collect(),
                )
            }
        };
        Rollback {
            generals: generals
                .into_iter()
                .filter_map(|e| world.get::<General>(e).map(|g| (e, g.clone())))
                .collect(),
            cities: cities
                .into_iter()
                .filter_map(|e| world.get::<City>(e).map(|c| (e, c.clone())))
                .collect(),
            nations: nations
                .into_iter()
                .filter_map(|e| world.get::<Nation>(e).map(|n| (e, n.clone())))
                .collect(),
            joined: match plan {
                Plan::Join { general } => Some((
                    general.id.clone(),
                    general.owner.clone().unwrap_or_default(),
                )),
                _ => None,
            },
            presence: match (plan, world.get_resource::<Presence>()) {
                (Plan::Join { general }, Some(presence)) => {
                    let player = general.owner.as_deref().unwrap_or_default();
                    Some((presence.last_seen(player), presence.is_dirty(player)))
                }
                _ => None,
            },
            clock: match (plan, world.get_resource::<Sandbox>()) {
                (Plan::Sandbox(SandboxPlan::Clock(_)), Some(sandbox)) => {
                    Some((*sandbox, world.resource::<GameClock>().speed))
                }
                _ => None,
            },
            timeline: world.get_resource::<Timeline>().map_or(0, Timeline::mark),
            orders: world.get_resource::<Orders>().map_or(0, Orders::mark),
            outbox: world.get_resource::<Outbox>().map_or((0, 0), Outbox::mark),
        }
    }

    /// Puts everything kept back.
    pub(super) fn restore(self, world: &mut World) {
        for (entity, kept) in self.generals {
            // Back in its city, in the index of residents too (a TELEPORT moved it).
            set_city(world, entity, &kept.city);
            if let Some(mut general) = world.get_mut::<General>(entity) {
                *general = kept;
            }
        }
        if let Some((sandbox, speed)) = self.clock {
            world.insert_resource(sandbox);
            world.resource_mut::<GameClock>().speed = speed;
        }
        for (entity, kept) in self.cities {
            if let Some(mut city) = world.get_mut::<City>(entity) {
                *city = kept;
            }
        }
        for (entity, kept) in self.nations {
            if let Some(mut nation) = world.get_mut::<Nation>(entity) {
                *nation = kept;
            }
        }
        if let (Some((_, player)), Some((last_seen, dirty))) = (&self.joined, self.presence)
            && let Some(mut presence) = world.get_resource_mut::<Presence>()
        {
            presence.restore(player, last_seen, dirty);
        }
        if let Some((id, player)) = self.joined {
            let spawned = world
                .get_resource::<Registry>()
                .and_then(|r| r.generals.get(&id).copied());
            if let Some(mut registry) = world.get_resource_mut::<Registry>() {
                registry.generals.remove(&id);
                if registry.players.get(&player) == Some(&id) {
                    registry.players.remove(&player);
                }
            }
            if let Some(entity) = spawned {
                remove_general(world, entity);
                world.despawn(entity);
            } else {
                // Spawned but not registered yet: the general is found by its id.
                let mut generals = world.query::<(Entity, &General)>();
                let strays: Vec<Entity> = generals
                    .iter(world)
                    .filter(|(_, g)| g.id == id)
                    .map(|(e, _)| e)
                    .collect();
                for entity in strays {
                    remove_general(world, entity);
                    world.despawn(entity);
                }
            }
        }
        if let Some(mut timeline) = world.get_resource_mut::<Timeline>() {
            timeline.rollback(self.timeline);
        }
        if let Some(mut orders) = world.get_resource_mut::<Orders>() {
            orders.rollback(self.orders);
        }
        if let Some(mut outbox) = world.get_resource_mut::<Outbox>() {
            outbox.rollback(self.outbox);
        }
    }
}

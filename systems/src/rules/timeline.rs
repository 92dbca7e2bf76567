//! The [`Timeline`] and what comes due on it each strategy tick
//! (docs/rules.md#orders-and-marches): timed orders complete with their effect, and marches
//! reach the next city on their path, where they pass through, arrive, halt, or stop and
//! fight (starting a battle or joining one under way). Everything happens at the game second
//! it was due, however long the tick's step.

use std::{cmp::Reverse, collections::BinaryHeap};

use bevy_ecs::{entity::Entity, resource::Resource, system::RunSystemOnce, world::World};
use components::{
    battle::Side,
    command::{BuildKind, Reason},
    events::{EventKind, aggregate},
    time::GameClock,
    world::{City, General, GeneralStatus, OrderEffect, Registry, Relation},
};

use crate::{
    assets::Data,
    battle::{Battle, BattleRequest, conclude_battles, join_battle, spawn_battle},
    event_log::Outbox,
    rules::{
        capture::{apply_battle_results, capture_city},
        cards::troop_cap,
        hostility::{defenders_in, is_hostile, only_protected_defenders, relation_between},
        orders::{finish_order, halt_march},
        paths::travel_seconds,
        residents::set_city,
    },
};

/// When timed orders and march legs come due: entries of (game second, general). An entry
/// only says "look at this general then"; what is due is read from the general itself, so
/// entries left by cancelled orders are harmless.
#[derive(Resource, Default, Debug)]
pub struct Timeline {
    heap: BinaryHeap<Reverse<(i64, u64, Entity)>>,
    /// Breaks ties in insertion order, so equal times come out deterministically.
    next: u64,
}

impl Timeline {
    pub fn schedule(&mut self, at: i64, general: Entity) {
        self.next += 1;
        self.heap.push(Reverse((at, self.next, general)));
    }

    /// The earliest entry due by `now`.
    pub fn pop_due(&mut self, now: i64) -> Option<(i64, Entity)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((at, _, entity))| (at, entity))
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Where the timeline is, for [`Timeline::rollback`].
    pub fn mark(&self) -> u64 {
        self.next
    }

    /// Forgets every entry scheduled since `mark` (a command undone after a fault).
    pub fn rollback(&mut self, mark: u64) {
        self.heap.retain(|Reverse((_, n, _))| *n <= mark);
        self.next = mark;
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Strategy: completes the orders and march legs due by now, in time order.
pub fn run_timeline(world: &mut World) {
    let now = world.resource::<GameClock>().game_seconds;
    while let Some((at, entity)) = world.resource_mut::<Timeline>().pop_due(now) {
        let Some(general) = world.get::<General>(entity) else {
            continue;
        };
        if let Some(march) = &general.march {
            if march.next_at <= at {
                reach_next_city(world, entity, march.next_at);
            }
        } else if let Some(order) = &general.order
            && order.completes_at <= at
            && order.effect != OrderEffect::March
        {
            complete_order(world, entity, order.completes_at);
        }
    }
}

fn complete_order(world: &mut World, entity: Entity, at: i64) {
    let data = world.resource::<Data>().0.clone();
    let Some(general) = world.get::<General>(entity) else {
        return;
    };
    let Some(order) = general.order.clone() else {
        return;
    };
    let cap = troop_cap(&data, general);
    match &order.effect {
        OrderEffect::Train => {
            let max = data.balance.training.max.clamp(0, 100) as u8;
            let gain = data.balance.training.gain.clamp(0, 100) as u8;
            if let Some(mut g) = world.get_mut::<General>(entity) {
                g.training = g.training.saturating_add(gain).min(max).max(g.training);
            }
        }
        OrderEffect::Recruit { amount, troop_type } => {
            if let Some(mut g) = world.get_mut::<General>(entity) {
                // Accepted only for a general without soldiers, which gains none while busy, and
                // for a type a reload keeps while it is being recruited.
                if let Some(troop_type) = troop_type
                    && g.troops == 0
                    && data.troops.get(*troop_type).is_some()
                {
                    g.troop_type = *troop_type;
                }
                // Paid for at acceptance within the cap; a card lost since may lower the cap,
                // and soldiers beyond it are not added.
                let before = g.troops;
                g.troops = g.troops.saturating_add(*amount).min(cap.max(g.troops));
                let soldiers = g.troops - before;
                let id = g.id.clone();
                world.resource_mut::<Outbox>().emit(
                    at,
                    aggregate("general", &id),
                    EventKind::TroopsRecruited {
                        general: id.clone(),
                        soldiers,
                    },
                );
            }
        }
        OrderEffect::Build { city, build } => {
            let b = &data.balance.build;
            let city_entity = world.resource::<Registry>().cities.get(city).copied();
            let nation = general.nation.clone();
            let still_ours = city_entity
                .and_then(|e| world.get::<City>(e))
                .is_some_and(|c| c.owner.is_some() && c.owner == nation);
            if !still_ours {
                // The city fell (or the builder lost its nation) before the work was done.
                finish_order(world, entity, at, Some(Reason::Captured));
                return;
            }
            if let Some(mut c) = city_entity.and_then(|e| world.get_mut::<City>(e)) {
                let (value, step, max) = match build {
                    BuildKind::Agriculture => {
                        (&mut c.agriculture, b.agriculture_step, b.agriculture_max)
                    }
                    BuildKind::Commerce => (&mut c.commerce, b.commerce_step, b.commerce_max),
                    BuildKind::Walls => (&mut c.walls, b.walls_step, b.walls_max),
                };
                let next = (i64::from(*value) + step).min(max).max(i64::from(*value));
                *value = next.clamp(0, i64::from(u32::MAX)) as u32;
            }
        }
        OrderEffect::March => {}
    }
    finish_order(world, entity, at, None);
}

/// Ends a march in `city`: the general is there, its MOVE completed.
fn arrive(world: &mut World, entity: Entity, city: &str, at: i64) {
    let Some(mut general) = world.get_mut::<General>(entity) else {
        return;
    };
    general.march = None;
    let id = general.id.clone();
    set_city(world, entity, city);
    world.resource_mut::<Outbox>().emit(
        at,
        aggregate("general", &id),
        EventKind::MarchArrived {
            general: id,
            city: city.to_string(),
        },
    );
    finish_order(world, entity, at, None);
}

fn reach_next_city(world: &mut World, entity: Entity, at: i64) {
    let Some(general) = world.get::<General>(entity) else {
        return;
    };
    let Some(march) = general.march.clone() else {
        return;
    };
    let nation = general.nation.clone();
    let city_id = march.path[march.next].clone();
    settle_battle_at(world, &city_id, at);
    let registry = world.resource::<Registry>();
    let Some(city) = registry
        .cities
        .get(&city_id)
        .and_then(|e| world.get::<City>(*e))
        .cloned()
    else {
        halt_march(world, entity, at, Reason::UnknownTarget);
        return;
    };
    let last = march.next + 1 == march.path.len();
    let battle_here = world
        .resource::<Registry>()
        .battles
        .values()
        .filter_map(|e| world.get::<Battle>(*e))
        .find(|b| b.city == city.id && b.sim.outcome().is_none())
        .map(|b| {
            (
                b.id.clone(),
                b.attacker.nation.clone(),
                b.defender.nation.clone(),
            )
        });

    if let Some((battle, attacker_nation, defender_nation)) = battle_here {
        // Each joins its own side: the defenders' nation (or an ally of it) defends, the
        // attackers' nation (or an ally) attacks; a third party at war with both stays out.
        let friendly = |side: &Option<String>| match (&nation, side) {
            (Some(n), Some(s)) => {
                n == s || relation_between(world, n, s) == Some(Relation::Alliance)
            }
            _ => false,
        };
        let side = if friendly(&defender_nation) {
            Some(Side::Defender)
        } else if friendly(&attacker_nation) {
            Some(Side::Attacker)
        } else {
            None
        };
        if side.is_none() && is_hostile(world, nation.as_deref(), &city) {
            halt_march(world, entity, at, Reason::InBattle);
            return;
        }
        if let Some(side) = side {
            join(
                world,
                entity,
                &battle,
                side,
                &march.path[march.next - 1],
                &city.id,
                at,
            );
            return;
        }
    }
    if is_hostile(world, nation.as_deref(), &city) {
        if nation.is_none() {
            halt_march(world, entity, at, Reason::NoPath);
        } else if only_protected_defenders(world, &city) {
            halt_march(world, entity, at, Reason::TargetProtected);
        } else {
            engage(world, entity, &city, &march.path[march.next - 1], at);
        }
        return;
    }
    let may_enter = match (&city.owner, &nation) {
        (Some(owner), Some(nation)) if owner != nation => {
            relation_between(world, nation, owner) == Some(Relation::Alliance) || !last
        }
        _ => true,
    };
    if !may_enter {
        halt_march(world, entity, at, Reason::NotAtWar);
        return;
    }
    if last {
        if city.owner.is_none()
            && let Some(nation) = &nation
        {
            // An undefended neutral city is taken by walking in.
            arrive(world, entity, &city.id, at);
            capture_city(world, &city.id, nation, None, at);
        } else {
            arrive(world, entity, &city.id, at);
        }
        return;
    }
    // Passing through: on to the next city of the path.
    let per_hour = world
        .resource::<Data>()
        .balance
        .march
        .distance_per_game_hour;
    let next_city = march.path[march.next + 1].clone();
    let distance = city
        .neighbors
        .iter()
        .find(|r| r.city == next_city)
        .map_or(0, |r| u64::from(r.distance));
    let next_at = at + travel_seconds(distance, per_hour);
    set_city(world, entity, &city.id);
    if let Some(mut general) = world.get_mut::<General>(entity)
        && let Some(march) = &mut general.march
    {
        march.next += 1;
        march.next_at = next_at;
    }
    world.resource_mut::<Timeline>().schedule(next_at, entity);
}

/// Brings a battle under way at `city` up to game second `at` and, if it ended by then,
/// concludes it and applies its result: whoever arrives at `at` meets the same battle (or the
/// same captured city) however far the battle schedule had got.
fn settle_battle_at(world: &mut World, city: &str, at: i64) {
    let registry = world.resource::<Registry>();
    let Some(entity) = registry
        .battles
        .values()
        .copied()
        .find(|e| world.get::<Battle>(*e).is_some_and(|b| b.city == city))
    else {
        return;
    };
    let pool = world.resource::<crate::battle::BattlePool>().clone();
    let Some(mut battle) = world.get_mut::<Battle>(entity) else {
        return;
    };
    let due = battle.due_steps(at);
    let sim = &mut battle.sim;
    pool.install(|| {
        while u64::from(sim.steps()) < due && sim.outcome().is_none() {
            sim.step();
        }
    });
    if battle.sim.outcome().is_some() {
        if let Err(error) = world.run_system_once(conclude_battles) {
            tracing::error!(%error, "could not conclude a battle");
        }
        apply_battle_results(world);
    }
}

/// Joins the battle at `city` on `side`. An attacker stays counted in the city it came from
/// until the battle is won; a defender is in its own city.
fn join(
    world: &mut World,
    entity: Entity,
    battle: &str,
    side: Side,
    from: &str,
    city: &str,
    at: i64,
) {
    let id = world
        .get::<General>(entity)
        .map(|g| g.id.clone())
        .unwrap_or_default();
    if join_battle(world, battle, &id, side, at).is_err() {
        // No troops to bring: the march ends at the city it came from.
        halt_march(world, entity, at, Reason::InBattle);
        return;
    }
    if let Some(mut general) = world.get_mut::<General>(entity) {
        general.march = None;
    }
    set_city(
        world,
        entity,
        if side == Side::Defender { city } else { from },
    );
    finish_order(world, entity, at, None);
}

/// Starts a battle for `city`, or takes it at once when nobody defends it.
fn engage(world: &mut World, entity: Entity, city: &City, from: &str, at: i64) {
    let Some(general) = world.get::<General>(entity) else {
        return;
    };
    let (id, nation, troops) = (general.id.clone(), general.nation.clone(), general.troops);
    let defenders: Vec<String> = match &city.owner {
        Some(owner) => defenders_in(world, &city.id, owner)
            .into_iter()
            .filter(|g| !g.protected && g.troops > 0)
            .map(|g| g.id.clone())
            .collect(),
        None => Vec::new(),
    };
    if defenders.is_empty() && city.garrison == 0 {
        arrive(world, entity, &city.id, at);
        if let Some(nation) = nation {
            capture_city(world, &city.id, &nation, None, at);
        }
        return;
    }
    if troops == 0 {
        halt_march(world, entity, at, Reason::InvalidArgs);
        return;
    }
    let request = BattleRequest {
        city: city.id.clone(),
        attackers: vec![id],
        defenders,
        garrison: true,
    };
    match spawn_battle(world, &request) {
        Ok(_) => {
            if let Some(mut general) = world.get_mut::<General>(entity) {
                general.march = None;
                general.status = GeneralStatus::InBattle;
            }
            set_city(world, entity, from);
            finish_order(world, entity, at, None);
        }
        Err(error) => {
            tracing::warn!(%error, city = %city.id, "a march could not start its battle");
            halt_march(world, entity, at, Reason::Internal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_pops_in_time_order() {
        let mut timeline = Timeline::default();
        let a = Entity::from_raw_u32(1).unwrap();
        let b = Entity::from_raw_u32(2).unwrap();
        timeline.schedule(20, a);
        timeline.schedule(10, b);
        timeline.schedule(10, a);
        assert_eq!(timeline.pop_due(5), None);
        assert_eq!(timeline.pop_due(15), Some((10, b)));
        assert_eq!(timeline.pop_due(15), Some((10, a)));
        assert_eq!(timeline.pop_due(15), None);
        assert_eq!(timeline.pop_due(20), Some((20, a)));
        assert!(timeline.is_empty());
    }
}

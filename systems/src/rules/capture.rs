//! City capture and nation destruction (docs/rules.md#capture-and-nation-destruction). A battle
//! won by the attacker (or a walk into an undefended city) changes the city's owner and moves
//! the winners in; the old owner's generals there retreat to their nation's nearest city or
//! turn ronin; a nation left without cities is destroyed. Each capture is one change within one
//! tick.

use bevy_ecs::{entity::Entity, world::World};
use components::{
    battle::Side,
    command::Reason,
    events::{EventKind, aggregate},
    world::{City, General, GeneralStatus, Nation, NationStatus, Registry, Relation},
};

use crate::{
    battle::BattleResults,
    event_log::Outbox,
    rules::{
        cards::set_position,
        hostility::relation_between,
        orders::{finish_order, halt_march_cancelling},
        paths::shortest_path,
        residents::set_city,
    },
};

/// Battle schedule, after battles conclude ([`crate::schedule::BattleSet::Results`]): applies
/// their results.
pub fn apply_battle_results(world: &mut World) {
    let results = std::mem::take(&mut world.resource_mut::<BattleResults>().0);
    for result in results {
        if result.winner != Side::Attacker {
            continue;
        }
        let Some(nation) = result.attacker_nation.clone() else {
            continue;
        };
        let alive = world
            .resource::<Registry>()
            .nations
            .get(&nation)
            .and_then(|e| world.get::<Nation>(*e))
            .is_some_and(|n| n.status == NationStatus::Active);
        if !alive {
            continue;
        }
        // Peace (or an alliance) made while the battle went on spares the city.
        let owner = city_entity(world, &result.city)
            .and_then(|e| world.get::<City>(e))
            .and_then(|c| c.owner.clone());
        if let Some(owner) = owner
            && relation_between(world, &nation, &owner) != Some(Relation::War)
        {
            continue;
        }
        capture_city(
            world,
            &result.city,
            &nation,
            Some(result.battle.clone()),
            result.at,
        );
        // The winners move in.
        for id in &result.attackers {
            let entity = world.resource::<Registry>().generals.get(id).copied();
            if let Some(entity) = entity
                && world.get::<General>(entity).is_some_and(|g| {
                    g.nation.as_deref() == Some(nation.as_str()) && g.march.is_none()
                })
            {
                set_city(world, entity, &result.city);
            }
        }
    }
}

fn city_entity(world: &World, id: &str) -> Option<Entity> {
    world.resource::<Registry>().cities.get(id).copied()
}

fn nation_entity(world: &World, id: &str) -> Option<Entity> {
    world.resource::<Registry>().nations.get(id).copied()
}

/// `city` passes to `nation`. Defenders retreat, governors of the city lose their card, a
/// lost capital moves, and a nation left without cities is destroyed.
pub fn capture_city(world: &mut World, city: &str, nation: &str, battle: Option<String>, at: i64) {
    let Some(entity) = city_entity(world, city) else {
        return;
    };
    let Some(mut c) = world.get_mut::<City>(entity) else {
        return;
    };
    if c.owner.as_deref() == Some(nation) {
        return;
    }
    let previous = c.owner.replace(nation.to_string());
    let garrison_lost = std::mem::take(&mut c.garrison);
    world.resource_mut::<Outbox>().emit(
        at,
        aggregate("city", city),
        EventKind::CityCaptured {
            city: city.to_string(),
            from: previous.clone(),
            to: nation.to_string(),
            battle,
            garrison_lost,
        },
    );
    let Some(previous) = previous else { return };

    // The old owner's generals in the city, and holders of cards of its scope (its
    // governor), wherever they are: only such cards name a city.
    let registry = world.resource::<Registry>();
    let mut affected: Vec<(String, Entity)> = registry
        .generals
        .iter()
        .filter_map(|(id, e)| world.get::<General>(*e).map(|g| (id, *e, g)))
        .filter(|(_, _, g)| {
            g.nation.as_deref() == Some(previous.as_str())
                && (g.city == city && g.march.is_none()
                    || g.position
                        .as_ref()
                        .is_some_and(|p| p.city.as_deref() == Some(city)))
        })
        .map(|(id, e, _)| (id.clone(), e))
        .collect();
    affected.sort();
    for (_, general) in &affected {
        let governs = world.get::<General>(*general).is_some_and(|g| {
            g.position
                .as_ref()
                .is_some_and(|p| p.city.as_deref() == Some(city))
        });
        if governs {
            set_position(world, *general, None);
        }
    }

    let capital_lost = nation_entity(world, &previous)
        .and_then(|e| world.get::<Nation>(e))
        .is_some_and(|n| n.capital.as_deref() == Some(city));
    let remaining = largest_city_of(world, &previous);
    match remaining {
        None => destroy_nation(world, &previous, Some(nation.to_string()), at),
        Some(new_capital) => {
            if capital_lost
                && let Some(mut n) =
                    nation_entity(world, &previous).and_then(|e| world.get_mut::<Nation>(e))
            {
                n.capital = Some(new_capital.clone());
                world.resource_mut::<Outbox>().emit(
                    at,
                    aggregate("nation", &previous),
                    EventKind::CapitalMoved {
                        nation: previous.clone(),
                        city: new_capital,
                    },
                );
            }
            for (id, general) in affected {
                let here = world
                    .get::<General>(general)
                    .is_some_and(|g| g.city == city && g.march.is_none());
                if here {
                    retreat(world, general, &id, city, &previous, at);
                }
            }
        }
    }
}

/// The city of `nation` with the most people (ties: the smallest id).
fn largest_city_of(world: &World, nation: &str) -> Option<String> {
    world
        .resource::<Registry>()
        .cities
        .values()
        .filter_map(|e| world.get::<City>(*e))
        .filter(|c| c.owner.as_deref() == Some(nation))
        .max_by(|a, b| a.population.cmp(&b.population).then(b.id.cmp(&a.id)))
        .map(|c| c.id.clone())
}

/// Sends a general of `nation` from a fallen city to the nation's nearest city by road, or
/// makes it a ronin where it stands when no road leads to one.
fn retreat(world: &mut World, entity: Entity, id: &str, from: &str, nation: &str, at: i64) {
    let to = shortest_path(
        world,
        from,
        |c| c.owner.as_deref() == Some(nation),
        |_| true,
    )
    .and_then(|p| p.cities.last().cloned());
    match &to {
        Some(to) => set_city(world, entity, to),
        None => make_ronin(world, entity, at, Reason::Captured),
    }
    world.resource_mut::<Outbox>().emit(
        at,
        aggregate("general", id),
        EventKind::GeneralRetreated {
            general: id.to_string(),
            from: from.to_string(),
            to,
        },
    );
}

/// The general leaves its nation: no card, its open order cancelled (a march halts).
fn make_ronin(world: &mut World, entity: Entity, at: i64, reason: Reason) {
    set_position(world, entity, None);
    if world
        .get::<General>(entity)
        .is_some_and(|g| g.march.is_some())
    {
        halt_march_cancelling(world, entity, at, reason, reason);
    } else {
        finish_order(world, entity, at, Some(reason));
    }
    if let Some(mut general) = world.get_mut::<General>(entity) {
        general.nation = None;
        if general.status == GeneralStatus::Busy {
            general.status = GeneralStatus::Idle;
        }
    }
}

/// `nation` has no city left: its generals become ronin, its relations and cards are void.
pub fn destroy_nation(world: &mut World, nation: &str, by: Option<String>, at: i64) {
    let Some(entity) = nation_entity(world, nation) else {
        return;
    };
    if let Some(mut n) = world.get_mut::<Nation>(entity) {
        n.status = NationStatus::Destroyed;
        n.ruler = None;
        n.capital = None;
        n.relations.clear();
        n.relations_since.clear();
    }
    let others: Vec<Entity> = world
        .resource::<Registry>()
        .nations
        .values()
        .copied()
        .collect();
    for other in others {
        if let Some(mut n) = world.get_mut::<Nation>(other)
            && (n.relations.contains_key(nation) || n.relations_since.contains_key(nation))
        {
            n.relations.remove(nation);
            n.relations_since.remove(nation);
        }
    }
    let mut generals: Vec<(String, Entity)> = world
        .resource::<Registry>()
        .generals
        .iter()
        .filter(|(_, e)| {
            world
                .get::<General>(**e)
                .is_some_and(|g| g.nation.as_deref() == Some(nation))
        })
        .map(|(id, e)| (id.clone(), *e))
        .collect();
    generals.sort();
    for (_, general) in generals {
        make_ronin(world, general, at, Reason::NationDestroyed);
    }
    world.resource_mut::<Outbox>().emit(
        at,
        aggregate("nation", nation),
        EventKind::NationDestroyed {
            nation: nation.to_string(),
            by,
        },
    );
}

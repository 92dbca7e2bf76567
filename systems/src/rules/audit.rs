//! What must hold in every World, checked from the outside (headless runs, tests): cities are
//! held by active nations or no one, stocks are not negative, command points lie within their
//! bounds, every general is somewhere real, and a marching general has a march. It only reads.

use bevy_ecs::world::World;
use components::world::{City, General, GeneralStatus, Nation, NationStatus, Registry};

fn is_active(world: &World, registry: &Registry, nation: &str) -> bool {
    registry
        .nations
        .get(nation)
        .and_then(|e| world.get::<Nation>(*e))
        .is_some_and(|n| n.status == NationStatus::Active)
}

/// Every broken rule found, in words; empty when the World is consistent.
pub fn problems(world: &World) -> Vec<String> {
    let registry = world.resource::<Registry>();
    let mut found = Vec::new();
    let mut ids: Vec<&String> = registry.cities.keys().collect();
    ids.sort();
    for id in ids {
        let Some(city) = world.get::<City>(registry.cities[id]) else {
            found.push(format!("city {id} has no entity"));
            continue;
        };
        if let Some(owner) = &city.owner
            && !is_active(world, registry, owner)
        {
            found.push(format!(
                "city {id} is held by {owner}, which is not an active nation"
            ));
        }
        if city.gold < 0 || city.rice < 0 {
            found.push(format!("city {id} has negative stocks"));
        }
    }
    let mut ids: Vec<&String> = registry.nations.keys().collect();
    ids.sort();
    for id in ids {
        let Some(nation) = world.get::<Nation>(registry.nations[id]) else {
            continue;
        };
        if nation.gold < 0 || nation.rice < 0 {
            found.push(format!("nation {id} has negative stocks"));
        }
        if nation.status == NationStatus::Active {
            let capital_held = nation.capital.as_ref().is_some_and(|c| {
                registry
                    .cities
                    .get(c)
                    .and_then(|e| world.get::<City>(*e))
                    .is_some_and(|city| city.owner.as_deref() == Some(id.as_str()))
            });
            if !capital_held {
                found.push(format!("nation {id} does not hold its capital"));
            }
        }
    }
    let mut ids: Vec<&String> = registry.generals.keys().collect();
    ids.sort();
    for id in ids {
        let Some(g) = world.get::<General>(registry.generals[id]) else {
            continue;
        };
        if g.pcp > g.pcp_max || g.mcp > g.mcp_max {
            found.push(format!("general {id} has command points above its maximum"));
        }
        if !registry.cities.contains_key(&g.city) {
            found.push(format!("general {id} is in no known city ({})", g.city));
        }
        if (g.status == GeneralStatus::Marching) != g.march.is_some() {
            found.push(format!(
                "general {id} is {:?} with march {:?}",
                g.status,
                g.march.is_some()
            ));
        }
        if let Some(nation) = &g.nation
            && !is_active(world, registry, nation)
        {
            found.push(format!(
                "general {id} serves {nation}, which is not an active nation"
            ));
        }
    }
    found
}

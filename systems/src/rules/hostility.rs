//! Who must fight whom (docs/rules.md#marches): relations between nations, whether a general
//! must fight to enter a city, who stands in a city to defend it, and whether only protected
//! generals do. Marches, battles, capture and the AI ask these; nothing here writes.

use bevy_ecs::world::World;
use components::world::{City, General, GeneralStatus, Nation, Registry, Relation};

use crate::rules::residents::generals_in;

/// The relation of nation `a` towards `b` (`None` if either is unknown or destroyed).
pub fn relation_between(world: &World, a: &str, b: &str) -> Option<Relation> {
    let registry = world.resource::<Registry>();
    let nation = registry
        .nations
        .get(a)
        .and_then(|e| world.get::<Nation>(*e))?;
    nation.relations.get(b).copied()
}

/// Whether the city's defenders are only protected generals: no garrison, no unprotected
/// general of its nation able to fight, and at least one protected one.
pub fn only_protected_defenders(world: &World, city: &City) -> bool {
    if city.garrison > 0 {
        return false;
    }
    let Some(owner) = &city.owner else {
        return false;
    };
    let mut protected = false;
    for general in defenders_in(world, &city.id, owner) {
        if general.protected {
            protected = true;
        } else if general.troops > 0 {
            return false;
        }
    }
    protected
}

/// Generals of `nation` standing in `city` (not marching, not in a battle).
pub fn defenders_in<'w>(world: &'w World, city: &str, nation: &str) -> Vec<&'w General> {
    generals_in(world, city)
        .into_iter()
        .filter(|g| {
            g.nation.as_deref() == Some(nation)
                && matches!(g.status, GeneralStatus::Idle | GeneralStatus::Busy)
        })
        .collect()
}

/// Whether a general of `nation` (none: a ronin) must fight to enter `city`.
pub fn is_hostile(world: &World, nation: Option<&str>, city: &City) -> bool {
    match (&city.owner, nation) {
        (None, _) => city.garrison > 0,
        (Some(_), None) => false,
        (Some(owner), Some(nation)) => {
            owner != nation && relation_between(world, nation, owner) == Some(Relation::War)
        }
    }
}

//! MOVE (docs/rules.md#marches): a march along the shortest road path to a city, through
//! cities the general may pass, stopping at the first one it must fight for. A ronin never
//! attacks: its path avoids such cities.

use bevy_ecs::entity::Entity;
use components::{
    command::{Command, CommandType, Reason},
    world::{General, March, OrderEffect, Relation},
};

use super::{Cost, Plan, Rejection, View, reject, timed::timed};
use crate::rules::{
    hostility::{is_hostile, only_protected_defenders, relation_between},
    paths::{shortest_path, travel_seconds},
};

/// MOVE: the road path to `to`, stopping at the first city it must fight for, which must be
/// attackable; leg by leg at the march speed.
pub(super) fn decide(
    view: &View<'_>,
    command: &Command,
    entity: Entity,
    general: &General,
    to: &str,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let Some((_, destination)) = view.city(to) else {
        return reject(Reason::UnknownTarget, format!("no city \"{to}\""));
    };
    if general.city == to {
        return reject(
            Reason::InvalidArgs,
            format!("{} is already in {to}", general.id),
        );
    }
    let nation = general.nation.as_deref();
    if let (Some(nation), Some(owner)) = (nation, &destination.owner)
        && owner != nation
        && relation_between(view.world, nation, owner) == Some(Relation::Peace)
    {
        return reject(
            Reason::NotAtWar,
            format!("{to} belongs to {owner}, at peace with {nation}"),
        );
    }
    let path = match nation {
        // A ronin never attacks: its path avoids cities it would have to fight for.
        None => shortest_path(
            view.world,
            &general.city,
            |c| c.id == to && !is_hostile(view.world, None, c),
            |c| !is_hostile(view.world, None, c),
        ),
        Some(_) => shortest_path(view.world, &general.city, |c| c.id == to, |_| true),
    };
    let Some(path) = path else {
        return reject(
            Reason::NoPath,
            format!("no road leads from {} to {to}", general.city),
        );
    };
    // The march stops at the first city it must fight for: that one must be attackable.
    if let Some(first) = path
        .cities
        .iter()
        .skip(1)
        .filter_map(|id| view.city(id))
        .find(|(_, c)| is_hostile(view.world, nation, c))
        && only_protected_defenders(view.world, first.1)
    {
        return reject(
            Reason::TargetProtected,
            format!("{} is defended only by protected generals", first.1.id),
        );
    }
    let per_hour = view.data.balance.march.distance_per_game_hour;
    let mut legs = Vec::with_capacity(path.cities.len());
    for pair in path.cities.windows(2) {
        let distance = view
            .city(&pair[0])
            .and_then(|(_, c)| c.neighbors.iter().find(|r| r.city == pair[1]))
            .map_or(0, |r| u64::from(r.distance));
        legs.push(travel_seconds(distance, per_hour));
    }
    let first_leg = legs.first().copied().unwrap_or(1);
    let total: i64 = legs.iter().sum();
    let march = March {
        path: path.cities,
        next: 1,
        next_at: view.now + first_leg,
        eta: view.now + total,
        started_at: view.now,
    };
    let mut plan = timed(
        view,
        command,
        entity,
        CommandType::Move,
        cost,
        OrderEffect::March,
    );
    if let Plan::Timed {
        order, march: slot, ..
    } = &mut plan
    {
        order.completes_at = march.eta;
        *slot = Some(march);
    }
    Ok(plan)
}

//! Timed orders (docs/rules.md#order-life-cycle): MOVE ([`super::march`]) and city work
//! ([`super::city`]) start one. Accepting it pays the cost (and, for RECRUIT, the city's gold
//! and people), makes the general busy or marching, and puts it on the timeline, where it
//! completes (`crate::rules::timeline`).

use bevy_ecs::{entity::Entity, world::World};
use components::{
    command::{Command, CommandType},
    events::{EventKind, aggregate},
    world::{ActiveOrder, City, General, GeneralStatus, March, OrderEffect},
};

use super::{Cost, Plan, View, general_id, pay};
use crate::rules::timeline::Timeline;

/// A timed order of `kind` for `general`, accepted now and due after its duration.
pub(super) fn timed(
    view: &View<'_>,
    command: &Command,
    general: Entity,
    kind: CommandType,
    cost: Cost,
    effect: OrderEffect,
) -> Plan {
    Plan::Timed {
        general,
        cost,
        order: ActiveOrder {
            id: command.id.clone(),
            player: command.issuer.player().map(str::to_string),
            command: kind,
            accepted_at: view.now,
            completes_at: view.now + view.duration(kind),
            effect,
        },
        march: None,
        city_pays: None,
    }
}

/// Starts a timed order (MOVE and city work): the cost paid, the city paid (RECRUIT), the
/// general busy or marching, its next entry on the timeline.
#[allow(clippy::too_many_arguments)] // the fields of a timed plan
pub(super) fn enact(
    world: &mut World,
    general: Entity,
    cost: Cost,
    order: ActiveOrder,
    march: Option<March>,
    city_pays: Option<(Entity, i64, u32)>,
    events: &mut Vec<(String, EventKind)>,
) {
    pay(world, general, cost);
    if let Some((city, gold, population)) = city_pays
        && let Some(mut city) = world.get_mut::<City>(city)
    {
        city.gold -= gold;
        city.population = city.population.saturating_sub(population);
        let city = city.id.clone();
        if let OrderEffect::Recruit { amount, .. } = order.effect {
            let id = general_id(world, general);
            events.push((
                aggregate("general", &id),
                EventKind::RecruitStarted {
                    general: id,
                    city,
                    soldiers: amount,
                    gold,
                    population,
                },
            ));
        }
    }
    let due = march.as_ref().map_or(order.completes_at, |m| m.next_at);
    if let Some(march) = &march {
        events.push((
            aggregate("general", &general_id(world, general)),
            EventKind::MarchStarted {
                general: general_id(world, general),
                from: march.from().to_string(),
                to: march.to().to_string(),
                path: march.path.clone(),
                eta: march.eta,
            },
        ));
    }
    if let Some(mut g) = world.get_mut::<General>(general) {
        g.status = if march.is_some() {
            GeneralStatus::Marching
        } else {
            GeneralStatus::Busy
        };
        g.order = Some(Box::new(order));
        g.march = march.map(Box::new);
    }
    world.resource_mut::<Timeline>().schedule(due, general);
}

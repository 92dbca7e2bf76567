//! The court (docs/rules.md#position-cards-and-authority): APPOINT gives a general of the
//! same nation a position card (replacing its holder where there is one per nation or city),
//! DISMISS takes one away; a card may appoint and dismiss only the positions it lists. A
//! general's command-point maxima follow its card
//! ([`crate::rules::cards::set_position`]).

use bevy_ecs::{entity::Entity, world::World};
use components::{
    command::{AppointArgs, CommandType, Reason, TargetArgs},
    data::CardScope,
    events::{EventKind, aggregate},
    world::{General, Position},
};

use super::{Cost, Plan, Rejection, View, authority, general_id, pay, reject};
use crate::rules::cards::set_position;

/// APPOINT: `args.target` of the issuer's nation receives `args.position`.
pub(super) fn decide_appoint(
    view: &View<'_>,
    entity: Entity,
    general: &General,
    args: &AppointArgs,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (card, nation) = authority(view, general, CommandType::Appoint)?;
    let Some(appointed) = view.data.positions.get(args.position) else {
        let known: Vec<&str> = view
            .data
            .positions
            .by_rank()
            .into_iter()
            .map(|(kind, _)| kind.name())
            .collect();
        return reject(
            Reason::InvalidArgs,
            format!(
                "no position card \"{}\": positions.toml defines {}",
                args.position,
                known.join(", ")
            ),
        );
    };
    match (appointed.scope, &args.city) {
        (CardScope::Ruler, _) => {
            return reject(
                Reason::InvalidArgs,
                format!(
                    "the {} card is the ruler's and is never appointed",
                    args.position
                ),
            );
        }
        (CardScope::City, None) => {
            return reject(
                Reason::InvalidArgs,
                format!("the {} card names a city: give city", args.position),
            );
        }
        (CardScope::Nation, Some(_)) => {
            return reject(
                Reason::InvalidArgs,
                format!(
                    "the {} card names no city; only a card of a city's scope does",
                    args.position
                ),
            );
        }
        _ => {}
    }
    if !card.appoints.contains(&args.position) {
        return reject(
            Reason::NoAuthority,
            format!("your card may not appoint a {}", args.position.name()),
        );
    }
    let Some((target, target_general)) = view.general(&args.target) else {
        return reject(
            Reason::UnknownTarget,
            format!("no general \"{}\"", args.target),
        );
    };
    if target == entity {
        return reject(Reason::InvalidArgs, "a general does not appoint itself");
    }
    if target_general.nation.as_deref() != Some(nation) {
        return reject(
            Reason::NoAuthority,
            format!("{} does not serve your nation", args.target),
        );
    }
    // A card the data no longer defines (the world restarted on files without it) may be
    // taken away by any card that appoints.
    if let Some(current) = &target_general.position
        && !card.appoints.contains(&current.kind)
        && view.data.positions.get(current.kind).is_some()
    {
        return reject(
            Reason::NoAuthority,
            format!("{} holds a card yours may not take away", args.target),
        );
    }
    if let Some(city_id) = &args.city {
        match view.city(city_id) {
            None => return reject(Reason::UnknownTarget, format!("no city \"{city_id}\"")),
            Some((_, city)) if city.owner.as_deref() != Some(nation) => {
                return reject(
                    Reason::NoAuthority,
                    format!("{city_id} does not belong to {nation}"),
                );
            }
            Some(_) => {}
        }
    }
    let holders: Vec<(Entity, &General)> = view
        .generals_of(nation)
        .into_iter()
        .filter(|(e, g)| {
            *e != target
                && g.position
                    .as_ref()
                    .is_some_and(|p| p.kind == args.position && p.city == args.city)
        })
        .collect();
    // One holder (of the nation, or of the city): the appointment replaces it. More: one
    // beyond the limit is refused.
    let max = appointed.max_holders.max(0) as usize;
    let replaced = if appointed.scope == CardScope::City || max == 1 {
        holders.first().map(|(e, _)| *e)
    } else if holders.len() >= max {
        return reject(
            Reason::InvalidArgs,
            format!(
                "{nation} already has {max} holders of the {} card",
                args.position
            ),
        );
    } else {
        None
    };
    Ok(Plan::Appoint {
        issuer: entity,
        cost,
        target,
        position: Position {
            kind: args.position,
            city: args.city.clone(),
        },
        replaced,
    })
}

/// DISMISS: `args.target` loses its card.
pub(super) fn decide_dismiss(
    view: &View<'_>,
    entity: Entity,
    general: &General,
    args: &TargetArgs,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (issuer_card, _nation) = authority(view, general, CommandType::Dismiss)?;
    let Some((target, target_general)) = view.general(&args.target) else {
        return reject(
            Reason::UnknownTarget,
            format!("no general \"{}\"", args.target),
        );
    };
    if target_general.nation != general.nation {
        return reject(
            Reason::NoAuthority,
            format!("{} does not serve your nation", args.target),
        );
    }
    let Some(position) = &target_general.position else {
        return reject(
            Reason::InvalidArgs,
            format!("{} holds no position", args.target),
        );
    };
    if !issuer_card.appoints.contains(&position.kind)
        && view.data.positions.get(position.kind).is_some()
    {
        return reject(
            Reason::NoAuthority,
            format!("your card may not dismiss a {}", position.kind.name()),
        );
    }
    Ok(Plan::Dismiss {
        issuer: entity,
        cost,
        target,
    })
}

pub(super) fn enact_appoint(
    world: &mut World,
    issuer: Entity,
    cost: Cost,
    target: Entity,
    position: Position,
    replaced: Option<Entity>,
    events: &mut Vec<(String, EventKind)>,
) {
    pay(world, issuer, cost);
    if let Some(replaced) = replaced {
        set_position(world, replaced, None);
    }
    events.push((
        aggregate("general", &general_id(world, target)),
        EventKind::GeneralAppointed {
            general: general_id(world, target),
            position: position.kind,
            city: position.city.clone(),
            by: general_id(world, issuer),
            replaced: replaced.map(|e| general_id(world, e)),
        },
    ));
    set_position(world, target, Some(position));
}

pub(super) fn enact_dismiss(
    world: &mut World,
    issuer: Entity,
    cost: Cost,
    target: Entity,
    events: &mut Vec<(String, EventKind)>,
) {
    pay(world, issuer, cost);
    let position = world
        .get::<General>(target)
        .and_then(|g| g.position.as_ref().map(|p| p.kind));
    if let Some(position) = position {
        events.push((
            aggregate("general", &general_id(world, target)),
            EventKind::GeneralDismissed {
                general: general_id(world, target),
                position,
                by: general_id(world, issuer),
            },
        ));
    }
    set_position(world, target, None);
}

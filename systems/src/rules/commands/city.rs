//! City work (docs/rules.md#command-table): TRAIN (training up to its maximum), RECRUIT
//! (soldiers paid for by the general's city, up to the troop cap) and BUILD (a city's
//! agriculture, commerce or walls). Each is a timed order; its effect comes when it completes
//! on the timeline.

use bevy_ecs::entity::Entity;
use components::{
    command::{BuildKind, Command, CommandType, Reason, RecruitArgs},
    world::{General, OrderEffect},
};

use super::{Cost, Plan, Rejection, View, authority, reject, timed::timed};
use crate::rules::cards::troop_cap;

/// TRAIN: training below its maximum.
pub(super) fn decide_train(
    view: &View<'_>,
    command: &Command,
    entity: Entity,
    general: &General,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let max = view.data.balance.training.max.clamp(0, 100) as u8;
    if general.training >= max {
        return reject(Reason::InvalidArgs, format!("training is already {max}"));
    }
    Ok(timed(
        view,
        command,
        entity,
        CommandType::Train,
        cost,
        OrderEffect::Train,
    ))
}

/// RECRUIT: soldiers up to the troop cap, paid by the general's city in gold and people.
pub(super) fn decide_recruit(
    view: &View<'_>,
    command: &Command,
    entity: Entity,
    general: &General,
    args: &RecruitArgs,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let Some(nation) = general.nation.as_deref() else {
        return reject(Reason::NoAuthority, "a ronin cannot recruit");
    };
    let amount = args.amount;
    let troop_type = args.troop_type.filter(|t| *t != general.troop_type);
    if let Some(troop_type) = troop_type {
        super::known_troop_type(view, troop_type)?;
        if general.troops > 0 {
            return reject(
                Reason::InvalidArgs,
                format!(
                    "{} leads {} {}: a general leads one troop type, and changes it only \
                     without soldiers",
                    general.id, general.troops, general.troop_type
                ),
            );
        }
    }
    let Some((city_entity, city)) = view.city(&general.city) else {
        return reject(Reason::UnknownTarget, "the general's city is gone");
    };
    if city.owner.as_deref() != Some(nation) {
        return reject(
            Reason::NoAuthority,
            format!(
                "{} does not belong to {nation}: recruit in a city of your own",
                city.id
            ),
        );
    }
    let recruit = &view.data.balance.recruit;
    if i64::from(amount) > recruit.amount_max {
        return reject(
            Reason::InvalidArgs,
            format!("a RECRUIT may ask for at most {}", recruit.amount_max),
        );
    }
    let room = troop_cap(view.data, general).saturating_sub(general.troops);
    let amount = amount.min(room);
    if amount == 0 {
        return reject(
            Reason::InvalidArgs,
            format!("{} is at its troop cap", general.id),
        );
    }
    let gold = (f64::from(amount) * recruit.gold_per_soldier).ceil() as i64;
    let population = (f64::from(amount) * recruit.population_per_soldier).ceil() as u32;
    if city.gold < gold {
        return reject(
            Reason::InsufficientGold,
            format!(
                "{} has {} gold and {amount} soldiers cost {gold}: recruit fewer, or wait for its \
                 commerce to bring more",
                city.id, city.gold
            ),
        );
    }
    if city.population < population {
        return reject(
            Reason::InsufficientPopulation,
            format!(
                "{} has {} people and {amount} soldiers take {population}",
                city.id, city.population
            ),
        );
    }
    let mut plan = timed(
        view,
        command,
        entity,
        CommandType::Recruit,
        cost,
        OrderEffect::Recruit { amount, troop_type },
    );
    if let Plan::Timed { city_pays, .. } = &mut plan {
        *city_pays = Some((city_entity, gold, population));
    }
    Ok(plan)
}

/// BUILD: one step of a city's agriculture, commerce or walls, by its governor or higher.
pub(super) fn decide_build(
    view: &View<'_>,
    command: &Command,
    entity: Entity,
    general: &General,
    kind: BuildKind,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (_, nation) = authority(view, general, CommandType::Build)?;
    if let Some(position) = &general.position
        && let Some(city) = &position.city
        && *city != general.city
    {
        return reject(
            Reason::NoAuthority,
            format!(
                "a {} builds only in the city it governs ({city}), not in {}",
                position.kind, general.city
            ),
        );
    }
    let Some((_, city)) = view.city(&general.city) else {
        return reject(Reason::UnknownTarget, "the general's city is gone");
    };
    if city.owner.as_deref() != Some(nation) {
        return reject(
            Reason::NoAuthority,
            format!("{} does not belong to {nation}", city.id),
        );
    }
    let build = &view.data.balance.build;
    let (current, max) = match kind {
        BuildKind::Agriculture => (city.agriculture, build.agriculture_max),
        BuildKind::Commerce => (city.commerce, build.commerce_max),
        BuildKind::Walls => (city.walls, build.walls_max),
    };
    if i64::from(current) >= max {
        return reject(
            Reason::InvalidArgs,
            format!("{} is at its maximum", city.id),
        );
    }
    Ok(timed(
        view,
        command,
        entity,
        CommandType::Build,
        cost,
        OrderEffect::Build {
            city: city.id.clone(),
            build: kind,
        },
    ))
}

//! A nation's affairs (docs/rules.md#command-table): DECLARE_WAR and MAKE_PEACE change the
//! relations of two nations both ways; SET_TAX sets the nation's tax rate. Only cards that
//! list them may issue them.

use bevy_ecs::{entity::Entity, world::World};
use components::{
    command::{CommandType, NationArgs, Reason, TaxArgs},
    events::{EventKind, aggregate},
    time::GameClock,
    world::{General, Nation, NationStatus, Relation},
};

use super::{Cost, Plan, Rejection, View, authority, pay, reject};
use crate::rules::hostility::relation_between;

/// DECLARE_WAR (`kind`) or MAKE_PEACE with `args.nation`.
pub(super) fn decide_relation(
    view: &View<'_>,
    entity: Entity,
    general: &General,
    kind: CommandType,
    args: &NationArgs,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (_, nation_id) = authority(view, general, kind)?;
    let Some((nation, _)) = view.nation(nation_id) else {
        return reject(Reason::NationDestroyed, "your nation is gone");
    };
    let Some((other, other_nation)) = view.nation(&args.nation) else {
        return reject(
            Reason::UnknownTarget,
            format!("no nation \"{}\"", args.nation),
        );
    };
    if other_nation.status == NationStatus::Destroyed {
        return reject(
            Reason::NationDestroyed,
            format!("{} has been destroyed", args.nation),
        );
    }
    if args.nation == nation_id {
        return reject(Reason::InvalidArgs, "a nation has no relations with itself");
    }
    let current = relation_between(view.world, nation_id, &args.nation);
    let relation = if kind == CommandType::DeclareWar {
        if current == Some(Relation::War) {
            return reject(
                Reason::InvalidArgs,
                format!("already at war with {}", args.nation),
            );
        }
        Relation::War
    } else {
        if current != Some(Relation::War) {
            return reject(Reason::NotAtWar, format!("not at war with {}", args.nation));
        }
        Relation::Peace
    };
    Ok(Plan::Relation {
        issuer: entity,
        cost,
        nation,
        other,
        relation,
    })
}

/// SET_TAX: the nation's tax rate, up to the balance file's maximum.
pub(super) fn decide_tax(
    view: &View<'_>,
    entity: Entity,
    general: &General,
    args: &TaxArgs,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (_, nation_id) = authority(view, general, CommandType::SetTax)?;
    let max = view.data.balance.nation.tax_rate_max.clamp(0, 50) as u8;
    if args.rate > max {
        return reject(
            Reason::InvalidArgs,
            format!("the tax rate may be at most {max}"),
        );
    }
    let Some((nation, _)) = view.nation(nation_id) else {
        return reject(Reason::NationDestroyed, "your nation is gone");
    };
    Ok(Plan::SetTax {
        issuer: entity,
        cost,
        nation,
        rate: args.rate,
    })
}

pub(super) fn enact_relation(
    world: &mut World,
    issuer: Entity,
    cost: Cost,
    nation: Entity,
    other: Entity,
    relation: Relation,
    events: &mut Vec<(String, EventKind)>,
) {
    pay(world, issuer, cost);
    let a = world
        .get::<Nation>(nation)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let b = world
        .get::<Nation>(other)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let now = world.resource::<GameClock>().game_seconds;
    if let Some(mut n) = world.get_mut::<Nation>(nation) {
        n.relations.insert(b.clone(), relation);
        n.relations_since.insert(b.clone(), now);
    }
    if let Some(mut n) = world.get_mut::<Nation>(other) {
        n.relations.insert(a.clone(), relation);
        n.relations_since.insert(a.clone(), now);
    }
    let event = if relation == Relation::War {
        EventKind::WarDeclared {
            nation: a.clone(),
            against: b,
        }
    } else {
        EventKind::PeaceMade {
            nation: a.clone(),
            with: b,
        }
    };
    events.push((aggregate("nation", &a), event));
}

pub(super) fn enact_tax(
    world: &mut World,
    issuer: Entity,
    cost: Cost,
    nation: Entity,
    rate: u8,
    events: &mut Vec<(String, EventKind)>,
) {
    pay(world, issuer, cost);
    let mut id = String::new();
    if let Some(mut n) = world.get_mut::<Nation>(nation) {
        n.tax_rate = rate;
        id = n.id.clone();
    }
    events.push((
        aggregate("nation", &id),
        EventKind::TaxSet { nation: id, rate },
    ));
}

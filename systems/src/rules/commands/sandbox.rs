//! Sandbox edits (docs/sandbox.md): GIVE (troops, gold, rice to a general, city or nation),
//! TELEPORT (a general to a city at once) and CLOCK (stop, start or speed the game clock),
//! for client developers. Only a world created as a sandbox takes them (it holds the
//! [`Sandbox`] resource); they come through the command log like every command, so recovery
//! replays them exactly, and each is told as a `SandboxEdited` event.
//!
//! An edit never breaks what the rules keep true: a general's troops stay within its cap, a
//! garrison within [`GARRISON_MAX`], stores at zero or above; nothing in a battle is touched,
//! and a general is teleported only where a march of its could end without a fight or a
//! capture.

use bevy_ecs::{entity::Entity, world::World};
use components::{
    command::{ClockArgs, Command, GiveArgs, Reason, SandboxEdit, TeleportArgs},
    events::{EventKind, aggregate},
    time::GameClock,
    world::{City, General, GeneralStatus, Nation, NationStatus, Relation, Sandbox, WorldInfo},
};

use super::{Plan, Rejection, View, must_be_idle, reject};
use crate::{
    battle::Battle,
    rules::{
        cards::troop_cap,
        hostility::{is_hostile, relation_between},
        residents::set_city,
    },
};

/// Largest garrison a sandbox GIVE leaves in a city (a thousand battle units).
pub const GARRISON_MAX: u32 = 100_000;

/// What an accepted edit writes, decided in full while reading the World.
#[derive(Debug)]
pub enum SandboxPlan {
    General {
        entity: Entity,
        troops: u32,
    },
    City {
        entity: Entity,
        garrison: u32,
        gold: i64,
        rice: i64,
    },
    Nation {
        entity: Entity,
        gold: i64,
        rice: i64,
    },
    Teleport {
        entity: Entity,
        to: String,
    },
    Clock(Sandbox),
}

impl SandboxPlan {
    /// The general, city and nation it writes, for the rollback.
    pub(super) fn touches(&self) -> (Option<Entity>, Option<Entity>, Option<Entity>) {
        match self {
            SandboxPlan::General { entity, .. } | SandboxPlan::Teleport { entity, .. } => {
                (Some(*entity), None, None)
            }
            SandboxPlan::City { entity, .. } => (None, Some(*entity), None),
            SandboxPlan::Nation { entity, .. } => (None, None, Some(*entity)),
            SandboxPlan::Clock(_) => (None, None, None),
        }
    }
}

fn add(value: i64, delta: Option<i64>) -> i64 {
    value.saturating_add(delta.unwrap_or(0)).max(0)
}

/// Validates an edit against the World.
pub(super) fn decide(view: &View<'_>, edit: &SandboxEdit) -> Result<Plan, Rejection> {
    let Some(sandbox) = view.world.get_resource::<Sandbox>() else {
        return reject(
            Reason::InvalidArgs,
            "this world is not a sandbox: sandbox edits need a world created by serve --sandbox",
        );
    };
    let plan = match edit {
        SandboxEdit::Give(args) => decide_give(view, args)?,
        SandboxEdit::Teleport(args) => decide_teleport(view, args)?,
        SandboxEdit::Clock(args) => decide_clock(sandbox, args),
    };
    Ok(Plan::Sandbox(plan))
}

fn battle_at(view: &View<'_>, city: &str) -> bool {
    view.registry
        .battles
        .values()
        .filter_map(|e| view.world.get::<Battle>(*e))
        .any(|b| b.city == city && b.sim.outcome().is_none())
}

fn decide_give(view: &View<'_>, args: &GiveArgs) -> Result<SandboxPlan, Rejection> {
    if let Some(id) = &args.general {
        let Some((entity, general)) = view.general(id) else {
            return reject(Reason::UnknownGeneral, format!("no general \"{id}\""));
        };
        if general.status == GeneralStatus::InBattle {
            return reject(
                Reason::InBattle,
                format!("{id} is in a battle; its troops are on the field"),
            );
        }
        let cap = i64::from(troop_cap(view.data, general));
        let troops =
            add(i64::from(general.troops), args.troops).min(cap.max(i64::from(general.troops)));
        return Ok(SandboxPlan::General {
            entity,
            troops: troops.clamp(0, i64::from(u32::MAX)) as u32,
        });
    }
    if let Some(id) = &args.city {
        let Some((entity, city)) = view.city(id) else {
            return reject(Reason::UnknownTarget, format!("no city \"{id}\""));
        };
        if args.troops.is_some() && battle_at(view, id) {
            return reject(
                Reason::InBattle,
                format!("a battle is under way at {id}; its garrison is on the field"),
            );
        }
        let garrison = add(i64::from(city.garrison), args.troops)
            .min(i64::from(GARRISON_MAX.max(city.garrison)));
        return Ok(SandboxPlan::City {
            entity,
            garrison: garrison as u32,
            gold: add(city.gold, args.gold),
            rice: add(city.rice, args.rice),
        });
    }
    let id = args.nation.as_deref().unwrap_or_default();
    let Some((entity, nation)) = view.nation(id) else {
        return reject(Reason::UnknownTarget, format!("no nation \"{id}\""));
    };
    if nation.status == NationStatus::Destroyed {
        return reject(Reason::NationDestroyed, format!("{id} has been destroyed"));
    }
    Ok(SandboxPlan::Nation {
        entity,
        gold: add(nation.gold, args.gold),
        rice: add(nation.rice, args.rice),
    })
}

fn decide_teleport(view: &View<'_>, args: &TeleportArgs) -> Result<SandboxPlan, Rejection> {
    let Some((entity, general)) = view.general(&args.general) else {
        return reject(
            Reason::UnknownGeneral,
            format!("no general \"{}\"", args.general),
        );
    };
    must_be_idle(general)?;
    let Some((_, city)) = view.city(&args.to) else {
        return reject(Reason::UnknownTarget, format!("no city \"{}\"", args.to));
    };
    if general.city == args.to {
        return reject(
            Reason::InvalidArgs,
            format!("{} is in {} already", args.general, args.to),
        );
    }
    if is_hostile(view.world, general.nation.as_deref(), city) || battle_at(view, &args.to) {
        return reject(
            Reason::InvalidArgs,
            format!(
                "{} would have to fight to stand in {}: teleport it next to the city and MOVE",
                args.general, args.to
            ),
        );
    }
    // Where a march may end: a ronin anywhere it need not fight; a nation's general in its
    // nation's cities and its allies' (an empty neutral city is taken by walking in: MOVE).
    let may_stand = match (&city.owner, general.nation.as_deref()) {
        (_, None) => true,
        (Some(owner), Some(nation)) => {
            owner == nation
                || relation_between(view.world, nation, owner) == Some(Relation::Alliance)
        }
        (None, Some(_)) => false,
    };
    if !may_stand {
        return reject(
            Reason::InvalidArgs,
            format!(
                "{} may stand only in its nation's cities and its allies': a march would halt before {} or take it",
                args.general, args.to
            ),
        );
    }
    Ok(SandboxPlan::Teleport {
        entity,
        to: args.to.clone(),
    })
}

fn decide_clock(sandbox: &Sandbox, args: &ClockArgs) -> SandboxPlan {
    SandboxPlan::Clock(Sandbox {
        paused: args.paused.unwrap_or(sandbox.paused),
        speed: args.speed.or(sandbox.speed),
    })
}

/// What a GIVE leaves the target holding, or a CLOCK leaves the clock at.
#[derive(Default)]
struct After {
    troops: Option<u32>,
    gold: Option<i64>,
    rice: Option<i64>,
    paused: Option<bool>,
    speed: Option<f64>,
}

/// Applies an accepted edit and tells it.
pub(super) fn enact(
    world: &mut World,
    command: &Command,
    edit: &SandboxEdit,
    plan: SandboxPlan,
    events: &mut Vec<(String, EventKind)>,
) {
    let mut after = After::default();
    let about = match plan {
        SandboxPlan::General { entity, troops } => {
            let mut id = String::new();
            if let Some(mut general) = world.get_mut::<General>(entity) {
                general.troops = troops;
                id = general.id.clone();
            }
            after.troops = Some(troops);
            aggregate("general", &id)
        }
        SandboxPlan::City {
            entity,
            garrison,
            gold,
            rice,
        } => {
            let mut id = String::new();
            if let Some(mut city) = world.get_mut::<City>(entity) {
                city.garrison = garrison;
                city.gold = gold;
                city.rice = rice;
                id = city.id.clone();
            }
            (after.troops, after.gold, after.rice) = (Some(garrison), Some(gold), Some(rice));
            aggregate("city", &id)
        }
        SandboxPlan::Nation { entity, gold, rice } => {
            let mut id = String::new();
            if let Some(mut nation) = world.get_mut::<Nation>(entity) {
                nation.gold = gold;
                nation.rice = rice;
                id = nation.id.clone();
            }
            (after.gold, after.rice) = (Some(gold), Some(rice));
            aggregate("nation", &id)
        }
        SandboxPlan::Teleport { entity, to } => {
            set_city(world, entity, &to);
            let id = world
                .get::<General>(entity)
                .map(|g| g.id.clone())
                .unwrap_or_default();
            aggregate("general", &id)
        }
        SandboxPlan::Clock(state) => {
            world.insert_resource(state);
            let mut clock = world.resource_mut::<GameClock>();
            if let Some(speed) = state.speed {
                clock.speed = speed;
            }
            (after.paused, after.speed) = (Some(state.paused), Some(clock.speed));
            let name = world.resource::<WorldInfo>().name.clone();
            aggregate("world", &name)
        }
    };
    events.push((
        about,
        EventKind::SandboxEdited {
            order_id: command.id.clone(),
            player: command.issuer.player().unwrap_or_default().to_string(),
            edit: edit.clone(),
            troops: after.troops,
            gold: after.gold,
            rice: after.rice,
            paused: after.paused,
            speed: after.speed,
        },
    ));
}

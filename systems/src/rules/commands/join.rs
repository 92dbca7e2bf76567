//! JOIN (docs/rules.md#command-table): a player's general enters the world, in a nation's
//! capital or as a ronin in a neutral city, with stats derived from the player and the
//! command (so a replay makes the same general).

use bevy_ecs::world::World;
use components::{
    command::{Command, Issuer, JoinArgs, Reason},
    events::{EventKind, aggregate},
    world::{City, General, GeneralStatus, MilliCp, NationStatus, Registry, Stats},
};

use super::{Plan, Rejection, View, reject};
use crate::{
    rules::{presence::Presence, residents::add_general},
    spawn::cp_maxima,
};

/// JOIN: the player's general `g-{player}`, in the nation's capital or, for a ronin, the first
/// neutral city.
pub(super) fn decide(
    view: &View<'_>,
    command: &Command,
    args: &JoinArgs,
) -> Result<Plan, Rejection> {
    let Issuer::Player(player) = &command.issuer else {
        return reject(Reason::InvalidArgs, "only a player joins");
    };
    let id = format!("g-{player}");
    if view.registry.players.contains_key(player) || view.registry.generals.contains_key(&id) {
        return reject(Reason::AlreadyJoined, "you already have a general");
    }
    if !components::ids::is_valid_id(&id) {
        return reject(Reason::InvalidArgs, "this player id cannot name a general");
    }
    let troop_type = args.troop_type.unwrap_or(view.data.balance.join.troop_type);
    super::known_troop_type(view, troop_type)?;
    let (nation, city) = match &args.nation {
        Some(nation_id) => {
            let Some((_, nation)) = view.nation(nation_id) else {
                return reject(Reason::UnknownTarget, format!("no nation \"{nation_id}\""));
            };
            let Some(capital) = nation
                .capital
                .clone()
                .filter(|_| nation.status == NationStatus::Active)
            else {
                return reject(
                    Reason::NationDestroyed,
                    format!("{nation_id} has been destroyed"),
                );
            };
            (Some(nation_id.clone()), capital)
        }
        None => {
            // The first neutral city by id, else the first city by id (one pass: every
            // JOIN without a nation comes here).
            let mut neutral: Option<&City> = None;
            let mut first: Option<&City> = None;
            for city in view
                .registry
                .cities
                .values()
                .filter_map(|e| view.world.get::<City>(*e))
            {
                let lower = |best: Option<&City>| best.is_none_or(|b| city.id < b.id);
                if lower(first) {
                    first = Some(city);
                }
                if city.owner.is_none() && lower(neutral) {
                    neutral = Some(city);
                }
            }
            let Some(city) = neutral.or(first) else {
                return reject(Reason::NoPath, "the world has no city to join in");
            };
            (None, city.id.clone())
        }
    };
    let join = &view.data.balance.join;
    let seed = components::command::body_hash(Some(player), &command.body);
    let span = (join.stat_max - join.stat_min).max(0) as u64 + 1;
    let stat =
        |i: u32| (join.stat_min as u64 + (seed.rotate_left(i * 13) % span)).clamp(1, 100) as u8;
    let stats = Stats {
        leadership: stat(0),
        strength: stat(1),
        intelligence: stat(2),
        politics: stat(3),
        charm: stat(4),
    };
    let (pcp_max, mcp_max) = cp_maxima(&stats, None, &view.data.balance, &view.data.positions);
    Ok(Plan::Join {
        general: Box::new(General {
            id,
            name: args.name.trim().to_string(),
            owner: Some(player.clone()),
            nation,
            city,
            stats,
            troops: join.troops.clamp(0, u32::MAX as i64) as u32,
            troop_type,
            training: join.training.clamp(0, 100) as u8,
            morale: join.morale.clamp(0, 100) as u8,
            pcp: MilliCp::from_points(pcp_max),
            pcp_max: MilliCp::from_points(pcp_max),
            mcp: MilliCp::from_points(mcp_max),
            mcp_max: MilliCp::from_points(mcp_max),
            position: None,
            status: GeneralStatus::Idle,
            order: None,
            march: None,
            protected: false,
            ai_delegate: false,
        }),
    })
}

/// Spawns the joined general; returns its id.
pub(super) fn enact(
    world: &mut World,
    general: General,
    now: i64,
    events: &mut Vec<(String, EventKind)>,
) -> String {
    let player = general.owner.clone().unwrap_or_default();
    let id = general.id.clone();
    events.push((
        aggregate("general", &id),
        EventKind::GeneralJoined {
            general: id.clone(),
            player: player.clone(),
            nation: general.nation.clone(),
            city: general.city.clone(),
        },
    ));
    let entity = world.spawn(general).id();
    add_general(world, entity);
    let mut registry = world.resource_mut::<Registry>();
    registry.generals.insert(id.clone(), entity);
    registry.players.insert(player.clone(), id.clone());
    world.resource_mut::<Presence>().seen(&player, now);
    id
}

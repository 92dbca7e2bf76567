//! Applying commands (SPEC 2.5): the intake system drains the command bus, and
//! [`apply_command`] validates one command against the World and either rejects it with a
//! reason code or accepts it: its cost is paid and its order starts, in one change.
//!
//! Validation ([`decide`]) only reads the World and produces a [`Plan`]; only
//! [`enact`] writes, and it does nothing that can fail on external data. A fault while
//! deciding is caught and rejects the command with `internal`, leaving the World unchanged.
//! Players and the AI go through the same path, so the AI can never do what a player could
//! not.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use components::{
    command::{
        AppointArgs, BuildKind, Command, CommandBody, CommandType, Inbound, Issuer, JoinArgs,
        Reason,
    },
    data::PositionCard,
    events::{EventKind, aggregate},
    read_model::{OrderStatus, OrderView},
    stream::EntryId,
    time::GameClock,
    world::{
        ActiveOrder, City, General, GeneralStatus, March, MilliCp, Nation, NationStatus,
        OrderEffect, Position, PositionKind, Registry, Relation, Stats, TroopType,
    },
};
use crossbeam_channel::Receiver;
use metrics::{counter, gauge};
use tracing::error;

use crate::{
    assets::{Data, GameData},
    event_log::Outbox,
    rules::{
        orders::{OrderRecord, Orders, Revision, Timeline},
        paths::{shortest_path, travel_seconds},
        presence::Presence,
        relation_between,
        residents::{add_general, generals_in},
    },
    spawn::cp_maxima,
};

/// The command bus as the World sees it: drained by the intake schedule, never waited on.
#[derive(Resource)]
pub struct CommandInbox {
    pub rx: Option<Receiver<Inbound>>,
    /// Most messages applied per intake tick (SPEC 2.5); the rest wait, in order.
    pub max_per_tick: usize,
}

impl Default for CommandInbox {
    fn default() -> Self {
        CommandInbox {
            rx: None,
            max_per_tick: 20_000,
        }
    }
}

/// The log position of the last command the World applied (0 before the first).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedSeq(pub u64);

/// The stream entry of the last command the World applied (Redis mode; none before the
/// first).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedEntry(pub Option<EntryId>);

/// Intake: applies up to the per-tick cap of waiting commands, in bus order, which is log
/// order (the journal sends them in the order it logged them); a command at or below the
/// applied position is skipped.
pub fn apply_inbound(world: &mut World) {
    let Some(rx) = world.resource::<CommandInbox>().rx.clone() else {
        return;
    };
    let max = world.resource::<CommandInbox>().max_per_tick.max(1);
    gauge!("tianxia_command_queue_depth").set(rx.len() as f64);
    for _ in 0..max {
        let Ok(message) = rx.try_recv() else { break };
        match message {
            Inbound::Seen { player } => {
                let now = world.resource::<GameClock>().game_seconds;
                world.resource_mut::<Presence>().seen(&player, now);
            }
            Inbound::Command(command) => {
                apply_logged(world, &command);
            }
        }
    }
}

/// Applies a command from the log (or the bus): once only — a command at or below the
/// applied position (replayed from the log at recovery) is skipped and `false` returned —
/// counting as its player's activity, and moving the applied position to it.
pub fn apply_logged(world: &mut World, command: &Command) -> bool {
    if command.seq != 0 && command.seq <= world.resource::<AppliedSeq>().0 {
        return false;
    }
    let applied_entry = world.resource::<AppliedEntry>().0;
    if let Some(entry) = command.entry
        && applied_entry.is_some_and(|applied| entry <= applied)
    {
        return false;
    }
    if let Some(player) = command.issuer.player() {
        let now = world.resource::<GameClock>().game_seconds;
        world.resource_mut::<Presence>().seen(player, now);
    }
    apply_command(world, command);
    let mut applied = world.resource_mut::<AppliedSeq>();
    applied.0 = applied.0.max(command.seq);
    if command.entry.is_some() {
        let mut applied = world.resource_mut::<AppliedEntry>();
        applied.0 = applied.0.max(command.entry);
    }
    true
}

/// Applies everything still waiting in the inbox, whatever the per-tick cap (a graceful
/// shutdown, so the final checkpoint holds every command the journal handed over).
pub fn drain_inbox(world: &mut World) {
    while world
        .resource::<CommandInbox>()
        .rx
        .as_ref()
        .is_some_and(|rx| !rx.is_empty())
    {
        apply_inbound(world);
    }
}

/// What applying a command came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Accepted,
    Rejected(Reason),
    /// The same id with the same body was applied before: nothing changed.
    Repeated,
}

/// A rejection: its code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

fn reject<T>(reason: Reason, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason,
        message: message.into(),
    })
}

/// Command points to pay, in thousandths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub pcp: u32,
    pub mcp: u32,
}

impl Cost {
    /// What a command of this type costs under `data` (JOIN: nothing).
    pub fn of(data: &GameData, command: CommandType) -> Cost {
        data.commands
            .get(command)
            .map_or(Cost::default(), |s| Cost {
                pcp: MilliCp::from_points(s.pcp.clamp(0, u32::MAX as i64) as u32).0,
                mcp: MilliCp::from_points(s.mcp.clamp(0, u32::MAX as i64) as u32).0,
            })
    }

    pub fn affordable_by(&self, general: &General) -> bool {
        general.pcp.0 >= self.pcp && general.mcp.0 >= self.mcp
    }
}

/// What an accepted command changes, decided while reading the World.
#[derive(Debug)]
pub enum Plan {
    Join {
        general: Box<General>,
    },
    Timed {
        general: Entity,
        cost: Cost,
        order: ActiveOrder,
        march: Option<March>,
        /// Gold and population the city pays (RECRUIT).
        city_pays: Option<(Entity, i64, u32)>,
    },
    Appoint {
        issuer: Entity,
        cost: Cost,
        target: Entity,
        position: Position,
        /// Who loses the card to the target.
        replaced: Option<Entity>,
    },
    Dismiss {
        issuer: Entity,
        cost: Cost,
        target: Entity,
    },
    Relation {
        issuer: Entity,
        cost: Cost,
        nation: Entity,
        other: Entity,
        relation: Relation,
    },
    SetTax {
        issuer: Entity,
        cost: Cost,
        nation: Entity,
        rate: u8,
    },
}

/// Validates and applies one command (SPEC 2.5), recording its outcome in the issuing
/// player's window and telling it as an event.
pub fn apply_command(world: &mut World, command: &Command) -> Applied {
    let hash = command.body_hash();
    if let Some(player) = command.issuer.player()
        && let Some(existing) = world.resource::<Orders>().get(player, &command.id)
    {
        if existing.body_hash == hash {
            counter!("tianxia_commands_total", "result" => "repeated").increment(1);
            return Applied::Repeated;
        }
        let rejection = Rejection {
            reason: Reason::IdConflict,
            message: format!(
                "order id \"{}\" was already used for another command",
                command.id
            ),
        };
        // The window keeps the first command's record: the conflict is only told.
        emit_rejected(world, command, &rejection);
        counter!("tianxia_commands_total", "result" => "rejected").increment(1);
        return Applied::Rejected(Reason::IdConflict);
    }
    let decided = catch_unwind(AssertUnwindSafe(|| decide(world, command)));
    let plan = match decided {
        Ok(Ok(plan)) => plan,
        Ok(Err(rejection)) => return rejected(world, command, hash, rejection),
        Err(_) => {
            error!(order_id = %command.id, command = command.body.command_type().name(),
                "fault while applying a command; it is rejected and the World is unchanged");
            let rejection = Rejection {
                reason: Reason::Internal,
                message: "the server failed to apply this command".into(),
            };
            return rejected(world, command, hash, rejection);
        }
    };
    enact(world, command, hash, plan);
    counter!("tianxia_commands_total", "result" => "accepted").increment(1);
    Applied::Accepted
}

fn emit_rejected(world: &mut World, command: &Command, rejection: &Rejection) {
    let now = world.resource::<GameClock>().game_seconds;
    let aggregate_id = match (&command.general, command.issuer.player()) {
        (Some(general), _) => aggregate("general", general),
        (None, Some(player)) => aggregate("player", player),
        (None, None) => aggregate(
            "world",
            &world.resource::<components::world::WorldInfo>().name,
        ),
    };
    world.resource_mut::<Outbox>().emit(
        now,
        aggregate_id,
        EventKind::CommandRejected {
            order_id: command.id.clone(),
            player: command.issuer.player().map(str::to_string),
            general: command.general.clone(),
            command: command.body.command_type(),
            reason: rejection.reason,
            message: rejection.message.clone(),
        },
    );
}

fn rejected(world: &mut World, command: &Command, hash: u64, rejection: Rejection) -> Applied {
    if let Some(player) = command.issuer.player() {
        let revision = world.resource::<Revision>().0;
        let record = OrderRecord {
            view: OrderView {
                order_id: command.id.clone(),
                command_type: command.body.command_type().name().to_string(),
                general: command.general.clone(),
                status: OrderStatus::Rejected,
                reason: Some(rejection.reason.code().to_string()),
                revision,
                accepted_at: None,
                completes_at: None,
                general_id: None,
                message: Some(rejection.message.clone()),
            },
            body_hash: hash,
        };
        world.resource_mut::<Orders>().put(player, record);
    }
    emit_rejected(world, command, &rejection);
    counter!("tianxia_commands_total", "result" => "rejected").increment(1);
    Applied::Rejected(rejection.reason)
}

/// Reads of the World a decision needs.
struct View<'w> {
    world: &'w World,
    registry: &'w Registry,
    data: &'w GameData,
    now: i64,
}

impl<'w> View<'w> {
    fn new(world: &'w World) -> Self {
        View {
            world,
            registry: world.resource::<Registry>(),
            data: &world.resource::<Data>().0,
            now: world.resource::<GameClock>().game_seconds,
        }
    }

    fn general(&self, id: &str) -> Option<(Entity, &'w General)> {
        let entity = *self.registry.generals.get(id)?;
        Some((entity, self.world.get::<General>(entity)?))
    }

    fn city(&self, id: &str) -> Option<(Entity, &'w City)> {
        let entity = *self.registry.cities.get(id)?;
        Some((entity, self.world.get::<City>(entity)?))
    }

    fn nation(&self, id: &str) -> Option<(Entity, &'w Nation)> {
        let entity = *self.registry.nations.get(id)?;
        Some((entity, self.world.get::<Nation>(entity)?))
    }

    fn card(&self, general: &General) -> Option<&'w PositionCard> {
        general
            .position
            .as_ref()
            .map(|p| self.data.positions.get(p.kind))
    }

    fn cost(&self, command: CommandType) -> Cost {
        Cost::of(self.data, command)
    }

    fn duration(&self, command: CommandType) -> i64 {
        self.data
            .commands
            .get(command)
            .map_or(0, |s| s.duration.max(0))
    }

    /// Generals of `nation` (a scan; used by the rarer state commands).
    fn generals_of(&self, nation: &str) -> Vec<(Entity, &'w General)> {
        let mut found: Vec<(Entity, &General)> = self
            .registry
            .generals
            .values()
            .filter_map(|e| self.world.get::<General>(*e).map(|g| (*e, g)))
            .filter(|(_, g)| g.nation.as_deref() == Some(nation))
            .collect();
        found.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        found
    }
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

/// Validates a command against the World without changing it.
pub fn decide(world: &World, command: &Command) -> Result<Plan, Rejection> {
    let view = View::new(world);
    if let CommandBody::Join(args) = &command.body {
        return decide_join(&view, command, args);
    }
    let Some(general_id) = &command.general else {
        return reject(Reason::UnknownGeneral, "this command needs a general");
    };
    let Some((entity, general)) = view.general(general_id) else {
        return reject(
            Reason::UnknownGeneral,
            format!("no general \"{general_id}\""),
        );
    };
    match &command.issuer {
        Issuer::Player(player) if general.owner.as_deref() != Some(player.as_str()) => {
            return reject(
                Reason::NotOwner,
                format!("general \"{general_id}\" is not yours"),
            );
        }
        Issuer::Ai if general.owner.is_some() && !general.ai_delegate => {
            return reject(
                Reason::NotOwner,
                format!("general \"{general_id}\" is commanded by its player"),
            );
        }
        _ => {}
    }
    let kind = command.body.command_type();
    if super::orders::is_timed(kind) {
        match general.status {
            GeneralStatus::Idle if general.order.is_some() || general.march.is_some() => {
                return reject(
                    Reason::Busy,
                    format!("{general_id} is carrying out another order"),
                );
            }
            GeneralStatus::Idle => {}
            GeneralStatus::InBattle => {
                return reject(Reason::InBattle, format!("{general_id} is in a battle"));
            }
            GeneralStatus::Busy | GeneralStatus::Marching => {
                return reject(
                    Reason::Busy,
                    format!("{general_id} is carrying out another order"),
                );
            }
        }
    }
    let cost = view.cost(kind);
    let plan = match &command.body {
        CommandBody::Join(_) => unreachable!("handled above"),
        CommandBody::Move(args) => decide_move(&view, command, entity, general, &args.to, cost)?,
        CommandBody::Train(_) => {
            let max = view.data.balance.training.max.clamp(0, 100) as u8;
            if general.training >= max {
                return reject(Reason::InvalidArgs, format!("training is already {max}"));
            }
            timed(&view, command, entity, kind, cost, OrderEffect::Train)
        }
        CommandBody::Recruit(args) => {
            decide_recruit(&view, command, entity, general, args.amount, cost)?
        }
        CommandBody::Build(args) => decide_build(&view, command, entity, general, args.kind, cost)?,
        CommandBody::Appoint(args) => decide_appoint(&view, entity, general, args, cost)?,
        CommandBody::Dismiss(args) => {
            let (issuer_card, _nation) = authority(&view, general, kind)?;
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
            if !issuer_card.appoints.contains(&position.kind) {
                return reject(
                    Reason::NoAuthority,
                    format!("your card may not dismiss a {}", position.kind.name()),
                );
            }
            Plan::Dismiss {
                issuer: entity,
                cost,
                target,
            }
        }
        CommandBody::DeclareWar(args) | CommandBody::MakePeace(args) => {
            let (_, nation_id) = authority(&view, general, kind)?;
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
            let current = relation_between(world, nation_id, &args.nation);
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
            Plan::Relation {
                issuer: entity,
                cost,
                nation,
                other,
                relation,
            }
        }
        CommandBody::SetTax(args) => {
            let (_, nation_id) = authority(&view, general, kind)?;
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
            Plan::SetTax {
                issuer: entity,
                cost,
                nation,
                rate: args.rate,
            }
        }
    };
    if general.pcp.0 < cost.pcp {
        return reject(
            Reason::InsufficientPcp,
            format!(
                "{} needs {} PCP, {general_id} has {}",
                kind.name(),
                cost.pcp / MilliCp::PER_POINT,
                general.pcp.points()
            ),
        );
    }
    if general.mcp.0 < cost.mcp {
        return reject(
            Reason::InsufficientMcp,
            format!(
                "{} needs {} MCP, {general_id} has {}",
                kind.name(),
                cost.mcp / MilliCp::PER_POINT,
                general.mcp.points()
            ),
        );
    }
    Ok(plan)
}

/// The issuer's card if it may issue `kind`, and its nation.
fn authority<'w>(
    view: &View<'w>,
    general: &'w General,
    kind: CommandType,
) -> Result<(&'w PositionCard, &'w str), Rejection> {
    let Some(nation) = general.nation.as_deref() else {
        return reject(Reason::NoAuthority, "a ronin serves no nation");
    };
    match view.card(general) {
        Some(card) if card.may_issue.contains(&kind) => Ok((card, nation)),
        _ => reject(
            Reason::NoAuthority,
            format!("{}'s position may not issue {}", general.id, kind.name()),
        ),
    }
}

fn timed(
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

fn decide_join(view: &View<'_>, command: &Command, args: &JoinArgs) -> Result<Plan, Rejection> {
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
            troop_type: args.troop_type.unwrap_or(TroopType::Infantry),
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

fn decide_move(
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

/// The most troops `general` may have.
pub fn troop_cap(data: &GameData, general: &General) -> u32 {
    let multiplier = general
        .position
        .as_ref()
        .map_or(1.0, |p| data.positions.get(p.kind).recruit_cap_multiplier);
    let cap = f64::from(general.stats.leadership)
        * data.balance.recruit.troops_per_leadership as f64
        * multiplier;
    cap.clamp(0.0, f64::from(u32::MAX)) as u32
}

fn decide_recruit(
    view: &View<'_>,
    command: &Command,
    entity: Entity,
    general: &General,
    amount: u32,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let Some(nation) = general.nation.as_deref() else {
        return reject(Reason::NoAuthority, "a ronin cannot recruit");
    };
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
    if city.gold < gold || city.population < population {
        return reject(
            Reason::InvalidArgs,
            format!(
                "{} cannot pay for {amount} soldiers ({gold} gold, {population} people)",
                city.id
            ),
        );
    }
    let mut plan = timed(
        view,
        command,
        entity,
        CommandType::Recruit,
        cost,
        OrderEffect::Recruit { amount },
    );
    if let Plan::Timed { city_pays, .. } = &mut plan {
        *city_pays = Some((city_entity, gold, population));
    }
    Ok(plan)
}

fn decide_build(
    view: &View<'_>,
    command: &Command,
    entity: Entity,
    general: &General,
    kind: BuildKind,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (_, nation) = authority(view, general, CommandType::Build)?;
    if let Some(position) = &general.position
        && position.kind == PositionKind::Governor
        && position.city.as_deref() != Some(general.city.as_str())
    {
        return reject(
            Reason::NoAuthority,
            format!(
                "a governor builds only in the city it governs, not in {}",
                general.city
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

fn decide_appoint(
    view: &View<'_>,
    entity: Entity,
    general: &General,
    args: &AppointArgs,
    cost: Cost,
) -> Result<Plan, Rejection> {
    let (card, nation) = authority(view, general, CommandType::Appoint)?;
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
    if let Some(current) = &target_general.position
        && !card.appoints.contains(&current.kind)
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
    let replaced = match args.position {
        PositionKind::CorpsCommander => {
            let max = view.data.balance.nation.corps_commanders_max.max(0) as usize;
            if holders.len() >= max {
                return reject(
                    Reason::InvalidArgs,
                    format!("{nation} already has {max} corps commanders"),
                );
            }
            None
        }
        _ => holders.first().map(|(e, _)| *e),
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

fn pay(world: &mut World, general: Entity, cost: Cost) {
    if let Some(mut general) = world.get_mut::<General>(general) {
        general.pcp.0 = general.pcp.0.saturating_sub(cost.pcp);
        general.mcp.0 = general.mcp.0.saturating_sub(cost.mcp);
    }
}

/// Gives `entity` a card (or none) and recomputes its command-point maxima.
pub fn set_position(world: &mut World, entity: Entity, position: Option<Position>) {
    let data = world.resource::<Data>().0.clone();
    if let Some(mut general) = world.get_mut::<General>(entity) {
        let (pcp_max, mcp_max) = cp_maxima(
            &general.stats,
            position.as_ref().map(|p| p.kind),
            &data.balance,
            &data.positions,
        );
        general.position = position;
        general.pcp_max = MilliCp::from_points(pcp_max);
        general.mcp_max = MilliCp::from_points(mcp_max);
        general.pcp = general.pcp.min(general.pcp_max);
        general.mcp = general.mcp.min(general.mcp_max);
    }
}

fn general_id(world: &World, entity: Entity) -> String {
    world
        .get::<General>(entity)
        .map(|g| g.id.clone())
        .unwrap_or_default()
}

/// Applies an accepted command's plan.
fn enact(world: &mut World, command: &Command, hash: u64, plan: Plan) {
    let now = world.resource::<GameClock>().game_seconds;
    let revision = world.resource::<Revision>().0;
    let kind = command.body.command_type();
    let mut record = OrderView {
        order_id: command.id.clone(),
        command_type: kind.name().to_string(),
        general: command.general.clone(),
        status: OrderStatus::Completed,
        reason: None,
        revision,
        accepted_at: Some(now),
        completes_at: Some(now),
        general_id: None,
        message: None,
    };
    let mut events: Vec<(String, EventKind)> = Vec::new();
    let actor = command.general.clone().map(|g| aggregate("general", &g));
    match plan {
        Plan::Join { general } => {
            let player = general.owner.clone().unwrap_or_default();
            let id = general.id.clone();
            record.general_id = Some(id.clone());
            events.push((
                aggregate("general", &id),
                EventKind::GeneralJoined {
                    general: id.clone(),
                    player: player.clone(),
                    nation: general.nation.clone(),
                    city: general.city.clone(),
                },
            ));
            let entity = world.spawn(*general).id();
            add_general(world, entity);
            let mut registry = world.resource_mut::<Registry>();
            registry.generals.insert(id.clone(), entity);
            registry.players.insert(player.clone(), id);
            world.resource_mut::<Presence>().seen(&player, now);
        }
        Plan::Timed {
            general,
            cost,
            order,
            march,
            city_pays,
        } => {
            pay(world, general, cost);
            if let Some((city, gold, population)) = city_pays
                && let Some(mut city) = world.get_mut::<City>(city)
            {
                city.gold -= gold;
                city.population = city.population.saturating_sub(population);
                let city = city.id.clone();
                if let OrderEffect::Recruit { amount } = order.effect {
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
            record.status = OrderStatus::Accepted;
            record.completes_at = Some(order.completes_at);
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
        Plan::Appoint {
            issuer,
            cost,
            target,
            position,
            replaced,
        } => {
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
        Plan::Dismiss {
            issuer,
            cost,
            target,
        } => {
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
        Plan::Relation {
            issuer,
            cost,
            nation,
            other,
            relation,
        } => {
            pay(world, issuer, cost);
            let a = world
                .get::<Nation>(nation)
                .map(|n| n.id.clone())
                .unwrap_or_default();
            let b = world
                .get::<Nation>(other)
                .map(|n| n.id.clone())
                .unwrap_or_default();
            if let Some(mut n) = world.get_mut::<Nation>(nation) {
                n.relations.insert(b.clone(), relation);
            }
            if let Some(mut n) = world.get_mut::<Nation>(other) {
                n.relations.insert(a.clone(), relation);
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
        Plan::SetTax {
            issuer,
            cost,
            nation,
            rate,
        } => {
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
    }
    let finished = record.status.is_finished();
    if let Some(player) = command.issuer.player() {
        world.resource_mut::<Orders>().put(
            player,
            OrderRecord {
                view: record.clone(),
                body_hash: hash,
            },
        );
    }
    let aggregate_id = actor
        .or_else(|| record.general_id.as_ref().map(|g| aggregate("general", g)))
        .unwrap_or_else(|| aggregate("world", ""));
    let player = command.issuer.player().map(str::to_string);
    let mut outbox = world.resource_mut::<Outbox>();
    outbox.emit(
        now,
        aggregate_id.clone(),
        EventKind::CommandAccepted {
            order_id: command.id.clone(),
            player: player.clone(),
            general: command.general.clone().or(record.general_id.clone()),
            command: kind,
        },
    );
    for (aggregate_id, event) in events {
        outbox.emit(now, aggregate_id, event);
    }
    if finished {
        outbox.emit(
            now,
            aggregate_id,
            EventKind::OrderCompleted {
                order_id: command.id.clone(),
                player,
                general: command.general.clone().or(record.general_id),
                command: kind,
            },
        );
    }
}

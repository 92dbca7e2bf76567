//! Applying commands (docs/rules.md#commands-and-orders). [`apply_command`] validates one
//! command against the World and either rejects it with a reason code or accepts it: its
//! cost is paid and its order starts, in one change; a repeated id with the same body is the
//! recorded answer (docs/rules.md#order-ids-and-idempotency).
//!
//! Validation ([`decide`]) only reads the World and produces a [`Plan`]; only [`enact`]
//! writes, and it does nothing that can fail on external data. Still, a fault anywhere in
//! applying a command is contained (docs/rules.md#faults): a panic while deciding, or while
//! enacting (after [`rollback::Rollback`] has put back everything the plan wrote), rejects
//! the command with `internal` and leaves the World as it was. Players and the AI go through
//! the same path, so the AI can never do what a player could not.
//!
//! One file per command group, each deciding its commands: [`join`] (JOIN), [`march`] (MOVE),
//! [`city`] (TRAIN, RECRUIT, BUILD), [`court`] (APPOINT, DISMISS), [`nation`] (DECLARE_WAR,
//! MAKE_PEACE, SET_TAX), [`sandbox`] (the edits of a sandbox world); each enacts its own,
//! except the timed orders MOVE and city work, which [`timed`] starts alike. Intake (draining the bus) is [`crate::rules::intake`].

pub mod city;
pub mod court;
pub mod join;
pub mod march;
pub mod nation;
mod rollback;
pub mod sandbox;
pub mod timed;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bevy_ecs::{entity::Entity, world::World};
use components::{
    command::{Command, CommandBody, CommandType, Issuer, Reason},
    data::PositionCard,
    events::{EventKind, aggregate},
    name::TroopType,
    read_model::{OrderRecord, OrderStatus, OrderView},
    time::GameClock,
    world::{
        ActiveOrder, City, General, GeneralStatus, March, MilliCp, Nation, Position, Registry,
        Relation,
    },
};
use metrics::counter;
use tracing::error;

use crate::{
    assets::{Data, GameData},
    event_log::Outbox,
    rules::orders::{Incarnation, Orders, is_timed},
};

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

/// What an accepted command changes, decided while reading the World. Each group's file
/// decides its variants and enacts them; timed orders (MOVE and city work) share one.
#[derive(Debug)]
pub enum Plan {
    /// [`join`].
    Join { general: Box<General> },
    /// A timed order: MOVE ([`march`]), TRAIN, RECRUIT, BUILD ([`city`]).
    Timed {
        general: Entity,
        cost: Cost,
        order: ActiveOrder,
        march: Option<March>,
        /// Gold and population the city pays (RECRUIT).
        city_pays: Option<(Entity, i64, u32)>,
    },
    /// [`court`].
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
    /// [`nation`].
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
    /// [`sandbox`].
    Sandbox(sandbox::SandboxPlan),
}

/// Validates and applies one command, recording its outcome in the issuing
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
    let fault = |world: &mut World, stage: &str| {
        error!(order_id = %command.id, command = command.body.command_type().name(), stage,
            "fault while applying a command; it is rejected and the World is unchanged");
        let rejection = Rejection {
            reason: Reason::Internal,
            message: "the server failed to apply this command".into(),
        };
        rejected(world, command, hash, rejection)
    };
    let decided = catch_unwind(AssertUnwindSafe(|| decide(world, command)));
    let plan = match decided {
        Ok(Ok(plan)) => plan,
        Ok(Err(rejection)) => return rejected(world, command, hash, rejection),
        Err(_) => return fault(world, "deciding"),
    };
    let undo = rollback::Rollback::capture(world, &plan);
    if catch_unwind(AssertUnwindSafe(|| enact(world, command, hash, plan))).is_err() {
        undo.restore(world);
        return fault(world, "enacting");
    }
    counter!("tianxia_commands_total", "result" => "accepted").increment(1);
    Applied::Accepted
}

/// A fault injected into [`enact`] in tests: the command with this id panics after this
/// point.
#[cfg(test)]
#[derive(bevy_ecs::resource::Resource, Clone, Debug)]
pub(crate) struct EnactFault {
    pub order_id: String,
    pub at: FaultAfter,
}

/// Where in [`enact`] a fault can be injected (in tests; elsewhere the points do nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultAfter {
    /// The command group's changes.
    Group,
    /// The order record.
    Order,
    /// The first event.
    FirstEvent,
}

#[cfg(test)]
fn fault_point(world: &World, command: &Command, at: FaultAfter) {
    if world
        .get_resource::<EnactFault>()
        .is_some_and(|f| f.order_id == command.id && f.at == at)
    {
        panic!("fault injected at {at:?}");
    }
}

#[cfg(not(test))]
#[inline(always)]
fn fault_point(_: &World, _: &Command, _: FaultAfter) {}

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
        let incarnation = world.resource::<Incarnation>().0;
        let record = OrderRecord {
            view: OrderView {
                order_id: command.id.clone(),
                command_type: command.body.command_type().name().to_string(),
                general: command.general.clone(),
                status: OrderStatus::Rejected,
                reason: Some(rejection.reason.code().to_string()),
                revision: incarnation,
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
            .map(|p| self.data.positions.card(p.kind))
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

    /// Generals of `nation` (a scan; used by the rarer court and nation commands).
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

/// Validates a command against the World without changing it: the checks every command
/// shares (its general, ownership, whether a timed order may start, the cost), and its
/// group's own.
pub fn decide(world: &World, command: &Command) -> Result<Plan, Rejection> {
    let view = View::new(world);
    match &command.body {
        CommandBody::Join(args) => return join::decide(&view, command, args),
        CommandBody::Sandbox(edit) => return sandbox::decide(&view, edit),
        _ => {}
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
    if is_timed(kind) {
        must_be_idle(general)?;
    }
    let cost = view.cost(kind);
    let plan = match &command.body {
        CommandBody::Join(_) | CommandBody::Sandbox(_) => unreachable!("handled above"),
        CommandBody::Move(args) => march::decide(&view, command, entity, general, &args.to, cost)?,
        CommandBody::Train(_) => city::decide_train(&view, command, entity, general, cost)?,
        CommandBody::Recruit(args) => {
            city::decide_recruit(&view, command, entity, general, args, cost)?
        }
        CommandBody::Build(args) => {
            city::decide_build(&view, command, entity, general, args.kind, cost)?
        }
        CommandBody::Appoint(args) => court::decide_appoint(&view, entity, general, args, cost)?,
        CommandBody::Dismiss(args) => court::decide_dismiss(&view, entity, general, args, cost)?,
        CommandBody::DeclareWar(args) | CommandBody::MakePeace(args) => {
            nation::decide_relation(&view, entity, general, kind, args, cost)?
        }
        CommandBody::SetTax(args) => nation::decide_tax(&view, entity, general, args, cost)?,
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

/// A general free to act: not carrying out an order or marching (`busy`), not in a battle
/// (`in_battle`).
fn must_be_idle(general: &General) -> Result<(), Rejection> {
    let id = &general.id;
    match general.status {
        GeneralStatus::Idle if general.order.is_none() && general.march.is_none() => Ok(()),
        GeneralStatus::InBattle => reject(Reason::InBattle, format!("{id} is in a battle")),
        GeneralStatus::Idle | GeneralStatus::Busy | GeneralStatus::Marching => {
            reject(Reason::Busy, format!("{id} is carrying out another order"))
        }
    }
}

/// Refuses a troop type the data does not define, naming those it does.
fn known_troop_type(view: &View<'_>, troop_type: TroopType) -> Result<(), Rejection> {
    if view.data.troops.get(troop_type).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = view.data.troops.0.keys().map(|t| t.name()).collect();
    let known = known.join(", ");
    reject(
        Reason::InvalidArgs,
        format!("no troop type \"{troop_type}\": troops.toml defines {known}"),
    )
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
        held => {
            let cards: Vec<&str> = view
                .data
                .positions
                .by_rank()
                .into_iter()
                .filter(|(_, card)| card.may_issue.contains(&kind))
                .map(|(k, _)| k.name())
                .collect();
            let holds = match (held, &general.position) {
                (Some(_), Some(p)) => format!("holds the {} card", p.kind.name()),
                _ => "holds no position card".to_string(),
            };
            reject(
                Reason::NoAuthority,
                format!(
                    "{} needs one of these cards: {}; {} {holds}",
                    kind.name(),
                    cards.join(", "),
                    general.id
                ),
            )
        }
    }
}

fn pay(world: &mut World, general: Entity, cost: Cost) {
    if let Some(mut general) = world.get_mut::<General>(general) {
        general.pcp.0 = general.pcp.0.saturating_sub(cost.pcp);
        general.mcp.0 = general.mcp.0.saturating_sub(cost.mcp);
    }
}

fn general_id(world: &World, entity: Entity) -> String {
    world
        .get::<General>(entity)
        .map(|g| g.id.clone())
        .unwrap_or_default()
}

/// Applies an accepted command's plan: its group's changes, then the order record in the
/// player's window and the events (`CommandAccepted`, the group's, `OrderCompleted` for an
/// order that takes no time).
fn enact(world: &mut World, command: &Command, hash: u64, plan: Plan) {
    let now = world.resource::<GameClock>().game_seconds;
    let incarnation = world.resource::<Incarnation>().0;
    let kind = command.body.command_type();
    let mut record = OrderView {
        order_id: command.id.clone(),
        command_type: kind.name().to_string(),
        general: command.general.clone(),
        status: OrderStatus::Completed,
        reason: None,
        revision: incarnation,
        accepted_at: Some(now),
        completes_at: Some(now),
        general_id: None,
        message: None,
    };
    let mut events: Vec<(String, EventKind)> = Vec::new();
    let actor = command.general.clone().map(|g| aggregate("general", &g));
    match plan {
        Plan::Join { general } => {
            record.general_id = Some(join::enact(world, *general, now, &mut events));
        }
        Plan::Timed {
            general,
            cost,
            order,
            march,
            city_pays,
        } => {
            record.status = OrderStatus::Accepted;
            record.completes_at = Some(order.completes_at);
            timed::enact(world, general, cost, order, march, city_pays, &mut events);
        }
        Plan::Appoint {
            issuer,
            cost,
            target,
            position,
            replaced,
        } => court::enact_appoint(world, issuer, cost, target, position, replaced, &mut events),
        Plan::Dismiss {
            issuer,
            cost,
            target,
        } => court::enact_dismiss(world, issuer, cost, target, &mut events),
        Plan::Relation {
            issuer,
            cost,
            nation,
            other,
            relation,
        } => nation::enact_relation(world, issuer, cost, nation, other, relation, &mut events),
        Plan::SetTax {
            issuer,
            cost,
            nation,
            rate,
        } => nation::enact_tax(world, issuer, cost, nation, rate, &mut events),
        Plan::Sandbox(plan) => {
            if let CommandBody::Sandbox(edit) = &command.body {
                sandbox::enact(world, command, edit, plan, &mut events);
            }
        }
    }
    fault_point(world, command, FaultAfter::Group);
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
    fault_point(world, command, FaultAfter::Order);
    let aggregate_id = actor
        .or_else(|| record.general_id.as_ref().map(|g| aggregate("general", g)))
        .or_else(|| command.issuer.player().map(|p| aggregate("player", p)))
        .unwrap_or_else(|| aggregate("world", ""));
    let player = command.issuer.player().map(str::to_string);
    world.resource_mut::<Outbox>().emit(
        now,
        aggregate_id.clone(),
        EventKind::CommandAccepted {
            order_id: command.id.clone(),
            player: player.clone(),
            general: command.general.clone().or(record.general_id.clone()),
            command: kind,
        },
    );
    fault_point(world, command, FaultAfter::FirstEvent);
    let mut outbox = world.resource_mut::<Outbox>();
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

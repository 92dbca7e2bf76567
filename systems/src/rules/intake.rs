//! Intake (docs/rules.md#intake-cap): the intake schedule drains the command bus without
//! waiting, applies up to the per-tick cap of commands in bus order (which is log or entry
//! order), skips any command at or below the position the World has applied, and counts each
//! command as its player's activity. The position applied is part of every checkpoint.

use bevy_ecs::{resource::Resource, world::World};
use components::{
    command::{Command, Inbound},
    stream::EntryId,
    time::GameClock,
};
use crossbeam_channel::Receiver;
use metrics::gauge;

use crate::rules::{commands::apply_command, presence::Presence};

/// The command bus as the World sees it: drained by the intake schedule, never waited on.
#[derive(Resource)]
pub struct CommandInbox {
    pub rx: Option<Receiver<Inbound>>,
    /// Most messages applied per intake tick (docs/rules.md#intake-cap); the rest wait, in order.
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

/// The command-log position (`log_seq`) of the last command the World applied (0 before
/// the first).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedLogSeq(pub u64);

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
    if command.log_seq != 0 && command.log_seq <= world.resource::<AppliedLogSeq>().0 {
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
    let mut applied = world.resource_mut::<AppliedLogSeq>();
    applied.0 = applied.0.max(command.log_seq);
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

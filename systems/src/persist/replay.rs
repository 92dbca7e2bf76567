//! Replay after a crash (docs/rules.md#revisions-and-replay-after-a-crash): the commands logged
//! after the recovered position are applied again, in log order, each once, before the clock
//! catches up.

use bevy_ecs::prelude::*;
use components::{
    command::Command,
    events::{EventKind, aggregate},
    read_model::OrderStatus,
    time::GameClock,
};
use tracing::info;

use crate::{
    event_log::Outbox,
    rules::{
        intake::apply_logged,
        orders::{Incarnation, Orders},
    },
};

/// Applies commands from the log after a recovery, in log order, each once, as the intake
/// does ([`apply_logged`]: those at or below the World's applied position are skipped, and
/// each counts as its player's activity). Every order a replayed command decides is
/// republished under the World's new revision with an `OrderRevised` event (the World cannot
/// know what a process that died reported). Returns how many were applied.
pub fn replay(world: &mut World, commands: impl IntoIterator<Item = Command>) -> u64 {
    let mut replayed = 0;
    for command in commands {
        if !apply_logged(world, &command) {
            continue;
        }
        replayed += 1;
        if let Some(player) = command.issuer.player() {
            let incarnation = world.resource::<Incarnation>().0;
            let record = world
                .resource::<Orders>()
                .get(player, &command.id)
                .map(|r| r.view.clone());
            if let Some(view) = record
                && view.status != OrderStatus::Queued
            {
                let now = world.resource::<GameClock>().game_seconds;
                world.resource_mut::<Outbox>().emit(
                    now,
                    aggregate("player", player),
                    EventKind::OrderRevised {
                        order_id: view.order_id,
                        player: player.to_string(),
                        revision: incarnation,
                        status: view.status,
                        reason: view.reason,
                    },
                );
            }
        }
    }
    if replayed > 0 {
        info!(replayed, "commands from the log applied again");
    }
    replayed
}

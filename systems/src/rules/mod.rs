//! The rules of the strategy game (docs/rules.md): commands and their orders, the timeline of
//! orders and marches, battles' consequences, the economy, command points, presence and the
//! AI. [`RulesPlugin`] puts each in its schedule and set.
//!
//! Where a rule lives:
//! - intake of commands: [`intake`]; deciding and enacting them, one file per command group:
//!   [`commands`]; each player's order window and the World's incarnation: [`orders`];
//! - what comes due each strategy tick (order completion, march legs, arrivals, battles met
//!   on the way): [`timeline`]; road paths: [`paths`]; who must fight whom: [`hostility`];
//!   who stands in which city: [`residents`];
//! - what a position card gives (command-point maxima, the troop cap): [`cards`];
//! - battle results (capture, nation destruction): [`capture`]; production, upkeep and taxes:
//!   [`economy`]; command points: [`points`]; players' presence and delegates: [`presence`];
//!   NPC and delegate decisions: [`ai`]; what must hold in every World: [`audit`].

pub mod ai;
pub mod audit;
pub mod capture;
pub mod cards;
pub mod commands;
pub mod economy;
pub mod hostility;
pub mod intake;
pub mod orders;
pub mod paths;
pub mod points;
pub mod presence;
pub mod residents;
pub mod timeline;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use components::command::Inbound;
use crossbeam_channel::Receiver;

use crate::schedule::{BattleSet, BattleTick, Intake, Strategy, StrategySet};

/// The rules, fed by `inbox` (the command bus; none for a World nobody commands).
pub struct RulesPlugin {
    pub inbox: Option<Receiver<Inbound>>,
    pub max_commands_per_tick: usize,
    /// Whether the AI runs.
    pub ai: bool,
    /// Finished orders kept per player.
    pub finished_window: usize,
}

impl Plugin for RulesPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(intake::CommandInbox {
            rx: self.inbox.clone(),
            max_per_tick: self.max_commands_per_tick,
        })
        .insert_resource(orders::Orders::new(self.finished_window))
        .init_resource::<timeline::Timeline>()
        .init_resource::<intake::AppliedLogSeq>()
        .init_resource::<intake::AppliedEntry>()
        .init_resource::<orders::Incarnation>()
        .init_resource::<presence::Presence>()
        .init_resource::<ai::AiRoster>()
        .add_systems(Intake, intake::apply_inbound)
        .add_systems(Strategy, timeline::run_timeline.in_set(StrategySet::Orders))
        .add_systems(Strategy, economy::run_economy.in_set(StrategySet::Economy))
        .add_systems(
            Strategy,
            points::regenerate_command_points.in_set(StrategySet::CommandPoints),
        )
        .add_systems(
            Strategy,
            presence::update_presence.in_set(StrategySet::Presence),
        )
        .insert_resource(ai::AiSettings { enabled: self.ai })
        .add_systems(Strategy, ai::run_ai.in_set(StrategySet::Ai))
        .add_systems(
            BattleTick,
            capture::apply_battle_results.in_set(BattleSet::Results),
        );
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod sandbox_tests;
#[cfg(test)]
pub(crate) mod tests;

//! The rules of the strategy game (SPEC 2): commands and their orders, marches, battles'
//! consequences, the economy, command points, presence and the AI. [`RulesPlugin`] puts each
//! in its schedule and set.

pub mod ai;
pub mod audit;
pub mod capture;
pub mod commands;
pub mod economy;
pub mod march;
pub mod orders;
pub mod paths;
pub mod points;
pub mod presence;
pub mod residents;

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use components::{
    command::Inbound,
    world::{Nation, Registry, Relation},
};
use crossbeam_channel::Receiver;

use crate::{
    battle::conclude_battles,
    schedule::{BattleTick, Intake, Strategy, StrategySet},
};

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
        app.insert_resource(commands::CommandInbox {
            rx: self.inbox.clone(),
            max_per_tick: self.max_commands_per_tick,
        })
        .insert_resource(orders::Orders::new(self.finished_window))
        .init_resource::<orders::Timeline>()
        .init_resource::<commands::AppliedSeq>()
        .init_resource::<commands::AppliedEntry>()
        .init_resource::<orders::Revision>()
        .init_resource::<presence::Presence>()
        .init_resource::<ai::AiRoster>()
        .init_resource::<capture::BattleResults>()
        .add_systems(Intake, commands::apply_inbound)
        .add_systems(Strategy, march::run_timeline.in_set(StrategySet::Orders))
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
            capture::apply_battle_results.after(conclude_battles),
        );
    }
}

/// The relation of nation `a` towards `b` (`None` if either is unknown or destroyed).
pub fn relation_between(world: &World, a: &str, b: &str) -> Option<Relation> {
    let registry = world.resource::<Registry>();
    let nation = registry
        .nations
        .get(a)
        .and_then(|e| world.get::<Nation>(*e))?;
    nation.relations.get(b).copied()
}

#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod tests;

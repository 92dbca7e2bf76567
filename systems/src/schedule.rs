//! The World's schedules (ARCHITECTURE.md, "Bird's-eye view") and the sets that order the
//! systems within them. Each schedule runs at its own fixed rate, driven by
//! [`crate::driver::Driver`]:
//! - [`Intake`] (20 Hz by default): validates and applies commands.
//! - [`Strategy`] (1 Hz by default): advances the game clock and runs the strategy systems in
//!   the order of [`StrategySet`].
//! - [`BattleTick`] (60 Hz by default): steps battles towards the strategy clock, in the order
//!   of [`BattleSet`].
//! - [`Publish`]: after the ticks of each pass of the driver, hands read models, epochs and
//!   hot snapshots to the outside without blocking, in the order of [`PublishSet`].
//!
//! Plugins put their systems in these sets and never name another plugin's systems;
//! [`configure_sets`] is the one place that orders the sets.

use bevy_app::App;
use bevy_ecs::{
    resource::Resource,
    schedule::{IntoScheduleConfigs, ScheduleLabel, SystemSet},
};

#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Intake;

#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Strategy;

#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Publish;

/// Steps battles (60 Hz by default), independently of the strategy tick.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BattleTick;

/// Order of the strategy systems within one tick (docs/rules.md#strategy-tick). Later sets see
/// the effects of earlier ones in the same tick.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StrategySet {
    /// Advance the game clock by this tick's step.
    Clock,
    /// React to calendar boundaries crossed by the step.
    Calendar,
    /// Timed orders complete and marches advance, in the order they came due.
    Orders,
    /// Production, upkeep, harvest and taxes at day boundaries.
    Economy,
    /// Command points regenerate.
    CommandPoints,
    /// Players' presence: protection and AI delegates.
    Presence,
    /// AI-driven generals decide.
    Ai,
}

/// Order of the battle schedule's systems.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BattleSet {
    /// Battles step towards the strategy clock.
    Step,
    /// Battles with an outcome end: the losses come off, the generals go back, the result is
    /// told and kept in [`crate::battle::BattleResults`].
    Conclude,
    /// The rules act on the results: cities captured, nations destroyed.
    Results,
}

/// Order of the publish step's systems.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublishSet {
    /// The read models are built from what changed and swapped in.
    ReadModels,
    /// What changed is noted for the store, and an epoch closes when one is due.
    Extract,
    /// A hot snapshot is handed over when one is due (after the epoch, if any, closed).
    Hot,
}

/// Orders the sets of every schedule: the one place where plugins' systems meet.
pub fn configure_sets(app: &mut App) {
    app.configure_sets(
        Strategy,
        (
            StrategySet::Clock,
            StrategySet::Calendar,
            StrategySet::Orders,
            StrategySet::Economy,
            StrategySet::CommandPoints,
            StrategySet::Presence,
            StrategySet::Ai,
        )
            .chain(),
    )
    .configure_sets(
        BattleTick,
        (BattleSet::Step, BattleSet::Conclude, BattleSet::Results).chain(),
    )
    .configure_sets(
        Publish,
        (PublishSet::ReadModels, PublishSet::Extract, PublishSet::Hot).chain(),
    );
}

/// Game seconds the strategy tick being run advances the clock by. Set by the driver before
/// each strategy tick; never more than one strategy tick's worth of game time.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockStep(pub i64);

//! The World's schedules (SPEC 1). Each runs at its own fixed rate, driven by
//! [`crate::driver::Driver`]:
//! - [`Intake`] (20 Hz by default): validates and applies commands.
//! - [`Strategy`] (1 Hz by default): advances the game clock and runs the strategy systems in
//!   the order of [`StrategySet`].
//! - [`BattleTick`] (60 Hz by default): steps battles towards the strategy clock.
//! - [`Publish`]: after the ticks of each pass of the driver, hands events and read models to
//!   the outside without blocking.

use bevy_ecs::{
    resource::Resource,
    schedule::{ScheduleLabel, SystemSet},
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

/// Order of the strategy systems within one tick (SPEC 2.6). Later sets see the effects of
/// earlier ones in the same tick.
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

/// Game seconds the strategy tick being run advances the clock by. Set by the driver before
/// each strategy tick; never more than one strategy tick's worth of game time.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockStep(pub i64);

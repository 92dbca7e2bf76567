//! The game clock within the World (docs/rules.md#game-time): each strategy tick advances it by
//! the step the driver measured from real time, and announces calendar boundaries it crossed.
//! Nothing else moves the clock.

use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use components::{
    events::{EventKind, aggregate},
    time::{GameClock, GameDate, MONTHS_PER_YEAR, SECONDS_PER_MONTH},
    world::WorldInfo,
};

use crate::{
    event_log::Outbox,
    schedule::{ClockStep, Strategy, StrategySet},
};

pub struct ClockPlugin;

impl Plugin for ClockPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ClockStep>()
            .add_systems(Strategy, advance_clock.in_set(StrategySet::Clock))
            .add_systems(Strategy, announce_new_months.in_set(StrategySet::Calendar));
    }
}

/// Moves the clock forward by this tick's step.
pub fn advance_clock(mut clock: ResMut<GameClock>, step: Res<ClockStep>) {
    clock.game_seconds += step.0.max(0);
    clock.tick += 1;
}

fn month_index(date: GameDate) -> i64 {
    date.year as i64 * MONTHS_PER_YEAR + date.month as i64 - 1
}

/// Emits `MonthBegan` for every month the step entered, at the game second it began.
pub fn announce_new_months(
    clock: Res<GameClock>,
    step: Res<ClockStep>,
    info: Res<WorldInfo>,
    mut outbox: ResMut<Outbox>,
) {
    let before = month_index(clock.start.after(clock.game_seconds - step.0.max(0)));
    let now = month_index(clock.date());
    for index in before + 1..=now {
        outbox.emit(
            index * SECONDS_PER_MONTH - clock.start.calendar_seconds(),
            aggregate("world", &info.name),
            EventKind::MonthBegan {
                year: index.div_euclid(MONTHS_PER_YEAR) as i32,
                month: (index.rem_euclid(MONTHS_PER_YEAR) + 1) as u8,
            },
        );
    }
}

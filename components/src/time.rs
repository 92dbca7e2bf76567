//! Game time (docs/rules.md#game-time): whole game seconds since the scenario's start, a
//! calendar of years of 12 months of 30 days, and the World's clock resource. The clock is
//! advanced only by the strategy schedule, from the server's own measurement of real time;
//! nothing here reads a wall clock but [`unix_ms`], for stamps outside the game.

use std::time::{SystemTime, UNIX_EPOCH};

use bevy_ecs::resource::Resource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const SECONDS_PER_HOUR: i64 = 3_600;
pub const HOURS_PER_DAY: i64 = 24;
pub const DAYS_PER_MONTH: i64 = 30;
pub const MONTHS_PER_YEAR: i64 = 12;
pub const SECONDS_PER_DAY: i64 = SECONDS_PER_HOUR * HOURS_PER_DAY;
pub const SECONDS_PER_MONTH: i64 = SECONDS_PER_DAY * DAYS_PER_MONTH;
pub const SECONDS_PER_YEAR: i64 = SECONDS_PER_MONTH * MONTHS_PER_YEAR;

/// A point on the game calendar. Months and days count from 1, hours from 0.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct GameDate {
    pub year: i32,
    /// 1–12.
    pub month: u8,
    /// 1–30.
    pub day: u8,
    /// 0–23.
    #[serde(default)]
    pub hour: u8,
}

impl GameDate {
    /// Whether every field lies on the calendar.
    pub fn is_valid(&self) -> bool {
        (1..=MONTHS_PER_YEAR as u8).contains(&self.month)
            && (1..=DAYS_PER_MONTH as u8).contains(&self.day)
            && (self.hour as i64) < HOURS_PER_DAY
    }

    /// Seconds from the start of year 0 to this date.
    pub fn calendar_seconds(&self) -> i64 {
        self.year as i64 * SECONDS_PER_YEAR
            + (self.month as i64 - 1) * SECONDS_PER_MONTH
            + (self.day as i64 - 1) * SECONDS_PER_DAY
            + self.hour as i64 * SECONDS_PER_HOUR
    }

    /// The date `elapsed` game seconds after `self`.
    pub fn after(&self, elapsed: i64) -> GameDate {
        let total = self.calendar_seconds() + elapsed;
        let year = total.div_euclid(SECONDS_PER_YEAR);
        let in_year = total.rem_euclid(SECONDS_PER_YEAR);
        GameDate {
            year: year as i32,
            month: (in_year / SECONDS_PER_MONTH + 1) as u8,
            day: (in_year % SECONDS_PER_MONTH / SECONDS_PER_DAY + 1) as u8,
            hour: (in_year % SECONDS_PER_DAY / SECONDS_PER_HOUR) as u8,
        }
    }
}

/// The World's own game clock.
#[derive(Resource, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GameClock {
    /// Whole game seconds since the scenario's start.
    pub game_seconds: i64,
    /// The scenario's start date; `game_seconds` counts from it.
    pub start: GameDate,
    /// Strategy ticks run since the world was created.
    pub tick: u64,
    /// Configured game seconds per real second.
    pub speed: f64,
    /// Game seconds that actually passed per real second, measured over the last few
    /// seconds; above `speed` while catching up, below it when the world cannot keep up.
    pub effective_speed: f64,
    /// Real seconds the clock is behind its schedule (downtime still owed included), as of the
    /// driver's last pass; not kept in checkpoints.
    #[serde(skip)]
    pub lag_seconds: f64,
}

impl GameClock {
    pub fn new(start: GameDate, speed: f64) -> Self {
        GameClock {
            game_seconds: 0,
            start,
            tick: 0,
            speed,
            effective_speed: speed,
            lag_seconds: 0.0,
        }
    }

    /// Today's date on the game calendar.
    pub fn date(&self) -> GameDate {
        self.start.after(self.game_seconds)
    }
}

/// Real time as Unix milliseconds (0 before the epoch): what checkpoints, events and
/// tokens are stamped with.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: GameDate = GameDate {
        year: 190,
        month: 1,
        day: 1,
        hour: 0,
    };

    #[test]
    fn calendar_rolls_hours_days_months_and_years() {
        assert_eq!(START.after(0), START);
        assert_eq!(START.after(3_599), START);
        assert_eq!(START.after(3_600).hour, 1);
        assert_eq!(
            START.after(SECONDS_PER_DAY),
            GameDate {
                year: 190,
                month: 1,
                day: 2,
                hour: 0
            }
        );
        assert_eq!(
            START.after(SECONDS_PER_MONTH),
            GameDate {
                year: 190,
                month: 2,
                day: 1,
                hour: 0
            }
        );
        assert_eq!(
            START.after(
                SECONDS_PER_YEAR
                    + 2 * SECONDS_PER_MONTH
                    + 29 * SECONDS_PER_DAY
                    + 23 * SECONDS_PER_HOUR
            ),
            GameDate {
                year: 191,
                month: 3,
                day: 30,
                hour: 23
            }
        );
        let mid = GameDate {
            year: 190,
            month: 12,
            day: 30,
            hour: 23,
        };
        assert_eq!(
            mid.after(SECONDS_PER_HOUR),
            GameDate {
                year: 191,
                month: 1,
                day: 1,
                hour: 0
            }
        );
    }

    #[test]
    fn validity() {
        assert!(START.is_valid());
        assert!(!GameDate { month: 13, ..START }.is_valid());
        assert!(!GameDate { day: 31, ..START }.is_valid());
        assert!(!GameDate { day: 0, ..START }.is_valid());
        assert!(!GameDate { hour: 24, ..START }.is_valid());
    }
}

//! Command-point regeneration (docs/rules.md#command-points): every strategy tick, PCP and MCP
//! grow by `regen_per_game_hour × the card's multiplier × elapsed game hours`, up to their
//! maxima. Counted in thousandths from the game clock itself (what has accrued by now minus
//! what had accrued by the last tick), so no rounding accumulates whatever the tick's step.
//!
//! A general's read model shows whole points, so a general is marked changed only when a whole
//! point is crossed: regeneration does not make every general's view be rebuilt. Its snapshot
//! may therefore be older than its points; recovery brings them forward from the snapshot's
//! time with [`regain_points`].

use bevy_ecs::prelude::*;
use components::{
    time::{GameClock, SECONDS_PER_HOUR},
    world::{General, MilliCp},
};

use crate::{
    assets::{Data, GameData},
    schedule::ClockStep,
};

/// Thousandths of a point accrued from game second 0 to `t` at `per_hour` points an hour.
fn accrued(per_hour_milli: f64, t: i64) -> i64 {
    (per_hour_milli * t as f64 / SECONDS_PER_HOUR as f64).floor() as i64
}

/// Thousandths of a point a general with this card regains between game seconds `from` and
/// `to`.
fn gain(general: &General, data: &GameData, from: i64, to: i64) -> u32 {
    let base = data.balance.command_points.regen_per_game_hour * f64::from(MilliCp::PER_POINT);
    let multiplier = general
        .position
        .as_ref()
        .map_or(1.0, |p| data.positions.card(p.kind).cp_multiplier);
    let rate = base * multiplier;
    (accrued(rate, to) - accrued(rate, from)).clamp(0, i64::from(u32::MAX)) as u32
}

fn add(general: &mut General, gain: u32) {
    if general.pcp < general.pcp_max {
        general.pcp = MilliCp(general.pcp.0.saturating_add(gain).min(general.pcp_max.0));
    }
    if general.mcp < general.mcp_max {
        general.mcp = MilliCp(general.mcp.0.saturating_add(gain).min(general.mcp_max.0));
    }
}

/// Brings a general's points forward from game second `from` to `to`, as the ticks between
/// would have (the sum of their gains is the gain over the whole span): a recovered general
/// whose stored state is older than its checkpoint regains what it had regained since.
pub fn regain_points(general: &mut General, data: &GameData, from: i64, to: i64) {
    if to > from {
        let gain = gain(general, data, from, to);
        add(general, gain);
    }
}

pub fn regenerate_command_points(
    clock: Res<GameClock>,
    step: Res<ClockStep>,
    data: Res<Data>,
    mut generals: Query<&mut General>,
) {
    let now = clock.game_seconds;
    let before = now - step.0.max(0);
    if now == before {
        return;
    }
    for mut general in &mut generals {
        if general.pcp >= general.pcp_max && general.mcp >= general.mcp_max {
            continue;
        }
        let gain = gain(&general, &data, before, now);
        if gain == 0 {
            continue;
        }
        let g = general.bypass_change_detection();
        let points = (g.pcp.points(), g.mcp.points());
        add(g, gain);
        if (g.pcp.points(), g.mcp.points()) != points {
            general.set_changed();
        }
    }
}

//! Command-point regeneration (SPEC 2.4): every strategy tick, PCP and MCP grow by
//! `regen_per_game_hour × the card's multiplier × elapsed game hours`, up to their maxima.
//! Counted in thousandths from the game clock itself (what has accrued by now minus what had
//! accrued by the last tick), so no rounding accumulates whatever the tick's step.
//!
//! A general's read model shows whole points, so a general is marked changed only when a
//! whole point is crossed: regeneration does not make every general's view be rebuilt.

use bevy_ecs::prelude::*;
use components::{
    time::{GameClock, SECONDS_PER_HOUR},
    world::{General, MilliCp},
};

use crate::{assets::Data, schedule::ClockStep};

/// Thousandths of a point accrued from game second 0 to `t` at `per_hour` points an hour.
fn accrued(per_hour_milli: f64, t: i64) -> i64 {
    (per_hour_milli * t as f64 / SECONDS_PER_HOUR as f64).floor() as i64
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
    let base = data.balance.command_points.regen_per_game_hour * f64::from(MilliCp::PER_POINT);
    for mut general in &mut generals {
        if general.pcp >= general.pcp_max && general.mcp >= general.mcp_max {
            continue;
        }
        let multiplier = general
            .position
            .as_ref()
            .map_or(1.0, |p| data.positions.get(p.kind).cp_multiplier);
        let rate = base * multiplier;
        let gain =
            (accrued(rate, now) - accrued(rate, before)).clamp(0, i64::from(u32::MAX)) as u32;
        if gain == 0 {
            continue;
        }
        let g = general.bypass_change_detection();
        let points = (g.pcp.points(), g.mcp.points());
        if g.pcp < g.pcp_max {
            g.pcp = MilliCp(g.pcp.0.saturating_add(gain).min(g.pcp_max.0));
        }
        if g.mcp < g.mcp_max {
            g.mcp = MilliCp(g.mcp.0.saturating_add(gain).min(g.mcp_max.0));
        }
        if (g.pcp.points(), g.mcp.points()) != points {
            general.set_changed();
        }
    }
}

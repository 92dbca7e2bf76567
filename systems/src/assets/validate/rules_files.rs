//! Checks of the rules files that parsed: troop types, position cards, command costs and the
//! balance constants, each value named `[table] key`.

use std::collections::HashMap;

use components::{
    command::CommandType,
    data::{BalanceFile, CardScope},
    world::PositionKind,
};

use crate::assets::{
    AssetError,
    load::{Bound, Rules, Source},
};

/// Most troop types a data set may define.
pub(crate) const TROOP_TYPES_MAX: usize = 32;
/// Most position cards a data set may define.
pub(crate) const CARDS_MAX: usize = 32;

/// Checks values of a rules file, which are named by `[table] key` rather than by position.
struct Fields<'a> {
    source: &'a Source,
    errors: &'a mut Vec<AssetError>,
}

impl Fields<'_> {
    /// An error about `entry` (`[table] key`), at its value's place in the file where it has
    /// one.
    /// An empty `entry` is about the file as a whole.
    fn fail(&mut self, entry: String, message: String) {
        self.errors.push(match self.source.value_offset(&entry) {
            Some(offset) => self.source.error_at(offset, Some(entry), message),
            None => self
                .source
                .error((!entry.is_empty()).then_some(entry), message),
        });
    }

    /// Notes the bound `entry` is held to, for the schema.
    fn note(&self, entry: &str, min: f64, exclusive_min: bool, max: f64) {
        let Some((table, key)) = entry
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
        else {
            return;
        };
        let mut path: Vec<String> = table.split('.').map(str::to_string).collect();
        path.push(key.to_string());
        self.source.note_bound(
            path,
            Bound {
                min,
                exclusive_min,
                max,
            },
        );
    }

    fn positive(&mut self, entry: &str, value: f64) {
        self.note(entry, 0.0, true, f64::INFINITY);
        if !(value.is_finite() && value > 0.0) {
            self.fail(
                entry.into(),
                format!("must be a positive number, not {value}"),
            );
        }
    }

    fn non_negative(&mut self, entry: &str, value: f64) {
        self.note(entry, 0.0, false, f64::INFINITY);
        if !(value.is_finite() && value >= 0.0) {
            self.fail(entry.into(), format!("must be zero or more, not {value}"));
        }
    }

    fn fraction(&mut self, entry: &str, value: f64) {
        self.between(entry, value, 0.0, 1.0);
    }

    fn between(&mut self, entry: &str, value: f64, low: f64, high: f64) {
        self.note(entry, low, false, high);
        if !(low..=high).contains(&value) {
            self.fail(
                entry.into(),
                format!("must be between {low} and {high}, not {value}"),
            );
        }
    }

    fn range(&mut self, entry: &str, value: i64, low: i64, high: i64) {
        self.range_within(entry, value, low, high, (low, high));
    }

    /// A range that depends on other values of the data: the schema gives `envelope`, the
    /// widest it can be.
    fn range_within(&mut self, entry: &str, value: i64, low: i64, high: i64, envelope: (i64, i64)) {
        self.note(entry, envelope.0 as f64, false, envelope.1 as f64);
        if !(low..=high).contains(&value) {
            self.fail(entry.into(), format!("{value} is outside {low}–{high}"));
        }
    }
}

/// Checks the rules files that parsed.
pub(crate) fn rules(rules: &Rules, errors: &mut Vec<AssetError>) {
    if let Some(troops) = &rules.troops {
        let mut f = Fields {
            source: &troops.source,
            errors,
        };
        let types = &troops.value;
        if types.0.is_empty() {
            f.fail(String::new(), "defines no troop type".into());
        }
        if types.0.len() > TROOP_TYPES_MAX {
            f.fail(
                String::new(),
                format!(
                    "defines {} troop types; at most {TROOP_TYPES_MAX} fit a battle",
                    types.0.len()
                ),
            );
        }
        for (name, spec) in &types.0 {
            f.between(&format!("[{name}] mass"), spec.mass, 0.01, 1e6);
            f.between(&format!("[{name}] radius"), spec.radius, 0.1, 50.0);
            f.between(&format!("[{name}] max_speed"), spec.max_speed, 0.01, 100.0);
            f.between(&format!("[{name}] hit_points"), spec.hit_points, 0.01, 1e6);
            f.between(&format!("[{name}] attack"), spec.attack, 0.01, 1e6);
            f.between(&format!("[{name}] defense"), spec.defense, 0.0, 1e6);
            f.between(&format!("[{name}] range"), spec.range, 0.01, 1_000.0);
            f.between(&format!("[{name}] cooldown"), spec.cooldown, 0.01, 600.0);
            // Any entry of `counters`, for the schema, also when the data has none.
            f.note(&format!("[{name}.counters] *"), 0.0, false, 100.0);
            for (target, factor) in &spec.counters {
                let entry = format!("[{name}.counters] {target}");
                if types.get(*target).is_none() {
                    f.fail(entry, format!("no troop type \"{target}\" in troops.toml"));
                } else {
                    f.between(&entry, *factor, 0.0, 100.0);
                }
            }
        }
    }
    if let Some(positions) = &rules.positions {
        let mut f = Fields {
            source: &positions.source,
            errors,
        };
        let cards = &positions.value;
        if cards.0.len() > CARDS_MAX {
            f.fail(
                String::new(),
                format!("defines {} cards; at most {CARDS_MAX}", cards.0.len()),
            );
        }
        let rulers: Vec<_> = cards
            .0
            .iter()
            .filter(|(_, card)| card.scope == CardScope::Ruler)
            .map(|(kind, _)| *kind)
            .collect();
        if rulers.len() != 1 {
            f.fail(
                String::new(),
                format!(
                    "exactly one card has scope = \"ruler\" (the ruler's), not {}",
                    rulers.len()
                ),
            );
        }
        let mut levels: HashMap<i64, PositionKind> = HashMap::new();
        for (kind, card) in cards.by_rank() {
            let name = kind.name();
            f.range(&format!("[{name}] level"), card.level, 1, CARDS_MAX as i64);
            if let Some(other) = levels.insert(card.level, *kind) {
                f.fail(
                    format!("[{name}] level"),
                    format!("level {} is also the level of {other}", card.level),
                );
            }
            if card.title.trim().is_empty() {
                f.fail(format!("[{name}] title"), "must not be empty".into());
            }
            f.between(
                &format!("[{name}] cp_multiplier"),
                card.cp_multiplier,
                0.01,
                100.0,
            );
            f.between(
                &format!("[{name}] recruit_cap_multiplier"),
                card.recruit_cap_multiplier,
                1.0,
                10.0,
            );
            f.range(
                &format!("[{name}] pcp_max_bonus"),
                card.pcp_max_bonus,
                0,
                1_000,
            );
            f.range(
                &format!("[{name}] mcp_max_bonus"),
                card.mcp_max_bonus,
                0,
                1_000,
            );
            match card.scope {
                CardScope::Nation => {
                    f.range(&format!("[{name}] max_holders"), card.max_holders, 0, 1_000)
                }
                CardScope::Ruler | CardScope::City if card.max_holders != 1 => f.fail(
                    format!("[{name}] max_holders"),
                    "a card of the ruler's or a city's scope has one holder: leave max_holders \
                     out"
                    .into(),
                ),
                _ => {}
            }
            if card.may_issue.contains(&CommandType::Sandbox) {
                f.fail(
                    format!("[{name}] may_issue"),
                    "SANDBOX is not a command of the game; no card issues it".into(),
                );
            }
            for appointed in &card.appoints {
                match cards.get(*appointed) {
                    None => f.fail(
                        format!("[{name}] appoints"),
                        format!("no card \"{appointed}\" in positions.toml"),
                    ),
                    Some(other) if other.scope == CardScope::Ruler => f.fail(
                        format!("[{name}] appoints"),
                        format!("{appointed} is the ruler's card, which nobody appoints"),
                    ),
                    Some(other) if other.level <= card.level => f.fail(
                        format!("[{name}] appoints"),
                        format!("may only name cards of a lower rank, not {appointed}"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
    if let Some(commands) = &rules.commands {
        let mut f = Fields {
            source: &commands.source,
            errors,
        };
        for (kind, spec) in commands.value.entries() {
            let name = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            f.range(&format!("[{name}] pcp"), spec.pcp, 0, 1_000);
            f.range(&format!("[{name}] mcp"), spec.mcp, 0, 1_000);
            f.range(&format!("[{name}] duration"), spec.duration, 0, 100_000_000);
        }
    }
    if let Some(balance) = &rules.balance {
        check_balance(
            &mut Fields {
                source: &balance.source,
                errors,
            },
            &balance.value,
        );
        if let Some(troops) = &rules.troops {
            let b = &balance.value;
            for (entry, troop_type) in [
                ("[join] troop_type", b.join.troop_type),
                ("[battle] garrison_troop_type", b.battle.garrison_troop_type),
            ] {
                if troops.value.get(troop_type).is_none() {
                    Fields {
                        source: &balance.source,
                        errors,
                    }
                    .fail(
                        entry.into(),
                        format!("no troop type \"{troop_type}\" in troops.toml"),
                    );
                }
            }
        }
    }
}

fn check_balance(f: &mut Fields<'_>, b: &BalanceFile) {
    let cp = &b.command_points;
    f.positive(
        "[command_points] regen_per_game_hour",
        cp.regen_per_game_hour,
    );
    f.range("[command_points] pcp_max_base", cp.pcp_max_base, 0, 1_000);
    f.between(
        "[command_points] pcp_max_per_politics",
        cp.pcp_max_per_politics,
        0.0,
        10.0,
    );
    f.range("[command_points] mcp_max_base", cp.mcp_max_base, 0, 1_000);
    f.between(
        "[command_points] mcp_max_per_leadership",
        cp.mcp_max_per_leadership,
        0.0,
        10.0,
    );
    f.positive(
        "[march] distance_per_game_hour",
        b.march.distance_per_game_hour,
    );
    let e = &b.economy;
    f.non_negative(
        "[economy] gold_per_commerce_per_day",
        e.gold_per_commerce_per_day,
    );
    f.range(
        "[economy] population_unit",
        e.population_unit,
        1,
        i64::from(u32::MAX),
    );
    f.range("[economy] harvest_month", e.harvest_month, 1, 12);
    f.non_negative("[economy] rice_per_agriculture", e.rice_per_agriculture);
    f.non_negative(
        "[economy] rice_per_soldier_per_day",
        e.rice_per_soldier_per_day,
    );
    f.fraction("[economy] desertion_per_day", e.desertion_per_day);
    f.range("[economy] tax_day", e.tax_day, 1, 30);
    f.range("[training] gain", b.training.gain, 1, 100);
    f.range("[training] max", b.training.max, 1, 100);
    let r = &b.recruit;
    f.range(
        "[recruit] troops_per_leadership",
        r.troops_per_leadership,
        1,
        10_000,
    );
    f.range("[recruit] amount_max", r.amount_max, 1, 1_000_000);
    f.non_negative("[recruit] gold_per_soldier", r.gold_per_soldier);
    f.non_negative("[recruit] population_per_soldier", r.population_per_soldier);
    let build = &b.build;
    for (name, step, max) in [
        ("agriculture", build.agriculture_step, build.agriculture_max),
        ("commerce", build.commerce_step, build.commerce_max),
        ("walls", build.walls_step, build.walls_max),
    ] {
        f.range(&format!("[build] {name}_max"), max, 1, i64::from(u32::MAX));
        f.range_within(
            &format!("[build] {name}_step"),
            step,
            1,
            max.max(1),
            (1, i64::from(u32::MAX)),
        );
    }
    let p = &b.presence;
    f.range("[presence] online_window", p.online_window, 1, i64::MAX);
    f.range("[presence] protection", p.protection, 0, i64::MAX);
    f.range_within(
        "[presence] ai_delegate_until",
        p.ai_delegate_until,
        p.protection.max(0),
        i64::MAX,
        (0, i64::MAX),
    );
    f.range("[nation] tax_rate_max", b.nation.tax_rate_max, 0, 50);
    let j = &b.join;
    f.range("[join] stat_min", j.stat_min, 1, 100);
    f.range_within(
        "[join] stat_max",
        j.stat_max,
        j.stat_min.clamp(1, 100),
        100,
        (1, 100),
    );
    f.range("[join] troops", j.troops, 0, 1_000_000);
    f.range("[join] training", j.training, 0, 100);
    f.range("[join] morale", j.morale, 0, 100);
    let ai = &b.ai;
    f.range("[ai] think_every", ai.think_every, 1, i64::MAX);
    f.fraction("[ai] recruit_below", ai.recruit_below);
    f.range("[ai] train_up_to", ai.train_up_to, 0, 100);
    f.positive("[ai] attack_ratio", ai.attack_ratio);
    f.fraction("[ai] attack_min_share", ai.attack_min_share);
    f.fraction("[ai] wall_weight", ai.wall_weight);
    f.positive("[ai] war_ratio", ai.war_ratio);
    f.range("[ai] max_wars", ai.max_wars, 0, 100);
    f.range("[ai] settle_days", ai.settle_days, 0, 36_000);
    let battle = &b.battle;
    f.range(
        "[battle] soldiers_per_unit",
        battle.soldiers_per_unit,
        1,
        100_000,
    );
    f.range("[battle] time_limit", battle.time_limit, 1, 1_000_000);
    f.between(
        "[battle] game_seconds_per_step",
        battle.game_seconds_per_step,
        0.001,
        60.0,
    );
    f.between("[battle] stat_floor", battle.stat_floor, 0.0, 1.0);
    f.between(
        "[battle] damage_variation",
        battle.damage_variation,
        0.0,
        0.9,
    );
    f.between(
        "[battle] morale_loss_per_percent",
        battle.morale_loss_per_percent,
        0.0,
        100.0,
    );
    f.between("[battle] rout_morale", battle.rout_morale, 0.0, 100.0);
    f.between(
        "[battle] wall_defense_bonus",
        battle.wall_defense_bonus,
        0.0,
        10.0,
    );
    f.between(
        "[battle] search_radius",
        battle.search_radius,
        1.0,
        10_000.0,
    );
    f.between(
        "[battle] wall_per_gate",
        battle.wall_per_gate,
        10.0,
        10_000.0,
    );
    f.between("[battle] gate_width", battle.gate_width, 1.0, 1_000.0);
    f.between("[battle] wall_thickness", battle.wall_thickness, 0.5, 100.0);
    f.between(
        "[battle] wall_thickness_per_level",
        battle.wall_thickness_per_level,
        0.0,
        10.0,
    );
    f.range("[battle] retarget_steps", battle.retarget_steps, 1, 600);
    f.between("[battle] deploy_gap", battle.deploy_gap, 0.0, 10_000.0);
    f.range("[battle] solver_iterations", battle.solver_iterations, 1, 8);
    f.range(
        "[battle] garrison_leadership",
        battle.garrison_leadership,
        1,
        100,
    );
    f.range(
        "[battle] garrison_training",
        battle.garrison_training,
        0,
        100,
    );
    f.range("[battle] garrison_morale", battle.garrison_morale, 0, 100);
    f.range(
        "[orders] finished_window",
        b.orders.finished_window,
        1,
        100_000,
    );
}

//! Semantic checks of designer data: ranges, ids, references between files, and the rules
//! a scenario must obey (a capital its nation owns, a connected road graph, one chancellor per
//! nation, ...). Each check that depends on another file runs only if that file parsed, so a
//! syntax error is not followed by a cascade of unknown-id errors.

use std::collections::{HashMap, HashSet, VecDeque};

use components::{
    data::{BalanceFile, Spanned},
    ids::is_valid_id,
    time::GameDate,
    world::PositionKind,
};

use super::{
    AssetError,
    load::{Rules, ScenarioFiles, Source},
};

/// Checks values of a rules file, which are named by `[table] key` rather than by position.
struct Fields<'a> {
    source: &'a Source,
    errors: &'a mut Vec<AssetError>,
}

impl Fields<'_> {
    fn fail(&mut self, entry: String, message: String) {
        self.errors.push(self.source.error(Some(entry), message));
    }

    fn positive(&mut self, entry: &str, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            self.fail(
                entry.into(),
                format!("must be a positive number, not {value}"),
            );
        }
    }

    fn non_negative(&mut self, entry: &str, value: f64) {
        if !(value.is_finite() && value >= 0.0) {
            self.fail(entry.into(), format!("must be zero or more, not {value}"));
        }
    }

    fn fraction(&mut self, entry: &str, value: f64) {
        self.between(entry, value, 0.0, 1.0);
    }

    fn between(&mut self, entry: &str, value: f64, low: f64, high: f64) {
        if !(low..=high).contains(&value) {
            self.fail(
                entry.into(),
                format!("must be between {low} and {high}, not {value}"),
            );
        }
    }

    fn range(&mut self, entry: &str, value: i64, low: i64, high: i64) {
        if !(low..=high).contains(&value) {
            self.fail(entry.into(), format!("{value} is outside {low}–{high}"));
        }
    }
}

/// Checks the rules files that parsed.
pub(super) fn rules(rules: &Rules, errors: &mut Vec<AssetError>) {
    if let Some(troops) = &rules.troops {
        let mut f = Fields {
            source: &troops.source,
            errors,
        };
        for (name, spec) in [
            ("infantry", &troops.value.infantry),
            ("cavalry", &troops.value.cavalry),
            ("archer", &troops.value.archer),
        ] {
            f.between(&format!("[{name}] mass"), spec.mass, 0.01, 1e6);
            f.between(&format!("[{name}] radius"), spec.radius, 0.1, 50.0);
            f.between(&format!("[{name}] max_speed"), spec.max_speed, 0.01, 100.0);
            f.between(&format!("[{name}] hit_points"), spec.hit_points, 0.01, 1e6);
            f.between(&format!("[{name}] attack"), spec.attack, 0.01, 1e6);
            f.between(&format!("[{name}] defense"), spec.defense, 0.0, 1e6);
            f.between(&format!("[{name}] range"), spec.range, 0.01, 1_000.0);
            f.between(&format!("[{name}] cooldown"), spec.cooldown, 0.01, 600.0);
        }
    }
    if let Some(positions) = &rules.positions {
        let mut f = Fields {
            source: &positions.source,
            errors,
        };
        let mut levels: HashMap<i64, PositionKind> = HashMap::new();
        for kind in PositionKind::ALL {
            let card = positions.value.get(kind);
            let name = kind.name();
            f.range(&format!("[{name}] level"), card.level, 1, 5);
            if let Some(other) = levels.insert(card.level, kind) {
                f.fail(
                    format!("[{name}] level"),
                    format!("level {} is also the level of {}", card.level, other.name()),
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
            for appointed in &card.appoints {
                let lower = positions.value.get(*appointed).level > card.level;
                if *appointed == PositionKind::Emperor || !lower {
                    f.fail(
                        format!("[{name}] appoints"),
                        format!(
                            "may only name cards of a lower rank, not {}",
                            appointed.name()
                        ),
                    );
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
        f.range(&format!("[build] {name}_step"), step, 1, max.max(1));
    }
    let p = &b.presence;
    f.range("[presence] online_window", p.online_window, 1, i64::MAX);
    f.range("[presence] protection", p.protection, 0, i64::MAX);
    f.range(
        "[presence] ai_delegate_until",
        p.ai_delegate_until,
        p.protection.max(0),
        i64::MAX,
    );
    f.range(
        "[nation] corps_commanders_max",
        b.nation.corps_commanders_max,
        0,
        1_000,
    );
    f.range("[nation] tax_rate_max", b.nation.tax_rate_max, 0, 50);
    let j = &b.join;
    f.range("[join] stat_min", j.stat_min, 1, 100);
    f.range("[join] stat_max", j.stat_max, j.stat_min.clamp(1, 100), 100);
    f.range("[join] troops", j.troops, 0, 1_000_000);
    f.range("[join] training", j.training, 0, 100);
    f.range("[join] morale", j.morale, 0, 100);
    let ai = &b.ai;
    f.range("[ai] think_every", ai.think_every, 1, i64::MAX);
    f.fraction("[ai] recruit_below", ai.recruit_below);
    f.range("[ai] train_up_to", ai.train_up_to, 0, 100);
    f.positive("[ai] attack_ratio", ai.attack_ratio);
    f.fraction("[ai] attack_min_share", ai.attack_min_share);
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

/// Errors about entries of one scenario file.
struct Entries<'a> {
    source: &'a Source,
    errors: &'a mut Vec<AssetError>,
}

impl Entries<'_> {
    fn fail<T>(&mut self, item: &Spanned<T>, entry: &str, message: String) {
        let error = self
            .source
            .error_at(item.span().start, Some(entry.to_string()), message);
        self.errors.push(error);
    }

    fn range<T>(
        &mut self,
        item: &Spanned<T>,
        entry: &str,
        field: &str,
        value: i64,
        low: i64,
        high: i64,
    ) {
        if !(low..=high).contains(&value) {
            self.fail(
                item,
                entry,
                format!("{field} {value} is outside {low}–{high}"),
            );
        }
    }

    /// Checks the ids of `items` (shape, uniqueness) and maps each id to its first entry.
    fn index<'s, T>(
        &mut self,
        kind: &str,
        items: &'s [Spanned<T>],
        id_of: impl Fn(&T) -> &str,
    ) -> HashMap<&'s str, &'s T> {
        let mut map = HashMap::new();
        for item in items {
            let id = id_of(item.get_ref());
            let entry = format!("{kind} \"{id}\"");
            if !is_valid_id(id) {
                self.fail(
                    item,
                    &entry,
                    "an id must be 1-48 characters of [a-z0-9_-]".into(),
                );
            }
            if map.contains_key(id) {
                self.fail(item, &entry, format!("duplicate id \"{id}\""));
            } else {
                map.insert(id, item.get_ref());
            }
        }
        map
    }
}

const U32_MAX: i64 = u32::MAX as i64;
/// Largest map coordinate, either way.
const MAP_LIMIT: f64 = 1_000_000.0;

/// Checks one scenario's files that parsed, against each other and the rules files.
pub(super) fn scenario(files: &ScenarioFiles, rules: &Rules, errors: &mut Vec<AssetError>) {
    let balance = rules.balance.as_ref().map(|b| &b.value);
    if let Some(meta) = &files.meta {
        let start: GameDate = meta.value.start;
        if !start.is_valid() {
            errors.push(meta.source.error(
                Some("start".into()),
                format!(
                    "{}-{}-{} hour {} is not a calendar date (months 1–12, days 1–30, hours 0–23)",
                    start.year, start.month, start.day, start.hour
                ),
            ));
        }
        if meta.value.name.trim().is_empty() {
            errors.push(
                meta.source
                    .error(Some("name".into()), "must not be empty".into()),
            );
        }
    }

    // Ids of each kind, first occurrence wins; `None` where the file did not parse.
    let nations = files.nations.as_ref().map(|file| {
        Entries {
            source: &file.source,
            errors,
        }
        .index("nation", &file.value.nation, |n| &n.id)
    });
    let cities = files.cities.as_ref().map(|file| {
        Entries {
            source: &file.source,
            errors,
        }
        .index("city", &file.value.city, |c| &c.id)
    });
    let generals = files.generals.as_ref().map(|file| {
        Entries {
            source: &file.source,
            errors,
        }
        .index("general", &file.value.general, |g| &g.id)
    });

    if let Some(file) = &files.nations {
        let mut e = Entries {
            source: &file.source,
            errors,
        };
        let tax_max = balance.map_or(100, |b| b.nation.tax_rate_max);
        for item in &file.value.nation {
            let n = item.get_ref();
            let entry = format!("nation \"{}\"", n.id);
            if n.name.trim().is_empty() {
                e.fail(item, &entry, "name must not be empty".into());
            }
            if !is_color(&n.color) {
                e.fail(
                    item,
                    &entry,
                    format!("color \"{}\" is not #rrggbb", n.color),
                );
            }
            e.range(item, &entry, "gold", n.gold, 0, i64::MAX);
            e.range(item, &entry, "rice", n.rice, 0, i64::MAX);
            e.range(item, &entry, "tax_rate", n.tax_rate, 0, tax_max);
            if let Some(cities) = &cities {
                match cities.get(n.capital.as_str()).map(|c| c.owner.as_deref()) {
                    None => e.fail(
                        item,
                        &entry,
                        format!("capital \"{}\" is not a city", n.capital),
                    ),
                    Some(owner) if owner != Some(n.id.as_str()) => e.fail(
                        item,
                        &entry,
                        format!(
                            "capital \"{}\" is not owned by this nation (owner: {})",
                            n.capital,
                            owner.unwrap_or("none")
                        ),
                    ),
                    Some(_) => {}
                }
            }
            if let Some(generals) = &generals {
                match generals.get(n.ruler.as_str()) {
                    None => e.fail(
                        item,
                        &entry,
                        format!("ruler \"{}\" is not a general", n.ruler),
                    ),
                    Some(g) if g.nation.as_deref() != Some(n.id.as_str()) => e.fail(
                        item,
                        &entry,
                        format!("ruler \"{}\" does not belong to this nation", n.ruler),
                    ),
                    Some(_) => {}
                }
            }
        }
        let mut pairs = HashSet::new();
        for item in &file.value.relation {
            let r = item.get_ref();
            let [a, b] = &r.nations;
            let entry = format!("relation {a}/{b}");
            if let Some(nations) = &nations {
                for id in [a, b] {
                    if !nations.contains_key(id.as_str()) {
                        e.fail(item, &entry, format!("unknown nation \"{id}\""));
                    }
                }
            }
            if a == b {
                e.fail(item, &entry, "a nation has no relation with itself".into());
            } else if !pairs.insert(if a < b { (a, b) } else { (b, a) }) {
                e.fail(item, &entry, "this pair of nations is listed twice".into());
            }
        }
    }

    if let Some(file) = &files.cities {
        let mut e = Entries {
            source: &file.source,
            errors,
        };
        for item in &file.value.city {
            let c = item.get_ref();
            let entry = format!("city \"{}\"", c.id);
            if c.name.trim().is_empty() {
                e.fail(item, &entry, "name must not be empty".into());
            }
            for (axis, value) in [("x", c.x), ("y", c.y)] {
                if !(-MAP_LIMIT..=MAP_LIMIT).contains(&value) {
                    e.fail(
                        item,
                        &entry,
                        format!("{axis} {value} is outside ±{MAP_LIMIT}"),
                    );
                }
            }
            if let (Some(owner), Some(nations)) = (&c.owner, &nations)
                && !nations.contains_key(owner.as_str())
            {
                e.fail(item, &entry, format!("owner \"{owner}\" is not a nation"));
            }
            let build = balance.map(|b| &b.build);
            for (field, value, high) in [
                ("population", c.population, U32_MAX),
                (
                    "agriculture",
                    c.agriculture,
                    build.map_or(U32_MAX, |b| b.agriculture_max),
                ),
                (
                    "commerce",
                    c.commerce,
                    build.map_or(U32_MAX, |b| b.commerce_max),
                ),
                ("defense", c.defense, U32_MAX),
                ("walls", c.walls, build.map_or(U32_MAX, |b| b.walls_max)),
                ("gold", c.gold, i64::MAX),
                ("rice", c.rice, i64::MAX),
                ("garrison", c.garrison, U32_MAX),
            ] {
                e.range(item, &entry, field, value, 0, high);
            }
        }
    }

    if let Some(file) = &files.roads {
        let mut e = Entries {
            source: &file.source,
            errors,
        };
        let mut pairs = HashSet::new();
        let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
        for item in &file.value.road {
            let r = item.get_ref();
            let entry = format!("road {}-{}", r.from, r.to);
            let mut known = true;
            if let Some(cities) = &cities {
                for id in [&r.from, &r.to] {
                    if !cities.contains_key(id.as_str()) {
                        e.fail(item, &entry, format!("unknown city \"{id}\""));
                        known = false;
                    }
                }
            }
            e.range(item, &entry, "distance", r.distance, 1, U32_MAX);
            if r.from == r.to {
                e.fail(item, &entry, "a road must join two different cities".into());
            } else if !pairs.insert(if r.from < r.to {
                (&r.from, &r.to)
            } else {
                (&r.to, &r.from)
            }) {
                e.fail(item, &entry, "these two cities are joined twice".into());
            } else if known {
                graph.entry(&r.from).or_default().push(&r.to);
                graph.entry(&r.to).or_default().push(&r.from);
            }
        }
        if let (Some(cities), Some(cities_file)) = (&cities, &files.cities)
            && let Some(first) = cities_file.value.city.first()
        {
            let first = first.get_ref().id.as_str();
            let mut reached: HashSet<&str> = HashSet::from([first]);
            let mut queue = VecDeque::from([first]);
            while let Some(city) = queue.pop_front() {
                for next in graph.get(city).into_iter().flatten() {
                    if reached.insert(next) {
                        queue.push_back(next);
                    }
                }
            }
            let mut unreached: Vec<&str> = cities
                .keys()
                .copied()
                .filter(|c| !reached.contains(c))
                .collect();
            if !unreached.is_empty() {
                unreached.sort_unstable();
                errors.push(file.source.error(
                    None,
                    format!(
                        "the road graph is disconnected: {} cannot be reached from \"{first}\": {}",
                        if unreached.len() == 1 {
                            "1 city"
                        } else {
                            "these cities"
                        },
                        unreached.join(", ")
                    ),
                ));
            }
        }
    }

    if let Some(file) = &files.generals {
        let mut e = Entries {
            source: &file.source,
            errors,
        };
        let rulers: HashMap<&str, &str> = files
            .nations
            .iter()
            .flat_map(|n| &n.value.nation)
            .map(|n| (n.get_ref().ruler.as_str(), n.get_ref().id.as_str()))
            .collect();
        let mut unique_cards: HashSet<(&str, PositionKind)> = HashSet::new();
        let mut governed: HashSet<&str> = HashSet::new();
        let mut corps: HashMap<&str, i64> = HashMap::new();
        for item in &file.value.general {
            let g = item.get_ref();
            let entry = format!("general \"{}\"", g.id);
            if g.name.trim().is_empty() {
                e.fail(item, &entry, "name must not be empty".into());
            }
            for (field, value) in [
                ("leadership", g.leadership),
                ("strength", g.strength),
                ("intelligence", g.intelligence),
                ("politics", g.politics),
                ("charm", g.charm),
            ] {
                e.range(item, &entry, field, value, 1, 100);
            }
            e.range(item, &entry, "training", g.training, 0, 100);
            e.range(item, &entry, "morale", g.morale, 0, 100);
            let cap_multiplier = match (&g.position, &rules.positions) {
                (Some(kind), Some(p)) => p.value.get(*kind).recruit_cap_multiplier,
                _ => 1.0,
            };
            let cap = balance.map_or(U32_MAX, |b| {
                let cap = g.leadership.clamp(0, 100) as f64
                    * b.recruit.troops_per_leadership as f64
                    * cap_multiplier;
                (cap as i64).min(U32_MAX)
            });
            e.range(item, &entry, "troops", g.troops, 0, cap);
            if let (Some(nation), Some(nations)) = (&g.nation, &nations)
                && !nations.contains_key(nation.as_str())
            {
                e.fail(item, &entry, format!("nation \"{nation}\" does not exist"));
            }
            if let Some(cities) = &cities
                && !cities.contains_key(g.city.as_str())
            {
                e.fail(item, &entry, format!("city \"{}\" does not exist", g.city));
            }
            let ruler_of = rulers.get(g.id.as_str()).copied();
            if ruler_of.is_some() && !matches!(g.position, None | Some(PositionKind::Emperor)) {
                e.fail(
                    item,
                    &entry,
                    "a ruler holds the emperor card and no other".into(),
                );
            }
            if g.position_city.is_some() && g.position != Some(PositionKind::Governor) {
                e.fail(item, &entry, "position_city is only for a governor".into());
            }
            let Some(kind) = g.position else { continue };
            let Some(nation) = g.nation.as_deref() else {
                e.fail(item, &entry, "a ronin cannot hold a position".into());
                continue;
            };
            match kind {
                PositionKind::Emperor if ruler_of != Some(nation) => {
                    e.fail(
                        item,
                        &entry,
                        "only the nation's ruler holds the emperor card".into(),
                    );
                }
                PositionKind::Emperor => {}
                PositionKind::Chancellor | PositionKind::GrandGeneral => {
                    if !unique_cards.insert((nation, kind)) {
                        e.fail(
                            item,
                            &entry,
                            format!("nation \"{nation}\" already has a {}", kind.name()),
                        );
                    }
                }
                PositionKind::CorpsCommander => {
                    let count = corps.entry(nation).or_default();
                    *count += 1;
                    let max = balance.map_or(i64::MAX, |b| b.nation.corps_commanders_max);
                    if *count > max {
                        e.fail(
                            item,
                            &entry,
                            format!("nation \"{nation}\" has more than {max} corps commanders"),
                        );
                    }
                }
                PositionKind::Governor => match g.position_city.as_deref() {
                    None => e.fail(item, &entry, "a governor needs position_city".into()),
                    Some(city) => {
                        if let Some(cities) = &cities {
                            match cities.get(city).map(|c| c.owner.as_deref()) {
                                None => e.fail(item, &entry, format!("position_city \"{city}\" does not exist")),
                                Some(owner) if owner != Some(nation) => e.fail(
                                    item,
                                    &entry,
                                    format!("position_city \"{city}\" is not a city of nation \"{nation}\""),
                                ),
                                Some(_) => {}
                            }
                        }
                        if !governed.insert(city) {
                            e.fail(
                                item,
                                &entry,
                                format!("city \"{city}\" already has a governor"),
                            );
                        }
                    }
                },
            }
        }
    }
}

fn is_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

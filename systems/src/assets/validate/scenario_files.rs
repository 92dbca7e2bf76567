//! Checks of a scenario's files that parsed: ids unique and well formed, references between
//! files (a road to a known city, a general in a city that exists), and what a scenario must
//! obey (a capital its nation owns, a connected road graph, one chancellor per nation, ...).

use std::collections::{HashMap, HashSet, VecDeque};

use components::{
    data::{CardScope, Spanned},
    ids::is_valid_id,
    time::GameDate,
    world::PositionKind,
};

use crate::assets::{
    AssetError,
    load::{Bound, Rules, ScenarioFiles, Source},
};

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

    /// Checks a number held to `low`–`high`. A range error points at the value; the schema
    /// gives `envelope`, the widest the range can be whatever else the data says.
    #[allow(clippy::too_many_arguments)]
    fn range<T>(
        &mut self,
        item: &Spanned<T>,
        entry: &str,
        field: &str,
        value: i64,
        (low, high): (i64, i64),
        envelope: (i64, i64),
    ) {
        // The entry is named by its collection (`general "cao_cao"`).
        let collection = entry.split(' ').next().unwrap_or_default();
        self.source.note_bound(
            vec![collection.to_string(), field.to_string()],
            Bound {
                min: envelope.0 as f64,
                exclusive_min: false,
                max: envelope.1 as f64,
            },
        );
        if !(low..=high).contains(&value) {
            let at = self
                .source
                .field_offset(item.span(), field)
                .unwrap_or(item.span().start);
            let error = self.source.error_at(
                at,
                Some(entry.to_string()),
                format!("{field} {value} is outside {low}–{high}"),
            );
            self.errors.push(error);
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
pub(crate) fn scenario(files: &ScenarioFiles, rules: &Rules, errors: &mut Vec<AssetError>) {
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
            let any = (0, i64::MAX);
            e.range(item, &entry, "gold", n.gold, any, any);
            e.range(item, &entry, "rice", n.rice, any, any);
            e.range(item, &entry, "tax_rate", n.tax_rate, (0, tax_max), (0, 50));
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
                e.source.note_bound(
                    vec!["city".into(), axis.into()],
                    Bound {
                        min: -MAP_LIMIT,
                        exclusive_min: false,
                        max: MAP_LIMIT,
                    },
                );
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
                let envelope = (0, if high == i64::MAX { i64::MAX } else { U32_MAX });
                e.range(item, &entry, field, value, (0, high), envelope);
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
            e.range(
                item,
                &entry,
                "distance",
                r.distance,
                (1, U32_MAX),
                (1, U32_MAX),
            );
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
        let cards = rules.positions.as_ref().map(|p| &p.value);
        let ruler_card = cards.and_then(|c| c.ruler());
        let mut holders: HashMap<(&str, PositionKind), i64> = HashMap::new();
        let mut governed: HashSet<(&str, PositionKind)> = HashSet::new();
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
                e.range(item, &entry, field, value, (1, 100), (1, 100));
            }
            e.range(item, &entry, "training", g.training, (0, 100), (0, 100));
            e.range(item, &entry, "morale", g.morale, (0, 100), (0, 100));
            if let Some(troops) = &rules.troops
                && troops.value.get(g.troop_type).is_none()
            {
                e.fail(
                    item,
                    &entry,
                    format!("troop type \"{}\" is not in troops.toml", g.troop_type),
                );
            }
            let card = match (g.position, cards) {
                (Some(kind), Some(cards)) => match cards.get(kind) {
                    Some(card) => Some(card),
                    None => {
                        e.fail(
                            item,
                            &entry,
                            format!("position \"{kind}\" is not a card of positions.toml"),
                        );
                        continue;
                    }
                },
                _ => None,
            };
            let cap_multiplier = card.map_or(1.0, |c| c.recruit_cap_multiplier);
            let cap = balance.map_or(U32_MAX, |b| {
                let cap = g.leadership.clamp(0, 100) as f64
                    * b.recruit.troops_per_leadership as f64
                    * cap_multiplier;
                (cap as i64).min(U32_MAX)
            });
            e.range(item, &entry, "troops", g.troops, (0, cap), (0, U32_MAX));
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
            if ruler_of.is_some() && g.position.is_some() && g.position != ruler_card {
                e.fail(
                    item,
                    &entry,
                    "a ruler holds the ruler's card and no other".into(),
                );
            }
            let city_scope = card.is_some_and(|c| c.scope == CardScope::City);
            if g.position_city.is_some() && !city_scope {
                e.fail(
                    item,
                    &entry,
                    "position_city is only for a card of a city's scope (a governor's)".into(),
                );
            }
            let (Some(kind), Some(card)) = (g.position, card) else {
                continue;
            };
            let Some(nation) = g.nation.as_deref() else {
                e.fail(item, &entry, "a ronin cannot hold a position".into());
                continue;
            };
            match card.scope {
                CardScope::Ruler if ruler_of != Some(nation) => {
                    e.fail(
                        item,
                        &entry,
                        format!("only the nation's ruler holds the {kind} card"),
                    );
                }
                CardScope::Ruler => {}
                CardScope::Nation => {
                    let count = holders.entry((nation, kind)).or_default();
                    *count += 1;
                    if *count > card.max_holders {
                        e.fail(
                            item,
                            &entry,
                            format!(
                                "nation \"{nation}\" has more than {} holders of the {kind} card",
                                card.max_holders
                            ),
                        );
                    }
                }
                CardScope::City => match g.position_city.as_deref() {
                    None => e.fail(item, &entry, format!("the {kind} card needs position_city")),
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
                        if !governed.insert((city, kind)) {
                            e.fail(
                                item,
                                &entry,
                                format!("city \"{city}\" already has a holder of the {kind} card"),
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

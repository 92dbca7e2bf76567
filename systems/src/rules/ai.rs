//! The AI (docs/rules.md#the-ai): NPC generals always, and offline players' generals while
//! their AI delegate acts. Simple but real: defend (a general attacks only when another of its
//! nation stays behind in its city), develop (recruit when troops run low, train, build in
//! cities it may build in), and attack weak neighbours at war. A delegate only trains and
//! recruits; it never marches.
//!
//! Each AI-driven general thinks once every `think_every` game seconds, at an offset derived
//! from its id, so decisions are spread across ticks and the same world decides the same way.
//! Decisions become ordinary commands applied through [`apply_command`], with the same
//! validation and costs as a player's.

use std::{cmp::Reverse, collections::BTreeSet};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use components::{
    command::{
        BuildArgs, BuildKind, Command, CommandBody, CommandType, Issuer, MoveArgs, NationArgs,
        NoArgs, RecruitArgs,
    },
    time::{GameClock, SECONDS_PER_DAY},
    world::{City, General, GeneralStatus, Nation, NationStatus, Registry, Relation},
};
use foldhash::HashMap;

use crate::{
    assets::{Data, GameData},
    rules::{
        cards::troop_cap,
        commands::{Cost, apply_command},
        hostility::{defenders_in, is_hostile, only_protected_defenders},
        paths::shortest_path,
    },
    schedule::ClockStep,
};

/// Whether the AI runs at all.
#[derive(Resource, Clone, Copy, Debug)]
pub struct AiSettings {
    pub enabled: bool,
}

/// AI-driven generals ordered by their thinking offset.
#[derive(Resource, Default, Debug)]
pub struct AiRoster {
    /// (offset within `think_every`, general), sorted.
    entries: Vec<(i64, Entity)>,
    /// Generals in the registry when the roster was built; a change rebuilds it.
    built_for: usize,
    period: i64,
}

fn offset_of(id: &str, period: i64) -> i64 {
    (components::ids::fnv1a(id.as_bytes()) % period.max(1) as u64) as i64
}

impl AiRoster {
    fn refresh(&mut self, world: &World, period: i64) {
        let registry = world.resource::<Registry>();
        if self.built_for == registry.generals.len() && self.period == period {
            return;
        }
        let mut entries: Vec<(i64, &str, Entity)> = registry
            .generals
            .iter()
            .map(|(id, e)| (offset_of(id, period), id.as_str(), *e))
            .collect();
        entries.sort();
        self.entries = entries.into_iter().map(|(o, _, e)| (o, e)).collect();
        self.built_for = registry.generals.len();
        self.period = period;
    }

    /// Generals whose thinking time falls in (`before`, `now`].
    fn due(&self, before: i64, now: i64) -> Vec<Entity> {
        let period = self.period.max(1);
        if now - before >= period {
            return self.entries.iter().map(|(_, e)| *e).collect();
        }
        let (a, b) = (before.rem_euclid(period), now.rem_euclid(period));
        let range = |low: i64, high: i64| {
            // Offsets in (low, high].
            let start = self.entries.partition_point(|(o, _)| *o <= low);
            let end = self.entries.partition_point(|(o, _)| *o <= high);
            self.entries[start..end].iter().map(|(_, e)| *e)
        };
        if a <= b {
            range(a, b).collect()
        } else {
            range(a, period).chain(range(-1, b)).collect()
        }
    }
}

/// Orders the World's generals by their thinking offset ahead of the first tick (so the
/// first tick does not pay for it).
pub fn prepare_roster(world: &mut World) {
    let period = world.resource::<Data>().balance.ai.think_every.max(1);
    let mut roster = world.remove_resource::<AiRoster>().unwrap_or_default();
    roster.refresh(world, period);
    world.insert_resource(roster);
}

/// Strategy: the AI-driven generals due to think decide, and their commands are applied.
pub fn run_ai(world: &mut World) {
    if !world
        .get_resource::<AiSettings>()
        .is_some_and(|s| s.enabled)
    {
        return;
    }
    let period = world.resource::<Data>().balance.ai.think_every.max(1);
    let now = world.resource::<GameClock>().game_seconds;
    let before = now - world.resource::<ClockStep>().0.max(0);
    if now == before {
        return;
    }
    let mut roster = world.remove_resource::<AiRoster>().unwrap_or_default();
    roster.refresh(world, period);
    let due = roster.due(before, now);
    world.insert_resource(roster);
    let data = world.resource::<Data>().0.clone();
    // Who speaks for each nation and the nations' soldiers, counted once per tick when a
    // speaker is due (a tick's own decisions change neither much).
    let mut nations: Option<Nations> = None;
    for entity in due {
        let Some(general) = world.get::<General>(entity) else {
            continue;
        };
        if general.owner.is_some() && !general.ai_delegate {
            continue;
        }
        let mut decisions = Vec::new();
        if general.owner.is_none() && may_speak(&data, general) {
            let nations = nations.get_or_insert_with(|| Nations::count(world, &data));
            decisions.extend(diplomacy(world, &data, general, nations));
        }
        decisions.extend(decide(world, &data, general));
        for (n, (acting, body)) in decisions.into_iter().enumerate() {
            let command = Command {
                id: format!("ai-{now}-{acting}-{n}"),
                issuer: Issuer::Ai,
                general: Some(acting),
                body,
                log_seq: 0,
                entry: None,
            };
            apply_command(world, &command);
        }
    }
}

fn cost_ok(data: &GameData, general: &General, command: CommandType) -> bool {
    Cost::of(data, command).affordable_by(general)
}

fn city<'w>(world: &'w World, id: &str) -> Option<&'w City> {
    world
        .resource::<Registry>()
        .cities
        .get(id)
        .and_then(|e| world.get::<City>(*e))
}

/// A command the AI decides: the acting general's id and what it does.
type Decision = (String, CommandBody);

/// Whether a general's card may declare war or make peace.
fn may_speak(data: &GameData, general: &General) -> bool {
    general.position.as_ref().is_some_and(|p| {
        let card = data.positions.card(p.kind);
        card.may_issue.contains(&CommandType::DeclareWar)
            || card.may_issue.contains(&CommandType::MakePeace)
    })
}

/// What the AI weighs its nations' affairs by, counted in one pass over the world.
struct Nations {
    /// Soldiers of each active nation: its generals' troops and its cities' garrisons.
    strength: HashMap<String, u64>,
    /// The NPC that speaks for each nation: the highest card that may declare war or make
    /// peace (the smallest id among equals).
    speaker: HashMap<String, (i64, String)>,
}

impl Nations {
    fn count(world: &World, data: &GameData) -> Nations {
        let registry = world.resource::<Registry>();
        // Hash maps: this visits every general (100,000 in the largest worlds) on a tick a
        // speaker is due.
        let mut strength: HashMap<String, u64> = registry
            .nations
            .values()
            .filter_map(|e| world.get::<Nation>(*e))
            .filter(|n| n.status == NationStatus::Active)
            .map(|n| (n.id.clone(), 0))
            .collect();
        let mut speaker: HashMap<String, (i64, String)> = HashMap::default();
        for general in registry
            .generals
            .values()
            .filter_map(|e| world.get::<General>(*e))
        {
            let Some(nation) = general.nation.as_deref() else {
                continue;
            };
            if let Some(s) = strength.get_mut(nation) {
                *s += u64::from(general.troops);
            }
            if general.owner.is_none()
                && let Some(position) = &general.position
                && may_speak(data, general)
            {
                let candidate = (data.positions.card(position.kind).level, general.id.clone());
                let best = speaker
                    .entry(nation.to_string())
                    .or_insert_with(|| candidate.clone());
                if candidate < *best {
                    *best = candidate;
                }
            }
        }
        for city in registry
            .cities
            .values()
            .filter_map(|e| world.get::<City>(*e))
        {
            if let Some(s) = city.owner.as_deref().and_then(|n| strength.get_mut(n)) {
                *s += u64::from(city.garrison);
            }
        }
        Nations { strength, speaker }
    }
}

/// A nation's affairs, decided by its highest NPC card that may: war on the weakest
/// neighbouring nation when strong enough and not already fighting enough wars, peace with the
/// strongest enemy when fighting several and weaker than them together. A relation that
/// changed less than `settle_days` ago stays as it is.
fn diplomacy(
    world: &World,
    data: &GameData,
    general: &General,
    nations: &Nations,
) -> Option<Decision> {
    let nation_id = general.nation.as_deref()?;
    let position = general.position.as_ref()?;
    let card = data.positions.card(position.kind);
    let may = |kind: CommandType| card.may_issue.contains(&kind) && cost_ok(data, general, kind);
    if !may(CommandType::DeclareWar) && !may(CommandType::MakePeace) {
        return None;
    }
    if nations.speaker.get(nation_id).map(|(_, id)| id.as_str()) != Some(general.id.as_str()) {
        return None;
    }
    let registry = world.resource::<Registry>();
    let strength = &nations.strength;
    let nation = registry
        .nations
        .get(nation_id)
        .and_then(|e| world.get::<Nation>(*e))?;
    let own = *strength.get(nation_id)?;
    let enemies: Vec<(&str, u64)> = nation
        .relations
        .iter()
        .filter(|(_, r)| **r == Relation::War)
        .filter_map(|(id, _)| {
            strength
                .get_key_value(id.as_str())
                .map(|(k, v)| (k.as_str(), *v))
        })
        .collect();
    let ai = &data.balance.ai;
    let now = world.resource::<GameClock>().game_seconds;
    // Game seconds since the relation with `other` last changed (the scenario's relations
    // count as old).
    let held_for = |other: &str| {
        nation
            .relations_since
            .get(other)
            .map_or(i64::MAX, |since| now - since)
    };
    let settle = ai.settle_days.max(0) * SECONDS_PER_DAY;
    if ai.peace_when_outnumbered && enemies.len() > 1 && may(CommandType::MakePeace) {
        let together: u64 = enemies.iter().map(|(_, s)| s).sum();
        if own < together
            && let Some((strongest, _)) = enemies
                .iter()
                .filter(|(id, _)| held_for(id) >= settle)
                .max_by_key(|(id, s)| (*s, Reverse(*id)))
        {
            return Some((
                general.id.clone(),
                CommandBody::MakePeace(NationArgs {
                    nation: (*strongest).to_string(),
                }),
            ));
        }
    }
    if (enemies.len() as i64) < ai.max_wars && may(CommandType::DeclareWar) {
        // Nations owning a city one road from one of ours.
        let mut neighbours = BTreeSet::new();
        for city in registry
            .cities
            .values()
            .filter_map(|e| world.get::<City>(*e))
        {
            if city.owner.as_deref() != Some(nation_id) {
                continue;
            }
            for road in &city.neighbors {
                if let Some(owner) = self::city(world, &road.city).and_then(|c| c.owner.as_deref())
                    && owner != nation_id
                {
                    neighbours.insert(owner);
                }
            }
        }
        let weakest = neighbours
            .into_iter()
            .filter(|n| nation.relations.get(*n) != Some(&Relation::War))
            .filter(|n| nation.relations.get(*n) != Some(&Relation::Alliance))
            .filter(|n| held_for(n) >= settle)
            .filter_map(|n| strength.get(n).map(|s| (*s, n)))
            .min();
        if let Some((theirs, target)) = weakest
            && own as f64 >= ai.war_ratio * theirs as f64
        {
            return Some((
                general.id.clone(),
                CommandBody::DeclareWar(NationArgs {
                    nation: target.to_string(),
                }),
            ));
        }
    }
    None
}

/// Whether a general is ready to march to war: its troops at `attack_min_share` of its cap, or
/// short of it by more than its city could pay for now.
fn ready(data: &GameData, general: &General, here: &City) -> bool {
    let wanted = data.balance.ai.attack_min_share * f64::from(troop_cap(data, general));
    let troops = f64::from(general.troops);
    if general.troops == 0 {
        return false;
    }
    if troops >= wanted {
        return true;
    }
    let recruit = &data.balance.recruit;
    let can_recruit = general.nation.is_some() && here.owner == general.nation;
    let affordable = if !can_recruit {
        0.0
    } else if recruit.gold_per_soldier > 0.0 {
        (here.gold.max(0) as f64 / recruit.gold_per_soldier).min(f64::from(here.population / 2))
    } else {
        f64::from(here.population / 2)
    };
    troops + affordable < wanted
}

/// What an AI-driven general does now, if anything: its own command, or an attack it leads
/// with the idle NPC generals of its nation in its city.
fn decide(world: &World, data: &GameData, general: &General) -> Vec<Decision> {
    if general.status != GeneralStatus::Idle {
        return Vec::new();
    }
    let ai = &data.balance.ai;
    let delegate = general.owner.is_some();
    let cap = troop_cap(data, general);
    let Some(here) = city(world, &general.city) else {
        return Vec::new();
    };
    let own_city = general.nation.is_some() && here.owner == general.nation;
    let mine = |body: CommandBody| vec![(general.id.clone(), body)];

    if !delegate
        && let Some(nation) = &general.nation
        && ready(data, general, here)
        && cost_ok(data, general, CommandType::Move)
        && let Some(attack) = attack(world, data, general, nation, here, own_city)
    {
        return attack;
    }

    if !delegate
        && own_city
        && let Some(nation) = &general.nation
        && ready(data, general, here)
        && cost_ok(data, general, CommandType::Move)
        && let Some(front) = to_the_front(world, general, nation, here)
    {
        return mine(CommandBody::Move(MoveArgs { to: front }));
    }

    if own_city
        && f64::from(general.troops) < ai.recruit_below * f64::from(cap)
        && cost_ok(data, general, CommandType::Recruit)
    {
        let recruit = &data.balance.recruit;
        let affordable = if recruit.gold_per_soldier > 0.0 {
            (here.gold.max(0) as f64 / recruit.gold_per_soldier) as u64
        } else {
            u64::MAX
        };
        let amount = u64::from(cap - general.troops)
            .min(recruit.amount_max.max(0) as u64)
            .min(u64::from(components::command::RECRUIT_AMOUNT_MAX))
            .min(affordable)
            .min(u64::from(here.population / 2));
        if amount >= 100 {
            return mine(CommandBody::Recruit(RecruitArgs {
                amount: amount as u32,
                troop_type: None,
            }));
        }
    }

    if i64::from(general.training) < ai.train_up_to && cost_ok(data, general, CommandType::Train) {
        return mine(CommandBody::Train(NoArgs {}));
    }

    if !delegate
        && own_city
        && cost_ok(data, general, CommandType::Build)
        && let Some(position) = &general.position
        && data
            .positions
            .card(position.kind)
            .may_issue
            .contains(&CommandType::Build)
        && (position.city.is_none() || position.city.as_deref() == Some(here.id.as_str()))
    {
        let build = &data.balance.build;
        let frontier = here
            .neighbors
            .iter()
            .filter_map(|road| city(world, &road.city))
            .any(|c| is_hostile(world, general.nation.as_deref(), c));
        let kind = if frontier && i64::from(here.walls) < build.walls_max {
            Some(BuildKind::Walls)
        } else if i64::from(here.agriculture) * build.commerce_max
            <= i64::from(here.commerce) * build.agriculture_max
            && i64::from(here.agriculture) < build.agriculture_max
        {
            Some(BuildKind::Agriculture)
        } else if i64::from(here.commerce) < build.commerce_max {
            Some(BuildKind::Commerce)
        } else {
            None
        };
        if let Some(kind) = kind {
            return mine(CommandBody::Build(BuildArgs { kind }));
        }
    }
    Vec::new()
}

/// Whether the AI would fight for `c`: a city of a nation at war with `nation`, or a neutral
/// one (held by a garrison, or taken by walking in).
fn contested(world: &World, nation: &str, c: &City) -> bool {
    (is_hostile(world, Some(nation), c) && !only_protected_defenders(world, c))
        || (c.owner.is_none() && c.garrison == 0)
}

/// Where a ready general far from any war goes: the nearest city of its nation that borders a
/// contested city, when its own does not and someone stays behind in it (its garrison or a
/// general with troops).
fn to_the_front(world: &World, general: &General, nation: &str, here: &City) -> Option<String> {
    let borders = |c: &City| {
        c.neighbors
            .iter()
            .filter_map(|road| city(world, &road.city))
            .any(|n| contested(world, nation, n))
    };
    if borders(here) {
        return None;
    }
    let held = here.garrison > 0
        || defenders_in(world, &here.id, nation)
            .iter()
            .any(|g| g.id != general.id && g.troops > 0);
    if !held {
        return None;
    }
    let own = |c: &City| c.owner.as_deref() == Some(nation);
    let path = shortest_path(world, &here.id, |c| own(c) && borders(c), own)?;
    path.cities.last().filter(|id| **id != here.id).cloned()
}

/// The attack `general` leads on the weakest neighbouring city it can take (hostile, or neutral
/// and undefended): itself and,
/// when it is not enough alone, the ready NPC generals of its nation in its city, strongest
/// first, until their troops reach `attack_ratio` times the city's defence (its garrison and
/// unprotected defenders, weighed up by its walls). In a city of its own nation someone stays
/// behind: its garrison or a general with troops.
fn attack(
    world: &World,
    data: &GameData,
    general: &General,
    nation: &str,
    here: &City,
    own_city: bool,
) -> Option<Vec<Decision>> {
    let ai = &data.balance.ai;
    let target = here
        .neighbors
        .iter()
        .filter_map(|road| city(world, &road.city))
        .filter(|c| contested(world, nation, c))
        .map(|c| {
            let defenders = u64::from(c.garrison)
                + c.owner.as_deref().map_or(0, |owner| {
                    defenders_in(world, &c.id, owner)
                        .iter()
                        .filter(|g| !g.protected)
                        .map(|g| u64::from(g.troops))
                        .sum()
                });
            let defence = defenders as f64 * (1.0 + ai.wall_weight * f64::from(c.walls));
            (defence.ceil() as u64, c.id.clone())
        })
        .min()?;
    let (defence, target) = target;
    let needed = ai.attack_ratio * defence as f64;
    let mut companions: Vec<&General> = if own_city {
        defenders_in(world, &here.id, nation)
            .into_iter()
            .filter(|g| g.id != general.id)
            .collect()
    } else {
        Vec::new()
    };
    companions.sort_by(|a, b| b.troops.cmp(&a.troops).then_with(|| a.id.cmp(&b.id)));
    // Who may go along: idle NPCs, ready and able to pay for the march.
    let able = |g: &General| {
        g.owner.is_none()
            && g.status == GeneralStatus::Idle
            && ready(data, g, here)
            && cost_ok(data, g, CommandType::Move)
    };
    let mut keep_back = own_city && here.garrison == 0;
    let mut marching = vec![general];
    let mut troops = f64::from(general.troops);
    for g in companions {
        if troops >= needed {
            break;
        }
        if keep_back && g.troops > 0 {
            // The first with troops holds the city.
            keep_back = false;
            continue;
        }
        if able(g) {
            marching.push(g);
            troops += f64::from(g.troops);
        }
    }
    if troops < needed || keep_back {
        return None;
    }
    Some(
        marching
            .into_iter()
            .map(|g| {
                (
                    g.id.clone(),
                    CommandBody::Move(MoveArgs { to: target.clone() }),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_general_thinks_once_per_period() {
        let period = 100;
        let mut roster = AiRoster {
            period,
            ..Default::default()
        };
        for i in 0..50u32 {
            roster.entries.push((
                offset_of(&format!("g{i}"), period),
                Entity::from_raw_u32(i).unwrap(),
            ));
        }
        roster.entries.sort();
        let mut seen = std::collections::HashMap::new();
        let mut t = 0;
        for step in [7, 13, 1, 30, 24, 25] {
            for e in roster.due(t, t + step) {
                *seen.entry(e).or_insert(0) += 1;
            }
            t += step;
        }
        assert_eq!(t, 100);
        assert_eq!(seen.len(), 50);
        assert!(seen.values().all(|n| *n == 1));
        assert_eq!(roster.due(0, 250).len(), 50);
    }
}

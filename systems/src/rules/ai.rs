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

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use components::{
    command::{
        BuildArgs, BuildKind, Command, CommandBody, CommandType, Issuer, MoveArgs, NoArgs,
        RecruitArgs,
    },
    time::GameClock,
    world::{City, General, GeneralStatus, Registry},
};

use crate::{
    assets::{Data, GameData},
    rules::{
        cards::troop_cap,
        commands::{Cost, apply_command},
        hostility::{defenders_in, is_hostile, only_protected_defenders},
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
    for entity in due {
        let Some(general) = world.get::<General>(entity) else {
            continue;
        };
        if general.owner.is_some() && !general.ai_delegate {
            continue;
        }
        let Some(body) = decide(world, &data, general) else {
            continue;
        };
        let command = Command {
            id: format!("ai-{now}-{}", general.id),
            issuer: Issuer::Ai,
            general: Some(general.id.clone()),
            body,
            log_seq: 0,
            entry: None,
        };
        apply_command(world, &command);
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

/// What an AI-driven general does now, if anything.
fn decide(world: &World, data: &GameData, general: &General) -> Option<CommandBody> {
    if general.status != GeneralStatus::Idle {
        return None;
    }
    let ai = &data.balance.ai;
    let delegate = general.owner.is_some();
    let cap = troop_cap(data, general);
    let here = city(world, &general.city)?;
    let own_city = general.nation.is_some() && here.owner == general.nation;

    if !delegate
        && let Some(nation) = &general.nation
        && f64::from(general.troops) >= ai.attack_min_share * f64::from(cap)
        && cost_ok(data, general, CommandType::Move)
    {
        let stays_behind = own_city
            && defenders_in(world, &here.id, nation)
                .iter()
                .any(|g| g.id != general.id && g.troops > 0);
        if stays_behind || !own_city {
            let weakest = here
                .neighbors
                .iter()
                .filter_map(|road| city(world, &road.city))
                .filter(|c| {
                    is_hostile(world, Some(nation), c) && !only_protected_defenders(world, c)
                })
                .map(|c| {
                    let defence = u64::from(c.garrison)
                        + c.owner.as_deref().map_or(0, |owner| {
                            defenders_in(world, &c.id, owner)
                                .iter()
                                .filter(|g| !g.protected)
                                .map(|g| u64::from(g.troops))
                                .sum()
                        });
                    (defence, c.id.clone())
                })
                .min();
            if let Some((defence, target)) = weakest
                && f64::from(general.troops) >= ai.attack_ratio * defence as f64
            {
                return Some(CommandBody::Move(MoveArgs { to: target }));
            }
        }
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
            return Some(CommandBody::Recruit(RecruitArgs {
                amount: amount as u32,
            }));
        }
    }

    if i64::from(general.training) < ai.train_up_to && cost_ok(data, general, CommandType::Train) {
        return Some(CommandBody::Train(NoArgs {}));
    }

    if !delegate
        && own_city
        && cost_ok(data, general, CommandType::Build)
        && let Some(position) = &general.position
        && data
            .positions
            .get(position.kind)
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
            return Some(CommandBody::Build(BuildArgs { kind }));
        }
    }
    None
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

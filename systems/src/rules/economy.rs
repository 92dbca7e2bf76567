//! The economy (docs/rules.md#economy), at each game-day boundary the tick crosses: cities
//! produce gold from commerce and population; troops eat rice (garrisons from their city,
//! a nation's generals from the nation's stores, ronin from the city they are in) and unfed
//! soldiers desert; the harvest fills granaries on the first day of the harvest month; on
//! the tax day nations collect their tax rate of their cities' gold and rice.
//!
//! Gold enters the world only here (production) and leaves only by recruiting; taxes move it.

use std::collections::{BTreeMap, HashMap};

use bevy_ecs::prelude::*;
use components::{
    events::{EventKind, aggregate},
    time::{GameClock, SECONDS_PER_DAY},
    world::{City, General, Nation, NationStatus, WorldInfo},
};

use crate::{assets::Data, event_log::Outbox, schedule::ClockStep};

/// Runs one game day's economy for each day boundary this tick crossed.
#[allow(clippy::too_many_arguments)]
pub fn run_economy(
    clock: Res<GameClock>,
    step: Res<ClockStep>,
    data: Res<Data>,
    info: Res<WorldInfo>,
    mut outbox: ResMut<Outbox>,
    mut cities: Query<&mut City>,
    mut generals: Query<&mut General>,
    mut nations: Query<&mut Nation>,
) {
    let start = clock.start.calendar_seconds();
    let before = (start + clock.game_seconds - step.0.max(0)).div_euclid(SECONDS_PER_DAY);
    let now = (start + clock.game_seconds).div_euclid(SECONDS_PER_DAY);
    for day in before + 1..=now {
        let at = day * SECONDS_PER_DAY - start;
        let date = clock.start.after(at);
        let economy = &data.balance.economy;
        // Rice a number of soldiers eats in a day.
        let ration =
            |soldiers: u32| (f64::from(soldiers) * economy.rice_per_soldier_per_day).ceil() as i64;
        let mut gold_produced = 0i64;
        let mut rice_eaten = 0i64;
        let mut deserted = 0i64;

        // Production and garrison upkeep, city by city.
        for mut city in &mut cities {
            let gold = (f64::from(city.commerce)
                * economy.gold_per_commerce_per_day
                * f64::from(city.population)
                / economy.population_unit.max(1) as f64)
                .floor() as i64;
            let need = ration(city.garrison);
            let eaten = need.min(city.rice.max(0));
            let lost = if need > eaten && need > 0 {
                let shortage = (need - eaten) as f64 / need as f64;
                (f64::from(city.garrison) * shortage * economy.desertion_per_day).ceil() as u32
            } else {
                0
            };
            if gold != 0 || eaten != 0 || lost != 0 {
                city.gold += gold;
                city.rice -= eaten;
                city.garrison -= lost.min(city.garrison);
            }
            gold_produced += gold;
            rice_eaten += eaten;
            deserted += i64::from(lost);
        }

        // Generals eat from their nation's stores; ronin from the city they are in.
        let mut nation_need: HashMap<String, i64> = HashMap::new();
        let mut ronin_need: HashMap<String, i64> = HashMap::new();
        for general in &generals {
            if general.troops == 0 {
                continue;
            }
            let need = ration(general.troops);
            let (map, key) = match &general.nation {
                Some(nation) => (&mut nation_need, nation),
                None => (&mut ronin_need, &general.city),
            };
            match map.get_mut(key.as_str()) {
                Some(total) => *total += need,
                None => {
                    map.insert(key.clone(), need);
                }
            }
        }
        // Share of each group's soldiers left unfed.
        let mut nation_short: HashMap<String, f64> = HashMap::new();
        let mut ronin_short: HashMap<String, f64> = HashMap::new();
        for mut nation in &mut nations {
            let need = nation_need.get(&nation.id).copied().unwrap_or(0);
            if need == 0 || nation.status == NationStatus::Destroyed {
                continue;
            }
            let eaten = need.min(nation.rice.max(0));
            nation.rice -= eaten;
            rice_eaten += eaten;
            if eaten < need {
                nation_short.insert(nation.id.clone(), (need - eaten) as f64 / need as f64);
            }
        }
        if !ronin_need.is_empty() {
            for mut city in &mut cities {
                if let Some(need) = ronin_need.get(&city.id).copied() {
                    let eaten = need.min(city.rice.max(0));
                    city.rice -= eaten;
                    rice_eaten += eaten;
                    if eaten < need {
                        ronin_short.insert(city.id.clone(), (need - eaten) as f64 / need as f64);
                    }
                }
            }
        }
        if !nation_short.is_empty() || !ronin_short.is_empty() {
            for mut general in &mut generals {
                let share = match &general.nation {
                    Some(nation) => nation_short.get(nation),
                    None => ronin_short.get(&general.city),
                };
                if let Some(share) = share.copied() {
                    let lost = (f64::from(general.troops) * share * economy.desertion_per_day)
                        .ceil() as u32;
                    let lost = lost.min(general.troops);
                    if lost > 0 {
                        general.troops -= lost;
                        deserted += i64::from(lost);
                    }
                }
            }
        }

        // The harvest, on the first day of the harvest month.
        if i64::from(date.month) == economy.harvest_month && date.day == 1 {
            let mut harvested = 0i64;
            for mut city in &mut cities {
                let rice =
                    (f64::from(city.agriculture) * economy.rice_per_agriculture).floor() as i64;
                if rice > 0 {
                    city.rice += rice;
                    harvested += rice;
                }
            }
            outbox.emit(
                at,
                aggregate("world", &info.name),
                EventKind::HarvestGathered { rice: harvested },
            );
        }

        // Taxes, on the tax day of each month.
        if i64::from(date.day) == economy.tax_day {
            let mut collected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            let rates: BTreeMap<String, u8> = nations
                .iter()
                .filter(|n| n.status == NationStatus::Active)
                .map(|n| (n.id.clone(), n.tax_rate))
                .collect();
            for mut city in &mut cities {
                let Some(owner) = city.owner.clone() else {
                    continue;
                };
                let Some(rate) = rates.get(&owner) else {
                    continue;
                };
                let gold = city.gold.max(0) * i64::from(*rate) / 100;
                let rice = city.rice.max(0) * i64::from(*rate) / 100;
                if gold > 0 || rice > 0 {
                    city.gold -= gold;
                    city.rice -= rice;
                    let entry = collected.entry(owner).or_default();
                    entry.0 += gold;
                    entry.1 += rice;
                }
            }
            for mut nation in &mut nations {
                if let Some((gold, rice)) = collected.remove(&nation.id) {
                    nation.gold += gold;
                    nation.rice += rice;
                    outbox.emit(
                        at,
                        aggregate("nation", &nation.id),
                        EventKind::TaxesCollected {
                            nation: nation.id.clone(),
                            gold,
                            rice,
                        },
                    );
                }
            }
        }

        outbox.emit(
            at,
            aggregate("world", &info.name),
            EventKind::DayEnded {
                day: day - start.div_euclid(SECONDS_PER_DAY),
                gold_produced,
                rice_eaten,
                soldiers_deserted: deserted,
            },
        );
    }
}

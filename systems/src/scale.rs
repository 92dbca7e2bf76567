//! A synthetic world of any size, for benchmarks: a square grid of cities joined by roads,
//! nations holding square blocks of it (each at war with its eastern neighbour), and
//! generals spread evenly over the cities, with the designer rules in force. Deterministic:
//! the same sizes give the same world.

use components::{
    data::{
        CitiesFile, CityDef, GeneralDef, GeneralsFile, NationDef, NationsFile, RelationDef,
        RoadDef, RoadsFile, ScenarioFile, Spanned,
    },
    time::GameDate,
    world::{Relation, TroopType},
};

use crate::assets::{GameData, RulesData, Scenario};

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

/// A world of about `cities` cities (rounded to a square grid), `nations` nations (rounded
/// to a square) and `generals` generals.
pub fn scaled_world(rules: RulesData, cities: usize, nations: usize, generals: usize) -> GameData {
    let types = crate::battle::setup::bench_types(
        &rules.troops,
        &[TroopType::INFANTRY, TroopType::CAVALRY, TroopType::ARCHER],
    );
    let side = (cities as f64).sqrt().ceil().max(2.0) as usize;
    let blocks = (nations as f64).sqrt().ceil().clamp(1.0, side as f64) as usize;
    let block = side.div_ceil(blocks);
    let city_id = |x: usize, y: usize| format!("c{x}_{y}");
    let nation_of = |x: usize, y: usize| format!("n{}_{}", x / block, y / block);

    let mut city_defs = Vec::with_capacity(side * side);
    let mut roads = Vec::new();
    for y in 0..side {
        for x in 0..side {
            city_defs.push(spanned(CityDef {
                id: city_id(x, y),
                name: format!("City {x},{y}"),
                x: (x * 10) as f64,
                y: (y * 10) as f64,
                owner: Some(nation_of(x, y)),
                population: 50_000 + ((x * 7 + y * 13) % 50) as i64 * 1_000,
                agriculture: 300,
                commerce: 300,
                defense: 200,
                walls: 1,
                gold: 1_000,
                rice: 5_000,
                garrison: 500,
            }));
            if x + 1 < side {
                roads.push(spanned(RoadDef {
                    from: city_id(x, y),
                    to: city_id(x + 1, y),
                    distance: 100,
                }));
            }
            if y + 1 < side {
                roads.push(spanned(RoadDef {
                    from: city_id(x, y),
                    to: city_id(x, y + 1),
                    distance: 100,
                }));
            }
        }
    }

    // Generals round-robin over the cities; the first in each nation's corner city rules it.
    let mut general_defs = Vec::with_capacity(generals);
    let mut rulers = std::collections::BTreeMap::new();
    for i in 0..generals {
        let (x, y) = (i % side, (i / side) % side);
        let nation = nation_of(x, y);
        let id = format!("g{i}");
        let corner = x % block == 0 && y % block == 0;
        if corner && !rulers.contains_key(&nation) {
            rulers.insert(nation.clone(), (id.clone(), city_id(x, y)));
        }
        let stat = |k: usize| 30 + ((i * 31 + k * 17) % 70) as i64;
        general_defs.push(spanned(GeneralDef {
            id,
            name: format!("General {i}"),
            nation: Some(nation),
            city: city_id(x, y),
            leadership: stat(0),
            strength: stat(1),
            intelligence: stat(2),
            politics: stat(3),
            charm: stat(4),
            troops: 1_000 + (i % 40) as i64 * 100,
            troop_type: types[i % types.len().max(1)],
            training: 40 + (i % 50) as i64,
            morale: 60,
            position: None,
            position_city: None,
        }));
    }

    let mut nation_defs = Vec::new();
    let mut relations = Vec::new();
    for by in 0..blocks {
        for bx in 0..blocks {
            let id = format!("n{bx}_{by}");
            let Some((ruler, capital)) = rulers.get(&id).cloned() else {
                continue;
            };
            nation_defs.push(spanned(NationDef {
                id: id.clone(),
                name: format!("Nation {bx},{by}"),
                color: "#808080".into(),
                ruler,
                capital,
                gold: 10_000,
                rice: 100_000,
                tax_rate: 10,
            }));
            let east = format!("n{}_{by}", bx + 1);
            if bx + 1 < blocks && rulers.contains_key(&east) {
                relations.push(spanned(RelationDef {
                    nations: [id, east],
                    state: Relation::War,
                }));
            }
        }
    }
    // Cities of nations that got no ruler (too few generals) stay neutral.
    for city in &mut city_defs {
        let owner = city.get_ref().owner.clone();
        if owner.is_some_and(|o| !rulers.contains_key(&o)) {
            *city = spanned(CityDef {
                owner: None,
                ..city.get_ref().clone()
            });
        }
    }
    for general in &mut general_defs {
        let nation = general.get_ref().nation.clone();
        if nation.is_some_and(|n| !rulers.contains_key(&n)) {
            *general = spanned(GeneralDef {
                nation: None,
                ..general.get_ref().clone()
            });
        }
    }

    GameData {
        troops: rules.troops,
        positions: rules.positions,
        commands: rules.commands,
        balance: rules.balance,
        scenario: Scenario {
            id: format!("scaled-{}x{side}-{generals}", side),
            meta: ScenarioFile {
                name: "Scaled".into(),
                description: "a synthetic world for benchmarks".into(),
                start: GameDate {
                    year: 190,
                    month: 1,
                    day: 1,
                    hour: 0,
                },
            },
            nations: NationsFile {
                nation: nation_defs,
                relation: relations,
            },
            cities: CitiesFile { city: city_defs },
            roads: RoadsFile { road: roads },
            generals: GeneralsFile {
                general: general_defs,
            },
        },
        data_hash: format!("scaled-{side}-{blocks}-{generals}"),
        scenario_hash: format!("scaled-{side}-{blocks}-{generals}"),
    }
}

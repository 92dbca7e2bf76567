//! Building a new World from a scenario: nations, cities and generals as entities, with the
//! resources every schedule relies on, and the `WorldCreated` event that opens the log.

use std::{collections::BTreeMap, sync::Arc};

use bevy_ecs::world::World;
use components::{
    data::{BalanceFile, PositionsFile},
    events::{EventKind, aggregate},
    time::GameClock,
    world::{
        City, General, GeneralStatus, MilliCp, Nation, NationStatus, Position, PositionKind,
        Registry, Relation, Road, Stats, WorldInfo,
    },
};

use crate::{
    assets::{Data, GameData},
    event_log::Outbox,
};

/// What the World needs to know about itself beyond the designer data.
#[derive(Clone, Debug)]
pub struct WorldSettings {
    /// The world's name (`--world`).
    pub name: String,
    /// Game seconds per real second.
    pub speed: f64,
}

/// Command-point maxima (whole points) of a general with these stats and card.
pub fn cp_maxima(
    stats: &Stats,
    position: Option<PositionKind>,
    balance: &BalanceFile,
    positions: &PositionsFile,
) -> (u32, u32) {
    let cp = &balance.command_points;
    let (pcp_bonus, mcp_bonus) = position.map_or((0, 0), |kind| {
        let card = positions.card(kind);
        (card.pcp_max_bonus, card.mcp_max_bonus)
    });
    let pcp = cp.pcp_max_base as f64 + stats.politics as f64 * cp.pcp_max_per_politics;
    let mcp = cp.mcp_max_base as f64 + stats.leadership as f64 * cp.mcp_max_per_leadership;
    let max = i64::from(u32::MAX / MilliCp::PER_POINT);
    (
        (pcp.floor() as i64).saturating_add(pcp_bonus).clamp(0, max) as u32,
        (mcp.floor() as i64).saturating_add(mcp_bonus).clamp(0, max) as u32,
    )
}

/// Fills an empty World from validated data: resources, entities, and `WorldCreated`.
pub fn spawn_world(world: &mut World, data: Arc<GameData>, settings: &WorldSettings) {
    let scenario = &data.scenario;
    let mut registry = Registry::default();
    let mut outbox = Outbox::new(0);

    let nation_ids: Vec<&str> = scenario
        .nations
        .nation
        .iter()
        .map(|n| n.get_ref().id.as_str())
        .collect();
    let mut relations: BTreeMap<(&str, &str), Relation> = BTreeMap::new();
    for relation in &scenario.nations.relation {
        let [a, b] = &relation.get_ref().nations;
        relations.insert((a, b), relation.get_ref().state);
        relations.insert((b, a), relation.get_ref().state);
    }
    let rulers: BTreeMap<&str, &str> = scenario
        .nations
        .nation
        .iter()
        .map(|n| (n.get_ref().ruler.as_str(), n.get_ref().id.as_str()))
        .collect();

    for def in scenario.nations.nation.iter().map(|n| n.get_ref()) {
        let nation = Nation {
            id: def.id.clone(),
            name: def.name.clone(),
            color: def.color.clone(),
            status: NationStatus::Active,
            ruler: Some(def.ruler.clone()),
            capital: Some(def.capital.clone()),
            gold: def.gold,
            rice: def.rice,
            tax_rate: def.tax_rate as u8,
            relations: nation_ids
                .iter()
                .filter(|other| **other != def.id)
                .map(|other| {
                    let state = relations.get(&(def.id.as_str(), *other)).copied();
                    (other.to_string(), state.unwrap_or(Relation::Peace))
                })
                .collect(),
            relations_since: BTreeMap::new(),
        };
        registry
            .nations
            .insert(def.id.clone(), world.spawn(nation).id());
    }

    let mut neighbors: BTreeMap<&str, Vec<Road>> = BTreeMap::new();
    for road in scenario.roads.road.iter().map(|r| r.get_ref()) {
        let distance = road.distance as u32;
        neighbors.entry(&road.from).or_default().push(Road {
            city: road.to.clone(),
            distance,
        });
        neighbors.entry(&road.to).or_default().push(Road {
            city: road.from.clone(),
            distance,
        });
    }
    for def in scenario.cities.city.iter().map(|c| c.get_ref()) {
        let mut roads = neighbors.remove(def.id.as_str()).unwrap_or_default();
        roads.sort_by(|a, b| a.city.cmp(&b.city));
        let city = City {
            id: def.id.clone(),
            name: def.name.clone(),
            x: def.x as f32,
            y: def.y as f32,
            owner: def.owner.clone(),
            population: def.population as u32,
            agriculture: def.agriculture as u32,
            commerce: def.commerce as u32,
            defense: def.defense as u32,
            walls: def.walls as u32,
            gold: def.gold,
            rice: def.rice,
            garrison: def.garrison as u32,
            neighbors: roads,
        };
        registry
            .cities
            .insert(def.id.clone(), world.spawn(city).id());
    }

    for def in scenario.generals.general.iter().map(|g| g.get_ref()) {
        let stats = Stats {
            leadership: def.leadership as u8,
            strength: def.strength as u8,
            intelligence: def.intelligence as u8,
            politics: def.politics as u8,
            charm: def.charm as u8,
        };
        let kind = if rulers.contains_key(def.id.as_str()) {
            data.positions.ruler()
        } else {
            def.position
        };
        let (pcp_max, mcp_max) = cp_maxima(&stats, kind, &data.balance, &data.positions);
        let general = General {
            id: def.id.clone(),
            name: def.name.clone(),
            owner: None,
            nation: def.nation.clone(),
            city: def.city.clone(),
            stats,
            troops: def.troops as u32,
            troop_type: def.troop_type,
            training: def.training as u8,
            morale: def.morale as u8,
            pcp: MilliCp::from_points(pcp_max),
            pcp_max: MilliCp::from_points(pcp_max),
            mcp: MilliCp::from_points(mcp_max),
            mcp_max: MilliCp::from_points(mcp_max),
            position: kind.map(|kind| Position {
                kind,
                city: def.position_city.clone(),
            }),
            status: GeneralStatus::Idle,
            order: None,
            march: None,
            protected: false,
            ai_delegate: false,
        };
        registry
            .generals
            .insert(def.id.clone(), world.spawn(general).id());
    }

    let clock = GameClock::new(scenario.meta.start, settings.speed);
    let info = WorldInfo {
        name: settings.name.clone(),
        scenario: scenario.id.clone(),
        data_hash: data.data_hash.clone(),
        scenario_hash: data.scenario_hash.clone(),
    };
    outbox.emit(
        clock.game_seconds,
        aggregate("world", &info.name),
        EventKind::WorldCreated {
            scenario: info.scenario.clone(),
            data_hash: info.data_hash.clone(),
            start: clock.start,
        },
    );
    world.insert_resource(registry);
    world.insert_resource(outbox);
    world.insert_resource(clock);
    world.insert_resource(info);
    world.insert_resource(Data(data));
}

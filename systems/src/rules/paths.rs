//! Road paths (docs/rules.md#marches): shortest road paths between cities, the way a march may
//! go, and the nearest friendly city a defeated general retreats to.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
};

use bevy_ecs::world::World;
use components::world::{City, Registry};

/// A shortest path: the cities from start to goal, both included, and its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub cities: Vec<String>,
    pub distance: u64,
}

/// The shortest road path from `from` to a city for which `goal` holds, through cities for
/// which `pass` holds (the start and the goal need not pass). Ties break by city id, so the
/// same world gives the same path.
pub fn shortest_path(
    world: &World,
    from: &str,
    goal: impl Fn(&City) -> bool,
    pass: impl Fn(&City) -> bool,
) -> Option<Path> {
    let registry = world.resource::<Registry>();
    let city = |id: &str| registry.cities.get(id).and_then(|e| world.get::<City>(*e));
    let mut best: HashMap<String, (u64, Option<String>)> = HashMap::new();
    let mut queue = BinaryHeap::new();
    best.insert(from.to_string(), (0, None));
    queue.push(Reverse((0u64, from.to_string())));
    while let Some(Reverse((distance, id))) = queue.pop() {
        if best.get(&id).is_some_and(|(d, _)| *d < distance) {
            continue;
        }
        let Some(here) = city(&id) else { continue };
        if id != from && goal(here) {
            let mut cities = vec![id.clone()];
            let mut at = id;
            while let Some((_, Some(previous))) = best.get(&at) {
                cities.push(previous.clone());
                at = previous.clone();
            }
            cities.reverse();
            return Some(Path { cities, distance });
        }
        if id != from && !pass(here) {
            continue;
        }
        for road in &here.neighbors {
            let next = distance + u64::from(road.distance);
            let better = best.get(&road.city).is_none_or(|(d, previous)| {
                next < *d || (next == *d && previous.as_deref() > Some(id.as_str()))
            });
            if better {
                best.insert(road.city.clone(), (next, Some(id.clone())));
                queue.push(Reverse((next, road.city.clone())));
            }
        }
    }
    None
}

/// Game seconds a march takes over `distance` at `per_hour` distance per game hour.
pub fn travel_seconds(distance: u64, per_hour: f64) -> i64 {
    ((distance as f64 / per_hour.max(1e-9)) * 3_600.0)
        .ceil()
        .clamp(1.0, i64::MAX as f64 / 4.0) as i64
}

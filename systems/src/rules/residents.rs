//! Which generals are in which city: an index the rules and the AI read instead of scanning
//! every general. Every change of a general's city goes through [`set_city`], which keeps
//! the index exact within the tick.

use foldhash::{HashMap, HashSet};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use components::world::{General, Registry};

#[derive(Resource, Default, Debug)]
pub struct Residents {
    /// A set per city: crowded capitals (every joining player lands in one) stay O(1).
    by_city: HashMap<String, HashSet<Entity>>,
}

impl Residents {
    fn add(&mut self, city: &str, entity: Entity) {
        match self.by_city.get_mut(city) {
            Some(set) => {
                set.insert(entity);
            }
            None => {
                self.by_city
                    .insert(city.to_string(), HashSet::from_iter([entity]));
            }
        }
    }

    fn remove(&mut self, city: &str, entity: Entity) {
        if let Some(set) = self.by_city.get_mut(city) {
            set.remove(&entity);
        }
    }
}

/// Builds the index from every general of the World.
pub fn index_world(world: &mut World) {
    let mut residents = Residents::default();
    let registry = world.resource::<Registry>();
    for entity in registry.generals.values() {
        if let Some(general) = world.get::<General>(*entity) {
            residents.add(&general.city, *entity);
        }
    }
    world.insert_resource(residents);
}

/// Records a new general in the index.
pub fn add_general(world: &mut World, entity: Entity) {
    let Some(city) = world.get::<General>(entity).map(|g| g.city.clone()) else {
        return;
    };
    if let Some(mut residents) = world.get_resource_mut::<Residents>() {
        residents.add(&city, entity);
    }
}

/// Takes a general out of the index (before it is despawned).
pub fn remove_general(world: &mut World, entity: Entity) {
    let Some(city) = world.get::<General>(entity).map(|g| g.city.clone()) else {
        return;
    };
    if let Some(mut residents) = world.get_resource_mut::<Residents>() {
        residents.remove(&city, entity);
    }
}

/// Moves a general to `city`.
pub fn set_city(world: &mut World, entity: Entity, city: &str) {
    let Some(mut general) = world.get_mut::<General>(entity) else {
        return;
    };
    if general.city == city {
        return;
    }
    let old = std::mem::replace(&mut general.city, city.to_string());
    if let Some(mut residents) = world.get_resource_mut::<Residents>() {
        residents.remove(&old, entity);
        residents.add(city, entity);
    }
}

/// The generals in `city`, in id order.
pub fn generals_in<'w>(world: &'w World, city: &str) -> Vec<&'w General> {
    let mut found: Vec<&General> = match world.get_resource::<Residents>() {
        Some(residents) => residents
            .by_city
            .get(city)
            .into_iter()
            .flatten()
            .filter_map(|e| world.get::<General>(*e))
            .filter(|g| g.city == city)
            .collect(),
        None => world
            .resource::<Registry>()
            .generals
            .values()
            .filter_map(|e| world.get::<General>(*e))
            .filter(|g| g.city == city)
            .collect(),
    };
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

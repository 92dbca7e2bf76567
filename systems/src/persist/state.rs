//! The World as its stores keep it: every live entity's state (players with their order
//! windows), and the checkpoint record of its positions. Full epochs and hot snapshots are
//! made of these.

use std::{
    collections::{HashMap, HashSet},
    time::SystemTime,
};

use bevy_ecs::prelude::*;
use components::{
    persist::{Checkpoint, EntityState, PlayerState, Snapshot},
    time::{GameClock, unix_ms},
    world::{City, General, Nation, WorldInfo},
};

use crate::{
    battle::{Battle, stored::StoredBattle},
    event_log::Outbox,
    rules::{
        intake::{AppliedEntry, AppliedLogSeq},
        orders::{Incarnation, Orders},
        presence::Presence,
    },
};

pub(crate) fn player_state(orders: &Orders, presence: &Presence, player: &str) -> PlayerState {
    PlayerState {
        player: player.to_string(),
        last_seen: presence.last_seen(player),
        orders: orders.stored(player),
    }
}

/// The state of every live entity (nations, cities, generals, battles, players with their
/// order windows), taken at game second `now`; with the battles' ids by entity.
pub(crate) fn every_entity(
    world: &mut World,
    now: i64,
) -> (Vec<Snapshot>, HashMap<Entity, String>) {
    let mut snapshots = Vec::new();
    let mut push = |state: EntityState, id: String| {
        snapshots.push(Snapshot {
            kind: state.kind(),
            ref_id: id,
            state: Some(state),
            taken_at: now,
        })
    };
    for nation in world.query::<&Nation>().iter(world) {
        push(EntityState::Nation(nation.clone()), nation.id.clone());
    }
    for city in world.query::<&City>().iter(world) {
        push(EntityState::City(city.clone()), city.id.clone());
    }
    for general in world.query::<&General>().iter(world) {
        push(EntityState::General(general.clone()), general.id.clone());
    }
    let mut battle_ids = HashMap::new();
    for (entity, battle) in world.query::<(Entity, &Battle)>().iter(world) {
        battle_ids.insert(entity, battle.id.clone());
        push(StoredBattle::of(battle).state(), battle.id.clone());
    }
    let players: HashSet<String> = world
        .resource::<Orders>()
        .players()
        .chain(world.resource::<Presence>().players().map(String::as_str))
        .map(str::to_string)
        .collect();
    let orders = world.resource::<Orders>();
    let presence = world.resource::<Presence>();
    for player in players {
        push(
            EntityState::Player(player_state(orders, presence, &player)),
            player,
        );
    }
    (snapshots, battle_ids)
}

/// The checkpoint record of the World as it is now, for `epoch` of `lease_epoch`.
pub(crate) fn checkpoint_record(world: &World, lease_epoch: u64, epoch: u64) -> Checkpoint {
    let clock = world.resource::<GameClock>();
    let info = world.resource::<WorldInfo>();
    Checkpoint {
        world: info.name.clone(),
        lease_epoch,
        epoch,
        incarnation: world.resource::<Incarnation>().0,
        last_seq: world.resource::<Outbox>().last_taken(),
        stream_id: world.resource::<AppliedEntry>().0,
        log_seq: world.resource::<AppliedLogSeq>().0,
        game_seconds: clock.game_seconds,
        tick: clock.tick,
        data_hash: info.data_hash.clone(),
        scenario_hash: info.scenario_hash.clone(),
        scenario: info.scenario.clone(),
        updated_at: unix_ms(SystemTime::now()),
        sandbox: world.get_resource::<components::world::Sandbox>().copied(),
        maintenance: world
            .get_resource::<components::world::Maintenance>()
            .map(|m| m.message.clone()),
    }
}

//! Recovery's World (docs/storage.md#step-by-step): [`restore_world`] fills an empty World
//! from a checkpoint or a hot snapshot: entities, battles rebuilt step for step, order windows
//! republished under the new incarnation, presence, the clock, the log positions and the
//! events the store is owed; then `WorldRecovered` is told.

use std::sync::Arc;

use bevy_ecs::prelude::*;
use components::{
    events::{EventKind, aggregate},
    persist::{EntityState, Recovered},
    time::GameClock,
    world::{Registry, WorldInfo},
};
use tracing::warn;

use super::Extract;
use crate::{
    assets::{Data, GameData},
    battle::stored::StoredBattle,
    event_log::Outbox,
    rules::{
        intake::{AppliedEntry, AppliedLogSeq},
        orders::{Incarnation, Orders, RecoveredSeq},
        points::regain_points,
        presence::Presence,
        timeline::Timeline,
    },
    spawn::WorldSettings,
};

/// Why a checkpoint cannot become a World.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "the stored world was built from scenario \"{stored}\", not \"{asked}\": start with --scenario {stored}, or use another data directory or world"
    )]
    Scenario { stored: String, asked: String },
    #[error("stored battle {id} cannot be rebuilt: {message}")]
    Battle { id: String, message: String },
}

/// Fills an empty World from a checkpoint: entities, battles rebuilt step for step, order
/// windows republished under the next incarnation, presence, the clock and the log
/// positions. Emits `WorldRecovered`.
pub fn restore_world(
    world: &mut World,
    data: Arc<GameData>,
    settings: &WorldSettings,
    recovered: Recovered,
) -> Result<(), RestoreError> {
    let checkpoint = recovered.checkpoint;
    if checkpoint.scenario != data.scenario.id {
        return Err(RestoreError::Scenario {
            stored: checkpoint.scenario,
            asked: data.scenario.id.clone(),
        });
    }
    if !checkpoint.scenario_hash.is_empty() && checkpoint.scenario_hash != data.scenario_hash {
        warn!(
            scenario = %checkpoint.scenario,
            "this world runs on the scenario data it was created from, which differs from the scenario files now: scenario files apply to new worlds only (docs/data-files.md#hot-reload)"
        );
    }
    if checkpoint.data_hash != data.data_hash {
        warn!(
            stored = %checkpoint.data_hash,
            now = %data.data_hash,
            "the designer data changed since the checkpoint; the World goes on with the new data"
        );
    }
    let incarnation = recovered.incarnation.max(checkpoint.incarnation + 1);
    let mut registry = Registry::default();
    let mut orders = Orders::new(data.balance.orders.finished_window.clamp(1, 100_000) as usize);
    let mut presence = Presence::default();
    let mut timeline = Timeline::default();
    let mut battles = Vec::new();
    for stored in recovered.entities {
        match stored.state {
            EntityState::Nation(nation) => {
                let id = nation.id.clone();
                registry.nations.insert(id, world.spawn(nation).id());
            }
            EntityState::City(city) => {
                let id = city.id.clone();
                registry.cities.insert(id, world.spawn(city).id());
            }
            EntityState::General(mut general) => {
                // Points regained since the state was taken changed nothing else.
                regain_points(
                    &mut general,
                    &data,
                    stored.taken_at,
                    checkpoint.game_seconds,
                );
                let id = general.id.clone();
                let owner = general.owner.clone();
                let due = match (&general.march, &general.order) {
                    (Some(march), _) => Some(march.next_at),
                    (None, Some(order)) => Some(order.completes_at),
                    (None, None) => None,
                };
                let entity = world.spawn(general).id();
                if let Some(due) = due {
                    timeline.schedule(due, entity);
                }
                if let Some(owner) = owner {
                    registry.players.insert(owner, id.clone());
                }
                registry.generals.insert(id, entity);
            }
            EntityState::Battle(value) => battles.push(value),
            EntityState::Player(player) => {
                if let Some(at) = player.last_seen {
                    presence.seen(&player.player, at);
                }
                orders.restore(&player.player, player.orders, incarnation);
            }
        }
    }
    for value in battles {
        let battle = StoredBattle::from_state(value)
            .and_then(StoredBattle::rebuild)
            .map_err(|(id, message)| RestoreError::Battle { id, message })?;
        let mut battle = battle;
        if battle.data_hash.is_empty() {
            // Stored before battles kept their data's hash: the checkpoint's is the data the
            // world ran on then.
            battle.data_hash = checkpoint.data_hash.clone();
        }
        let id = battle.id.clone();
        let entity = world.spawn(battle).id();
        if let Some(mut extract) = world.get_resource_mut::<Extract>() {
            // So a battle that ends before the first epoch is written leaves a tombstone.
            extract.remember_battle(entity, id.clone());
        }
        registry.battles.insert(id, entity);
    }
    let mut clock = GameClock::new(data.scenario.meta.start, settings.speed);
    clock.game_seconds = checkpoint.game_seconds;
    clock.tick = checkpoint.tick;
    if let Some(message) = checkpoint.maintenance.clone() {
        world.insert_resource(components::world::Maintenance { message });
    }
    if let Some(sandbox) = checkpoint.sandbox {
        // A sandbox keeps the clock its edits set (docs/sandbox.md).
        if let Some(speed) = sandbox.speed {
            clock.speed = speed;
        }
        world.insert_resource(sandbox);
    }
    let info = WorldInfo {
        name: settings.name.clone(),
        scenario: data.scenario.id.clone(),
        data_hash: data.data_hash.clone(),
        scenario_hash: checkpoint.scenario_hash.clone(),
    };
    let mut outbox = Outbox::new(checkpoint.last_seq);
    outbox.owe_to_store(recovered.events);
    let recovered_seq = outbox.emit(
        clock.game_seconds,
        aggregate("world", &info.name),
        EventKind::WorldRecovered {
            last_seq: checkpoint.last_seq,
            incarnation,
            game_seconds: clock.game_seconds,
        },
    );
    world.insert_resource(registry);
    world.insert_resource(outbox);
    world.insert_resource(clock);
    world.insert_resource(info);
    world.insert_resource(Data(data));
    world.insert_resource(orders);
    world.insert_resource(presence);
    world.insert_resource(timeline);
    world.insert_resource(AppliedLogSeq(checkpoint.log_seq));
    world.insert_resource(AppliedEntry(checkpoint.stream_id));
    world.insert_resource(Incarnation(incarnation));
    world.insert_resource(RecoveredSeq(recovered_seq));
    Ok(())
}

//! What an operator asks of the World (docs/http.md#admin-routes), over a channel the intake
//! schedule drains without waiting: a checkpoint epoch now, or maintenance on or off. Each
//! request is answered with the number of the epoch that holds it, closed at the end of the
//! same pass (after the pass's changes are collected), so an answered request is in the
//! store once that epoch is durable.

use bevy_ecs::{resource::Resource, world::World};
use components::{
    events::{EventKind, aggregate},
    time::GameClock,
    world::{Maintenance, WorldInfo},
};
use crossbeam_channel::{Receiver, Sender};
use tracing::info;

use crate::{event_log::Outbox, persist::extract::EpochReplies};

/// One operator's request.
pub enum AdminRequest {
    /// Close an epoch now.
    Flush { reply: Sender<u64> },
    /// Refuse commands with `message` (`None`: take them again).
    Maintenance {
        message: Option<String>,
        reply: Sender<u64>,
    },
}

/// Requests on their way into the World.
#[derive(Resource)]
pub struct AdminInbox(pub Receiver<AdminRequest>);

/// Applies what operators asked, and queues their answers for the pass's epoch.
pub fn apply_admin(world: &mut World) {
    let Some(rx) = world.get_resource::<AdminInbox>().map(|r| r.0.clone()) else {
        return;
    };
    for request in rx.try_iter() {
        let reply = match request {
            AdminRequest::Flush { reply } => reply,
            AdminRequest::Maintenance { message, reply } => {
                set_maintenance(world, message);
                reply
            }
        };
        world.get_resource_or_init::<EpochReplies>().0.push(reply);
    }
}

fn set_maintenance(world: &mut World, message: Option<String>) {
    let now = world
        .get_resource::<Maintenance>()
        .map(|m| m.message.clone());
    if now == message {
        return;
    }
    match &message {
        Some(message) => world.insert_resource(Maintenance {
            message: message.clone(),
        }),
        None => {
            world.remove_resource::<Maintenance>();
        }
    }
    info!(on = message.is_some(), message = ?message, "maintenance set by the operator");
    let name = world.resource::<WorldInfo>().name.clone();
    let at = world.resource::<GameClock>().game_seconds;
    world.resource_mut::<Outbox>().emit(
        at,
        aggregate("world", &name),
        EventKind::MaintenanceChanged {
            on: message.is_some(),
            message,
        },
    );
}

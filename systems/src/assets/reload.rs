//! Hot reload in the World (docs/data-files.md#hot-reload): data a [`super::Reloader`]
//! validated arrives over a channel the intake schedule drains without waiting, and takes
//! effect at that tick boundary, before the commands of the tick: the `Data` resource and the
//! world's data hash change, and `AssetsReloaded` says so. Battles under way keep the
//! parameters they started with (their setup holds them); what is computed from the data when
//! it happens (a command's cost, a march's speed, a new battle) follows the new data.

use std::sync::Arc;

use bevy_ecs::{resource::Resource, world::World};
use components::{
    events::{EventKind, aggregate},
    time::GameClock,
    world::WorldInfo,
};
use crossbeam_channel::Receiver;
use tracing::{info, warn};

use super::{Data, Reloaded};
use crate::event_log::Outbox;

/// Data validated by the server's reloader, on its way into the World.
#[derive(Resource)]
pub struct ReloadInbox(pub Receiver<Reloaded>);

/// What the World's generals use of the data's names.
fn in_use(world: &mut World) -> super::InUse {
    let mut in_use = super::InUse::default();
    let mut generals = world.query::<&components::world::General>();
    for general in generals.iter(world) {
        let recruiting = match general.order.as_deref().map(|o| &o.effect) {
            Some(components::world::OrderEffect::Recruit { troop_type, .. }) => *troop_type,
            _ => None,
        };
        let card = general
            .position
            .as_ref()
            .map(|p| (p.kind, p.city.is_some()));
        in_use.note(
            general.nation.as_deref(),
            general.troop_type,
            card,
            recruiting,
        );
    }
    in_use
}

/// Puts the newest data waiting in force, telling which files changed since the data before.
pub fn apply_reloads(world: &mut World) {
    let Some(rx) = world.get_resource::<ReloadInbox>().map(|r| r.0.clone()) else {
        return;
    };
    let mut newest: Option<Reloaded> = None;
    let mut files: Vec<String> = Vec::new();
    while let Ok(reload) = rx.try_recv() {
        for file in &reload.files {
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
        newest = Some(reload);
    }
    let Some(reload) = newest else {
        return;
    };
    if reload.data.data_hash == world.resource::<Data>().data_hash {
        return;
    }
    // The reloader checked the world's published state; this is the World's own, as of this
    // tick (a JOIN or RECRUIT may have come in between).
    let conflicts = super::removed_in_use(&reload.data, std::path::Path::new(""), &in_use(world));
    if !conflicts.is_empty() {
        for conflict in &conflicts {
            warn!(error = %conflict, "reloaded designer data refused by the World: the data in force stays");
        }
        return;
    }
    files.sort();
    // An epoch at the end of this pass holds everything done under the data before, so a
    // recovery never applies those commands again under the new data.
    if let Some(mut extract) = world.get_resource_mut::<crate::persist::Extract>() {
        extract.request();
    }
    let data_hash = reload.data.data_hash.clone();
    world.insert_resource(Data(Arc::new(reload.data)));
    let mut info = world.resource_mut::<WorldInfo>();
    info.data_hash = data_hash.clone();
    let name = info.name.clone();
    let now = world.resource::<GameClock>().game_seconds;
    info!(data_hash = %data_hash, files = ?files, "designer data reloaded");
    world.resource_mut::<Outbox>().emit(
        now,
        aggregate("world", &name),
        EventKind::AssetsReloaded { data_hash, files },
    );
}

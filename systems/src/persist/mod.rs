//! The World's side of persistence (docs/storage.md#checkpoint-epochs). After each pass,
//! [`extract`] notes the entities whose components changed (bevy change detection), the
//! players whose order window or activity changed, and the events published; every
//! `flush_interval`, and at once after a capture or a nation's destruction, it turns them into
//! one checkpoint [`components::persist::Batch`] and hands it to the store's worker through a
//! channel, without waiting. With a lease, [`hot`] hands the whole World to the hot
//! snapshot's writer every few seconds, with the events not yet durable ([`undurable`]).
//!
//! Recovery goes the other way: [`restore`] builds a World from a checkpoint (or a hot
//! snapshot), and [`replay`] applies the commands logged after it. [`state`] is the World as
//! the stores keep it, shared by epochs and hot snapshots.
//!
//! Nothing here does I/O.

pub mod extract;
pub mod hot;
pub mod replay;
pub mod restore;
pub mod state;
pub mod undurable;

use std::time::Duration;

use bevy_app::{App, Plugin};
use bevy_ecs::schedule::IntoScheduleConfigs;
use components::persist::Batch;
use crossbeam_channel::Sender;

pub use extract::{Extract, close_epoch, close_epoch_when_due, collect_changes};
pub use hot::{Hot, HotSettings, take_hot_snapshot};
pub use replay::replay;
pub use restore::{RestoreError, restore_world};
pub use undurable::Undurable;

use crate::{
    event_log::Outbox,
    schedule::{Publish, PublishSet},
};

/// How a World hands its epochs to a store.
#[derive(Clone, Debug)]
pub struct PersistSettings {
    pub sink: Sender<Batch>,
    /// Real time between epochs (`--flush-interval`).
    pub flush_interval: Duration,
    /// Lease generation stamped on every epoch (0 without a lease).
    pub lease_epoch: u64,
    /// The epoch of the checkpoint the World was recovered from (0 for a new world).
    pub last_epoch: u64,
    /// The World's incarnation, begun durably by the store's recovery.
    pub incarnation: u64,
    /// Hot snapshots between epochs (with a lease, docs/redis.md#the-hot-snapshot).
    pub hot: Option<HotSettings>,
}

/// Hands the World's epochs (and, with a lease, its hot snapshots) to the store's side.
pub struct PersistPlugin(pub PersistSettings);

impl Plugin for PersistPlugin {
    fn build(&self, app: &mut App) {
        let settings = &self.0;
        app.insert_resource(Extract::new(settings)).add_systems(
            Publish,
            (collect_changes, close_epoch_when_due)
                .chain()
                .in_set(PublishSet::Extract),
        );
        if let Some(hot) = &settings.hot {
            app.insert_resource(Hot::new(hot.clone()))
                .insert_resource(Undurable::new(hot.durable_seq.clone()))
                .add_systems(Publish, take_hot_snapshot.in_set(PublishSet::Hot));
        }
    }

    fn finish(&self, app: &mut App) {
        app.world_mut().resource_mut::<Outbox>().keep_for_store();
    }
}

#[cfg(test)]
mod tests;

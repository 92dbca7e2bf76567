//! The pump: turns each newly published snapshot of the read models into one [`Batch`] of
//! messages by topic (docs/websocket.md#what-is-pushed) and broadcasts it to the connections:
//! the events after the last one pushed, the state of every entity whose view changed, battle
//! frames at most every [`FRAMES_EVERY`], a finished battle's final frame, and every change of
//! an order from the order feed. It only reads published snapshots, so the World never waits
//! on it; with no connection open it only keeps its place.

use std::{collections::HashMap, sync::Arc, time::Duration};

use components::{
    battle::BattleStatus,
    events::{DomainEvent, EventKind},
    read_model::{Key, ReadModels},
};
use imbl::{OrdMap, ordmap::DiffItem};
use tokio::{sync::watch, time::Instant};
use tracing::warn;

use super::{
    Hub,
    protocol::{Outgoing, State, Topic},
};

/// How often the pump looks for a new snapshot.
pub const LOOK_EVERY: Duration = Duration::from_millis(10);
/// Battle frames go out at most this often (10 Hz).
pub const FRAMES_EVERY: Duration = Duration::from_millis(100);

/// One snapshot's messages, in the order they happened, with the positions of each topic's.
#[derive(Debug, Default)]
pub struct Batch {
    pub messages: Vec<Arc<Outgoing>>,
    pub index: HashMap<Topic, Vec<u32>>,
    /// The World was recovered (a `WorldRecovered` event is in the batch): sequence numbers
    /// and versions start again from what was durable.
    pub recovered: bool,
    /// Events were missed between the last batch and this one (a lost Pub/Sub message in an
    /// `api` process): connections on event topics must resume from the durable log.
    pub gap: bool,
}

impl Batch {
    fn push(&mut self, topic: Topic, message: Arc<Outgoing>) {
        let at = self.messages.len() as u32;
        self.messages.push(message);
        self.index.entry(topic).or_default().push(at);
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && !self.gap
    }
}

/// Where the pump is.
#[derive(Default)]
struct Place {
    last: Option<Arc<ReadModels>>,
    /// The `seq` of the last event pushed.
    seq: u64,
    /// The order feed's position pushed up to.
    orders: u64,
    frames_at: Option<Instant>,
    /// Last frames of battles whose finished read model has not arrived yet (in an `api`
    /// process the frame can come before the state).
    last_frames: Vec<Key>,
}

/// Last frames held for their battle's result at most.
const LAST_FRAMES_HELD: usize = 64;

impl Hub {
    /// Runs the pump until `stop`.
    pub async fn pump(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut place = Place::default();
        let mut ticker = tokio::time::interval(LOOK_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            let Some(models) = self.read.load_full() else {
                continue;
            };
            if place.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &models)) {
                continue;
            }
            let batch = if self.batches.receiver_count() == 0 || place.last.is_none() {
                // Nobody listens, or this is the first snapshot: keep the place only.
                place.seq = models.events.last().map_or(place.seq, |e| e.seq);
                place.orders = models.order_feed_seq();
                None
            } else {
                Some(self.batch(&mut place, &models))
            };
            place.last = Some(models);
            if let Some(batch) = batch.filter(|b| !b.is_empty()) {
                let _ = self.batches.send(Arc::new(batch));
            }
        }
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Batch>> {
        self.batches.subscribe()
    }

    /// The messages of `models` since `place`.
    fn batch(&self, place: &mut Place, models: &ReadModels) -> Batch {
        let mut batch = Batch::default();
        let old = place.last.clone();
        self.events(place, models, &mut batch);
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = |batch: &mut Batch, topic: Topic, state: State| {
            let message = Outgoing::state(Arc::from(topic.name()), state);
            self.remember(&mut snapshots, &topic, &message);
            batch.push(topic, message);
        };
        if let Some(old) = old.as_deref() {
            for (id, view) in changed(&old.nations, &models.nations) {
                state(&mut batch, Topic::Nation(id), State::Nation(view));
            }
            for (id, view) in changed(&old.cities, &models.cities) {
                state(&mut batch, Topic::City(id), State::City(view));
            }
            for (id, view) in changed(&old.generals, &models.generals) {
                state(&mut batch, Topic::General(id), State::General(view));
            }
            for (id, view) in changed(&old.battles, &models.battles) {
                state(&mut batch, Topic::Battle(id), State::Battle(view));
            }
            for (id, _) in changed(&old.final_frames, &models.final_frames) {
                place.last_frames.push(id);
            }
            place.last_frames.retain(|id| {
                let (Some(frame), Some(result)) =
                    (models.final_frames.get(id), models.battles.get(id))
                else {
                    return false;
                };
                if result.status != BattleStatus::Finished {
                    return true;
                }
                let topic = Topic::Battle(id.clone());
                batch.push(
                    topic.clone(),
                    Outgoing::frame(Arc::from(topic.name()), frame.clone(), Some(result.clone())),
                );
                false
            });
            while place.last_frames.len() > LAST_FRAMES_HELD {
                place.last_frames.remove(0);
            }
            if place
                .frames_at
                .is_none_or(|at| at.elapsed() >= FRAMES_EVERY)
            {
                let mut any = false;
                for (id, frame) in changed(&old.frames, &models.frames) {
                    let topic = Topic::Battle(id);
                    batch.push(
                        topic.clone(),
                        Outgoing::frame(Arc::from(topic.name()), frame, None),
                    );
                    any = true;
                }
                if any {
                    place.frames_at = Some(Instant::now());
                }
            }
        }
        drop(snapshots);
        match models.order_changes_after(place.orders) {
            Some(changes) => {
                for change in changes {
                    batch.push(
                        Topic::Orders(change.player.clone()),
                        Outgoing::order(change.record.view.clone()),
                    );
                }
            }
            None => {
                warn!(
                    "the order feed moved on past the WebSocket pump; some order changes were not pushed"
                );
            }
        }
        place.orders = models.order_feed_seq();
        batch
    }

    /// The events after the last one pushed, each on `world` and on its aggregate's topic.
    fn events(&self, place: &mut Place, models: &ReadModels, batch: &mut Batch) {
        let Some(newest) = models.events.last().map(|e| e.seq) else {
            return;
        };
        let mut after = place.seq;
        if place.last.is_some() && newest < after {
            // The numbering went back: a recovered World starts again after its last durable
            // event, with `WorldRecovered`.
            match models
                .events
                .iter()
                .rev()
                .find(|e| matches!(e.kind, EventKind::WorldRecovered { .. }))
            {
                Some(recovered) => {
                    after = recovered.seq - 1;
                    batch.recovered = true;
                }
                None => return,
            }
        }
        let world: Arc<str> = Arc::from("world");
        let mut expected = after + 1;
        for event in models.events_after(after, usize::MAX, None) {
            let recovery = matches!(event.kind, EventKind::WorldRecovered { .. });
            // (Before any event, the first one may come with any number: an api process's
            // copy starts with whatever event arrives first.)
            if place.last.is_some() && after > 0 && event.seq != expected && !recovery {
                batch.gap = true;
            }
            expected = event.seq + 1;
            self.push_event(batch, &world, event);
        }
        place.seq = newest;
    }

    fn push_event(&self, batch: &mut Batch, world: &Arc<str>, event: Arc<DomainEvent>) {
        if let Some(topic) = Topic::of_aggregate(&event.aggregate) {
            let name = Arc::from(topic.name());
            batch.push(topic, Outgoing::event(name, event.clone()));
        }
        batch.push(Topic::World, Outgoing::event(world.clone(), event));
    }
}

/// The entries added or changed between `old` and `new`.
fn changed<V>(old: &OrdMap<Key, Arc<V>>, new: &OrdMap<Key, Arc<V>>) -> Vec<(Key, Arc<V>)>
where
    V: PartialEq,
{
    old.diff(new)
        .filter_map(|item| match item {
            DiffItem::Add(id, view)
            | DiffItem::Update {
                new: (id, view), ..
            } => Some((id.clone(), view.clone())),
            DiffItem::Remove(..) => None,
        })
        .collect()
}

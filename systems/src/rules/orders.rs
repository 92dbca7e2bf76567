//! Orders (SPEC 2.5): each player's window of orders that makes commands idempotent, the
//! timeline of timed orders and march legs that come due, and the life-cycle transitions
//! (accepted → completed / cancelled) with their events.
//!
//! The window keeps every unfinished order of a player and its last `finished_window`
//! finished ones, each with the hash of the command that made it. It is part of the World's
//! state, so a replayed command meets the same window.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

// A fast hasher (seeded per process): a window is looked up for every command.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use components::{
    command::{CommandType, Reason},
    events::{EventKind, aggregate},
    persist::StoredOrder,
    read_model::{Key, OrderStatus, OrderView},
    time::GameClock,
    world::{ActiveOrder, General, GeneralStatus},
};

use crate::event_log::Outbox;

/// The World's incarnation (SPEC 2.5): stamped on every order it writes; recovery raises it.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revision(pub u64);

impl Default for Revision {
    fn default() -> Self {
        Revision(1)
    }
}

/// An order in a player's window.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRecord {
    pub view: OrderView,
    /// Hash of the command that made it ([`components::command::Command::body_hash`]).
    pub body_hash: u64,
}

#[derive(Default, Debug)]
struct PlayerWindow {
    /// The player's id, shared by every key that names it.
    player: Key,
    records: HashMap<Key, OrderRecord>,
    /// Finished orders, oldest first.
    finished: VecDeque<Key>,
}

/// Every player's order window.
#[derive(Resource, Debug)]
pub struct Orders {
    players: HashMap<Key, PlayerWindow>,
    finished_window: usize,
    /// (player, order id) of records added, changed or evicted since the last publish.
    changed: Vec<(Key, Key)>,
    /// Players whose window changed since the last checkpoint epoch took them.
    dirty: HashSet<Key>,
}

impl Orders {
    pub fn new(finished_window: usize) -> Self {
        Orders {
            players: HashMap::new(),
            finished_window: finished_window.max(1),
            changed: Vec::new(),
            dirty: HashSet::new(),
        }
    }

    /// Players with a window.
    pub fn players(&self) -> impl Iterator<Item = &str> {
        self.players.keys().map(|k| &**k)
    }

    /// Players whose window changed since the last call.
    pub fn take_dirty(&mut self) -> HashSet<Key> {
        std::mem::take(&mut self.dirty)
    }

    /// `player`'s window as stored: open orders by id, then finished ones oldest first.
    pub fn stored(&self, player: &str) -> Vec<StoredOrder> {
        let Some(window) = self.players.get(player) else {
            return Vec::new();
        };
        let to_stored = |r: &OrderRecord| StoredOrder {
            view: r.view.clone(),
            body_hash: r.body_hash,
        };
        let mut open: Vec<&OrderRecord> = window
            .records
            .values()
            .filter(|r| !r.view.status.is_finished())
            .collect();
        open.sort_by(|a, b| a.view.order_id.cmp(&b.view.order_id));
        let mut stored: Vec<StoredOrder> = open.into_iter().map(to_stored).collect();
        stored.extend(
            window
                .finished
                .iter()
                .filter_map(|id| window.records.get(id))
                .map(to_stored),
        );
        stored
    }

    /// Puts back a stored window, every order under `revision` (SPEC 2.5: a recovered World
    /// republishes its windows with its new revision).
    pub fn restore(&mut self, player: &str, orders: Vec<StoredOrder>, revision: u64) {
        for order in orders {
            let mut view = order.view;
            view.revision = revision;
            self.put(
                player,
                OrderRecord {
                    view,
                    body_hash: order.body_hash,
                },
            );
        }
    }

    pub fn get(&self, player: &str, id: &str) -> Option<&OrderRecord> {
        self.players.get(player)?.records.get(id)
    }

    /// Orders in `player`'s window.
    pub fn len(&self, player: &str) -> usize {
        self.players.get(player).map_or(0, |w| w.records.len())
    }

    /// Records a new order, or replaces one, evicting the oldest finished orders beyond the
    /// window.
    pub fn put(&mut self, player: &str, record: OrderRecord) {
        if !self.players.contains_key(player) {
            let key = Key::from(player);
            let window = PlayerWindow {
                player: key.clone(),
                ..PlayerWindow::default()
            };
            self.players.insert(key, window);
        }
        let Some(window) = self.players.get_mut(player) else {
            return;
        };
        // The order's key: the one the window has for it, else a new one.
        let (id, was_finished) = match window.records.get_key_value(record.view.order_id.as_str()) {
            Some((id, old)) => (id.clone(), old.view.status.is_finished()),
            None => (Key::from(record.view.order_id.as_str()), false),
        };
        let finished = record.view.status.is_finished();
        window.records.insert(id.clone(), record);
        self.changed.push((window.player.clone(), id.clone()));
        if !self.dirty.contains(player) {
            self.dirty.insert(window.player.clone());
        }
        if finished && !was_finished {
            window.finished.push_back(id);
            while window.finished.len() > self.finished_window {
                if let Some(old) = window.finished.pop_front() {
                    window.records.remove(&old);
                    self.changed.push((window.player.clone(), old));
                }
            }
        }
    }

    /// Changes an order's view in place, if the window still holds it.
    pub fn update(&mut self, player: &str, id: &str, change: impl FnOnce(&mut OrderView)) {
        if let Some(mut record) = self.get(player, id).cloned() {
            change(&mut record.view);
            self.put(player, record);
        }
    }

    /// (player, order id) of the records that changed since the last call; the current
    /// record (if still in the window) is found with [`Orders::get`].
    pub fn take_changed(&mut self) -> Vec<(Key, Key)> {
        std::mem::take(&mut self.changed)
    }
}

/// When timed orders and march legs come due: entries of (game second, general). An entry
/// only says "look at this general then"; what is due is read from the general itself, so
/// entries left by cancelled orders are harmless.
#[derive(Resource, Default, Debug)]
pub struct Timeline {
    heap: BinaryHeap<Reverse<(i64, u64, Entity)>>,
    /// Breaks ties in insertion order, so equal times come out deterministically.
    next: u64,
}

impl Timeline {
    pub fn schedule(&mut self, at: i64, general: Entity) {
        self.next += 1;
        self.heap.push(Reverse((at, self.next, general)));
    }

    /// The earliest entry due by `now`.
    pub fn pop_due(&mut self, now: i64) -> Option<(i64, Entity)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((at, _, entity))| (at, entity))
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The read model of a general's order under way.
pub fn active_view(order: &ActiveOrder, general: &str, revision: u64) -> OrderView {
    OrderView {
        order_id: order.id.clone(),
        command_type: order.command.name().to_string(),
        general: Some(general.to_string()),
        status: OrderStatus::Accepted,
        reason: None,
        revision,
        accepted_at: Some(order.accepted_at),
        completes_at: Some(order.completes_at),
        general_id: None,
        message: None,
    }
}

/// Ends `general`'s order under way: completed, or cancelled with `reason`. Updates the
/// player's window, tells the event, and frees the general (a march in progress is dropped by
/// the caller first).
pub fn finish_order(world: &mut World, entity: Entity, at: i64, cancelled: Option<Reason>) {
    let Some(mut general) = world.get_mut::<General>(entity) else {
        return;
    };
    let Some(order) = general.order.take() else {
        return;
    };
    if general.status != GeneralStatus::InBattle {
        general.status = GeneralStatus::Idle;
    }
    let general_id = general.id.clone();
    if let Some(player) = &order.player {
        world
            .resource_mut::<Orders>()
            .update(player, &order.id, |view| {
                view.status = if cancelled.is_some() {
                    OrderStatus::Cancelled
                } else {
                    OrderStatus::Completed
                };
                view.reason = cancelled.map(|r| r.code().to_string());
            });
    }
    let kind = match cancelled {
        None => EventKind::OrderCompleted {
            order_id: order.id,
            player: order.player,
            general: Some(general_id.clone()),
            command: order.command,
        },
        Some(reason) => EventKind::OrderCancelled {
            order_id: order.id,
            player: order.player,
            general: general_id.clone(),
            command: order.command,
            reason,
        },
    };
    let at = at.max(0).min(world.resource::<GameClock>().game_seconds);
    world
        .resource_mut::<Outbox>()
        .emit(at, aggregate("general", &general_id), kind);
}

/// Whether a command of this type occupies its general until it completes.
pub fn is_timed(command: CommandType) -> bool {
    matches!(
        command,
        CommandType::Move | CommandType::Train | CommandType::Recruit | CommandType::Build
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, status: OrderStatus) -> OrderRecord {
        OrderRecord {
            view: OrderView {
                order_id: id.into(),
                command_type: "TRAIN".into(),
                general: Some("g".into()),
                status,
                reason: None,
                revision: 1,
                accepted_at: None,
                completes_at: None,
                general_id: None,
                message: None,
            },
            body_hash: 1,
        }
    }

    #[test]
    fn window_keeps_open_orders_and_the_last_finished_ones() {
        let mut orders = Orders::new(2);
        orders.put("p", record("open", OrderStatus::Accepted));
        for i in 0..5 {
            orders.put("p", record(&format!("f{i}"), OrderStatus::Rejected));
        }
        assert!(orders.get("p", "open").is_some());
        assert!(orders.get("p", "f0").is_none());
        assert!(orders.get("p", "f3").is_some() && orders.get("p", "f4").is_some());
        assert_eq!(orders.len("p"), 3);
        orders.update("p", "open", |v| v.status = OrderStatus::Completed);
        assert!(
            orders.get("p", "f3").is_none(),
            "finishing evicts the oldest"
        );
        assert_eq!(orders.len("p"), 2);
        assert!(orders.take_changed().len() >= 8);
        assert!(orders.take_changed().is_empty());
    }

    #[test]
    fn timeline_pops_in_time_order() {
        let mut timeline = Timeline::default();
        let a = Entity::from_raw_u32(1).unwrap();
        let b = Entity::from_raw_u32(2).unwrap();
        timeline.schedule(20, a);
        timeline.schedule(10, b);
        timeline.schedule(10, a);
        assert_eq!(timeline.pop_due(5), None);
        assert_eq!(timeline.pop_due(15), Some((10, b)));
        assert_eq!(timeline.pop_due(15), Some((10, a)));
        assert_eq!(timeline.pop_due(15), None);
        assert_eq!(timeline.pop_due(20), Some((20, a)));
        assert!(timeline.is_empty());
    }
}

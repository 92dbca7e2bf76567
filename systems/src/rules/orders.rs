//! Orders (docs/rules.md#order-life-cycle): each player's window of orders that makes
//! commands idempotent, the World's incarnation that orders carry as their revision, and the
//! life-cycle transitions (accepted → completed / cancelled, a march halted short of its goal)
//! with their events.
//!
//! The window keeps every unfinished order of a player and its last `finished_window`
//! finished ones, each with the hash of the command that made it. It is part of the World's
//! state, so a replayed command meets the same window.

use std::collections::VecDeque;

// A fast hasher (seeded per process): a window is looked up for every command.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use components::{
    command::{CommandType, Reason},
    events::{EventKind, aggregate},
    read_model::{Key, OrderRecord, OrderStatus, OrderView},
    time::GameClock,
    world::{ActiveOrder, General, GeneralStatus},
};

use crate::{event_log::Outbox, rules::residents::set_city};

/// The World's incarnation (docs/rules.md#revisions-and-replay-after-a-crash): raised by every
/// recovery, and stamped on every order the World writes as the order's `revision`.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incarnation(pub u64);

/// The `seq` of the `WorldRecovered` event that began this incarnation; absent in a world
/// that was never recovered. Published with the world summary, so a client resuming with
/// `since` can tell events of an earlier incarnation that did not survive it
/// (docs/websocket.md#resuming).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveredSeq(pub u64);

impl Default for Incarnation {
    fn default() -> Self {
        Incarnation(1)
    }
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
    /// Records added, changed or evicted since the last publish, in the order it happened.
    changed: Vec<OrderTouch>,
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
    pub fn stored(&self, player: &str) -> Vec<OrderRecord> {
        let Some(window) = self.players.get(player) else {
            return Vec::new();
        };
        let mut open: Vec<&OrderRecord> = window
            .records
            .values()
            .filter(|r| !r.view.status.is_finished())
            .collect();
        open.sort_by(|a, b| a.view.order_id.cmp(&b.view.order_id));
        let finished = window
            .finished
            .iter()
            .filter_map(|id| window.records.get(id));
        open.into_iter().chain(finished).cloned().collect()
    }

    /// Puts back a stored window, every order under `incarnation`
    /// (docs/rules.md#revisions-and-replay-after-a-crash: a recovered World republishes its
    /// windows with its new incarnation as their revision).
    pub fn restore(&mut self, player: &str, orders: Vec<OrderRecord>, incarnation: u64) {
        for mut order in orders {
            order.view.revision = incarnation;
            self.put(player, order);
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
        self.changed
            .push(OrderTouch::Put(window.player.clone(), id.clone()));
        if !self.dirty.contains(player) {
            self.dirty.insert(window.player.clone());
        }
        if finished && !was_finished {
            window.finished.push_back(id);
            while window.finished.len() > self.finished_window {
                if let Some(old) = window.finished.pop_front()
                    && let Some(record) = window.records.remove(&old)
                {
                    self.changed
                        .push(OrderTouch::Evicted(window.player.clone(), old, record));
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

    /// Where the windows are, for [`Orders::rollback`].
    pub fn mark(&self) -> usize {
        self.changed.len()
    }

    /// Undoes the changes since `mark`, newest first, provided each put since then added an
    /// order the window did not hold (as applying a new command does): the added orders go,
    /// the orders they evicted come back.
    pub fn rollback(&mut self, mark: usize) {
        let undone = self.changed.split_off(mark.min(self.changed.len()));
        for touch in undone.into_iter().rev() {
            match touch {
                OrderTouch::Put(player, id) => {
                    if let Some(window) = self.players.get_mut(&player) {
                        window.records.remove(&id);
                        if window.finished.back() == Some(&id) {
                            window.finished.pop_back();
                        }
                    }
                }
                OrderTouch::Evicted(player, id, record) => {
                    if let Some(window) = self.players.get_mut(&player) {
                        window.records.insert(id.clone(), record);
                        window.finished.push_front(id);
                    }
                }
            }
        }
    }

    /// What changed since the last call, in the order it happened.
    pub fn take_changed(&mut self) -> Vec<OrderTouch> {
        std::mem::take(&mut self.changed)
    }
}

/// One change of a window.
#[derive(Debug)]
pub enum OrderTouch {
    /// (player, order id) of a record added or changed: its current record (if the window
    /// still holds it) is found with [`Orders::get`].
    Put(Key, Key),
    /// (player, order id, last record) of a finished order the window let go.
    Evicted(Key, Key, OrderRecord),
}

/// The read model of a general's order under way.
pub fn active_view(order: &ActiveOrder, general: &str, incarnation: u64) -> OrderView {
    OrderView {
        order_id: order.id.clone(),
        command_type: order.command.name().to_string(),
        general: Some(general.to_string()),
        status: OrderStatus::Accepted,
        reason: None,
        revision: incarnation,
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

/// Ends a march short of its goal at the city before `path[next]`, cancelling its order
/// (`march_halted`).
pub fn halt_march(world: &mut World, entity: Entity, at: i64, reason: Reason) {
    halt_march_cancelling(world, entity, at, reason, Reason::MarchHalted);
}

/// Ends a march short of its goal, telling `reason` for the halt and cancelling the order
/// with `cancel`.
pub fn halt_march_cancelling(
    world: &mut World,
    entity: Entity,
    at: i64,
    reason: Reason,
    cancel: Reason,
) {
    let Some(mut general) = world.get_mut::<General>(entity) else {
        return;
    };
    let Some(march) = general.march.take() else {
        return;
    };
    let stop = march.path[march.next.saturating_sub(1)].clone();
    let id = general.id.clone();
    set_city(world, entity, &stop);
    world.resource_mut::<Outbox>().emit(
        at,
        aggregate("general", &id),
        EventKind::MarchHalted {
            general: id.clone(),
            at: stop,
            to: march.to().to_string(),
            reason,
        },
    );
    finish_order(world, entity, at, Some(cancel));
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
    fn rollback_takes_back_new_orders_and_brings_back_the_evicted() {
        let mut orders = Orders::new(2);
        orders.put("p", record("open", OrderStatus::Accepted));
        orders.put("p", record("f0", OrderStatus::Rejected));
        orders.put("p", record("f1", OrderStatus::Rejected));
        let before = orders.stored("p");
        let mark = orders.mark();
        orders.put("p", record("f2", OrderStatus::Completed));
        orders.put("p", record("f3", OrderStatus::Completed));
        assert!(orders.get("p", "f0").is_none());
        orders.rollback(mark);
        assert_eq!(orders.stored("p"), before);
        // The window goes on as if nothing had happened.
        orders.put("p", record("f4", OrderStatus::Rejected));
        assert!(orders.get("p", "f0").is_none() && orders.get("p", "f1").is_some());
    }
}

//! What the World hands to its stores (docs/storage.md#checkpoint-epochs): checkpoint epochs
//! made of the snapshots of the entities that changed, the domain events of the epoch and the
//! checkpoint record that commits them; the hot snapshot; and what recovery reads back.
//!
//! Plain data: the World builds them without I/O (`systems::persist`), `persistence` writes and
//! reads them, and recovery turns them back into a World. Their serialized field names are what
//! stores hold: a rename here must still read what older code wrote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    events::DomainEvent,
    read_model::OrderRecord,
    world::{City, General, Nation},
};

/// The kinds of snapshot documents (`kind`, docs/storage.md#snapshots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    Nation,
    City,
    General,
    Battle,
    /// A player's order window and last activity.
    Player,
}

impl SnapshotKind {
    pub const ALL: [SnapshotKind; 5] = [
        SnapshotKind::Nation,
        SnapshotKind::City,
        SnapshotKind::General,
        SnapshotKind::Battle,
        SnapshotKind::Player,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SnapshotKind::Nation => "nation",
            SnapshotKind::City => "city",
            SnapshotKind::General => "general",
            SnapshotKind::Battle => "battle",
            SnapshotKind::Player => "player",
        }
    }

    pub fn from_name(name: &str) -> Option<SnapshotKind> {
        SnapshotKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A player as the World knows it: the order window (open orders, then finished ones oldest
/// first) and when the player was last active, in game seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerState {
    pub player: String,
    pub last_seen: Option<i64>,
    pub orders: Vec<OrderRecord>,
}

/// The state of one entity in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "state", rename_all = "snake_case")]
pub enum EntityState {
    Nation(Nation),
    City(City),
    General(General),
    /// A battle under way: its setup, sides and steps run, which rebuild its simulation
    /// deterministically (the `systems` crate owns the shape).
    Battle(serde_json::Value),
    Player(PlayerState),
}

impl EntityState {
    pub fn kind(&self) -> SnapshotKind {
        match self {
            EntityState::Nation(_) => SnapshotKind::Nation,
            EntityState::City(_) => SnapshotKind::City,
            EntityState::General(_) => SnapshotKind::General,
            EntityState::Battle(_) => SnapshotKind::Battle,
            EntityState::Player(_) => SnapshotKind::Player,
        }
    }
}

/// A changed entity of an epoch: its newest state, or `None` for one that no longer exists
/// (a tombstone).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub kind: SnapshotKind,
    pub ref_id: String,
    pub state: Option<EntityState>,
    /// Game second the state was taken. What changes an entity only by the passing of time
    /// (command points regenerating) is brought forward from it at recovery.
    pub taken_at: i64,
}

/// An entity's state as a store holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEntity {
    pub taken_at: i64,
    pub state: EntityState,
}

/// The checkpoint record (docs/storage.md#checkpoints): the commit point of an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub world: String,
    /// Lease generation (0 where no lease is used).
    pub lease_epoch: u64,
    /// The epoch this checkpoint commits; snapshots above it do not count.
    pub epoch: u64,
    /// The World's incarnation (order `revision`), raised by every recovery.
    pub incarnation: u64,
    /// Sequence of the last domain event that counts.
    pub last_seq: u64,
    /// The last Redis stream entry applied, where commands come from a stream.
    pub stream_id: Option<crate::stream::EntryId>,
    /// The last command-log sequence applied.
    pub log_seq: u64,
    pub game_seconds: i64,
    /// Strategy ticks run since the world was created.
    pub tick: u64,
    pub data_hash: String,
    /// Hash of the scenario's files alone, as the world was created from them (empty in a
    /// checkpoint written before it was kept): a start on other scenario files says so.
    #[serde(default)]
    pub scenario_hash: String,
    pub scenario: String,
    /// Real time of the checkpoint, Unix milliseconds (the World catches up from it).
    pub updated_at: u64,
    /// A sandbox world's clock (docs/sandbox.md); none for every other world.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::world::Sandbox>,
    /// The maintenance message while commands are refused (docs/http.md#admin-routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
}

/// One checkpoint epoch, as the World hands it to the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub checkpoint: Checkpoint,
    /// Entities changed in the epoch, one entry each; all of them for a full checkpoint.
    pub snapshots: Vec<Snapshot>,
    /// The epoch's domain events in sequence order, contiguous after the previous epoch's.
    pub events: Vec<DomainEvent>,
    /// Whether `snapshots` holds every live entity (a new incarnation's first epoch).
    pub full: bool,
}

impl Batch {
    /// Folds a later batch into this one: the newest state per entity, every event, the later
    /// checkpoint. Used when batches wait too long for their store
    /// (docs/operations.md#mongodb-down).
    pub fn merge(&mut self, later: Batch) {
        let mut by_key: BTreeMap<(SnapshotKind, String), Snapshot> = self
            .snapshots
            .drain(..)
            .map(|s| ((s.kind, s.ref_id.clone()), s))
            .collect();
        for s in later.snapshots {
            by_key.insert((s.kind, s.ref_id.clone()), s);
        }
        self.snapshots = by_key.into_values().collect();
        self.events.extend(later.events);
        self.checkpoint = later.checkpoint;
        self.full |= later.full;
    }
}

/// What recovery reads from a store: the last checkpoint and the state of every entity it
/// names.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered {
    pub checkpoint: Checkpoint,
    pub entities: Vec<StoredEntity>,
    /// The recovering World's incarnation, already made durable by the store (above every
    /// incarnation any earlier run used, so no revision is ever reused).
    pub incarnation: u64,
    /// Events up to `checkpoint.last_seq` that the store does not hold yet (recovered from a
    /// hot snapshot): the World's first epoch writes them.
    pub events: Vec<DomainEvent>,
}

/// The hot snapshot (docs/redis.md#the-hot-snapshot): the whole World every few seconds, between
/// checkpoints. `checkpoint` carries its own positions (`stream_id`, `log_seq`, `last_seq`),
/// its lease epoch and, as `epoch`, the epoch under way when it was taken (so a checkpoint
/// closed after it has an epoch at least as high); `entities` is every live entity with the
/// players' order windows; `events` are the events up to `last_seq` that were not yet
/// durable when it was taken, in sequence order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HotSnapshot {
    pub checkpoint: Checkpoint,
    pub entities: Vec<StoredEntity>,
    pub events: Vec<DomainEvent>,
}

/// The outcome of a store's recovery: the World's new incarnation, and the last checkpoint
/// if the world has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    pub incarnation: u64,
    pub world: Option<Recovered>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, gold: Option<i64>) -> Snapshot {
        Snapshot {
            kind: SnapshotKind::Player,
            ref_id: id.into(),
            taken_at: gold.unwrap_or(0),
            state: gold.map(|g| {
                EntityState::Player(PlayerState {
                    player: id.into(),
                    last_seen: Some(g),
                    orders: vec![],
                })
            }),
        }
    }

    fn batch(epoch: u64, snapshots: Vec<Snapshot>, seqs: &[u64]) -> Batch {
        Batch {
            checkpoint: Checkpoint {
                world: "w".into(),
                lease_epoch: 0,
                epoch,
                incarnation: 1,
                last_seq: seqs.last().copied().unwrap_or(0),
                stream_id: None,
                log_seq: epoch,
                game_seconds: 0,
                tick: 0,
                data_hash: String::new(),
                scenario_hash: String::new(),
                scenario: String::new(),
                updated_at: 0,
                sandbox: None,
                maintenance: None,
            },
            snapshots,
            events: seqs
                .iter()
                .map(|&seq| DomainEvent {
                    seq,
                    kind: crate::events::EventKind::MonthBegan { year: 1, month: 1 },
                    game_time: 0,
                    aggregate: "world:w".into(),
                })
                .collect(),
            full: false,
        }
    }

    #[test]
    fn merging_keeps_the_newest_state_and_every_event() {
        let mut first = batch(1, vec![snap("a", Some(1)), snap("b", Some(1))], &[1, 2]);
        first.merge(batch(2, vec![snap("a", Some(2)), snap("c", None)], &[3]));
        assert_eq!(first.checkpoint.epoch, 2);
        assert_eq!(
            first.snapshots,
            vec![snap("a", Some(2)), snap("b", Some(1)), snap("c", None)]
        );
        let seqs: Vec<u64> = first.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn order_hashes_keep_all_bits() {
        let order = OrderRecord {
            view: crate::read_model::OrderView {
                order_id: "o".into(),
                command_type: "TRAIN".into(),
                general: None,
                status: crate::read_model::OrderStatus::Queued,
                reason: None,
                revision: 1,
                accepted_at: None,
                completes_at: None,
                general_id: None,
                message: None,
            },
            body_hash: u64::MAX - 7,
        };
        let json = serde_json::to_string(&order).unwrap();
        assert_eq!(serde_json::from_str::<OrderRecord>(&json).unwrap(), order);
    }
}

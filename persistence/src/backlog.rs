//! Epochs waiting for their store (docs/operations.md#mongodb-down): in order, at most a bound;
//! beyond it the two oldest are merged into one (the newest state of each entity, every event,
//! the later checkpoint), so nothing is dropped and memory stays bounded by the entities, not
//! by how long the store is out.

use std::collections::VecDeque;

use components::persist::Batch;

#[derive(Debug)]
pub struct Backlog {
    batches: VecDeque<Batch>,
    max: usize,
}

impl Backlog {
    /// A backlog of at most `max` epochs (at least 2).
    pub fn new(max: usize) -> Self {
        Backlog {
            batches: VecDeque::new(),
            max: max.max(2),
        }
    }

    /// Adds an epoch; returns how many merges keeping the bound took.
    pub fn push(&mut self, batch: Batch) -> usize {
        self.batches.push_back(batch);
        let mut merges = 0;
        while self.batches.len() > self.max {
            let Some(second) = self.batches.remove(1) else {
                break;
            };
            if let Some(first) = self.batches.front_mut() {
                first.merge(second);
                merges += 1;
            }
        }
        merges
    }

    /// The oldest epoch, to write next.
    pub fn pop(&mut self) -> Option<Batch> {
        self.batches.pop_front()
    }

    /// Puts back an epoch its store did not take, to be tried first again.
    pub fn put_back(&mut self, batch: Batch) {
        self.batches.push_front(batch);
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Real time (Unix ms) of the oldest waiting epoch's checkpoint.
    pub fn oldest_at(&self) -> Option<u64> {
        self.batches.front().map(|b| b.checkpoint.updated_at)
    }
}

#[cfg(test)]
mod tests {
    use components::{
        events::{DomainEvent, EventKind},
        persist::{Checkpoint, EntityState, PlayerState, Snapshot, SnapshotKind},
    };

    use super::*;

    fn batch(epoch: u64) -> Batch {
        Batch {
            checkpoint: Checkpoint {
                world: "w".into(),
                lease_epoch: 0,
                epoch,
                incarnation: 1,
                last_seq: epoch,
                stream_id: None,
                log_seq: epoch,
                game_seconds: 0,
                tick: 0,
                data_hash: String::new(),
                scenario_hash: String::new(),
                scenario: String::new(),
                updated_at: epoch,
                sandbox: None,
                maintenance: None,
            },
            snapshots: vec![Snapshot {
                kind: SnapshotKind::Player,
                ref_id: "p".into(),
                state: Some(EntityState::Player(PlayerState {
                    player: "p".into(),
                    last_seen: Some(epoch as i64),
                    orders: vec![],
                })),
                taken_at: epoch as i64,
            }],
            events: vec![DomainEvent {
                seq: epoch,
                kind: EventKind::MonthBegan { year: 1, month: 1 },
                game_time: 0,
                aggregate: "world:w".into(),
            }],
            full: false,
        }
    }

    #[test]
    fn at_the_bound_the_oldest_merge_and_nothing_is_lost() {
        let mut backlog = Backlog::new(3);
        let merges: usize = (1..=10).map(|e| backlog.push(batch(e))).sum();
        assert_eq!(backlog.len(), 3);
        assert_eq!(merges, 7);
        let first = backlog.pop().unwrap();
        assert_eq!(
            first.checkpoint.epoch, 8,
            "the merged epoch carries the later checkpoint"
        );
        let seqs: Vec<u64> = first.events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=8).collect::<Vec<_>>(),
            "every event is kept, in order"
        );
        assert_eq!(first.snapshots.len(), 1, "one state per entity: the newest");
        assert_eq!(first.snapshots[0].taken_at, 8);
        backlog.put_back(first);
        assert_eq!(backlog.oldest_at(), Some(8));
        let order: Vec<u64> = std::iter::from_fn(|| backlog.pop())
            .map(|b| b.checkpoint.epoch)
            .collect();
        assert_eq!(order, vec![8, 9, 10]);
        assert!(backlog.is_empty());
    }
}

//! The threads battles step on (docs/operations.md#battle-threads).
//!
//! Battles are independent: each owns its physics world. A large battle is stepped on all the
//! pool's threads at once (rapier's `parallel` feature splits its stages among them); smaller
//! battles step side by side, each on one thread, since splitting a small step among threads
//! costs more in waking them than it saves. The World thread hands the battles over for a
//! pass and waits for it, so what a battle does never depends on which thread stepped it or
//! when: each battle is stepped by one caller at a time, and rapier's parallel stages give the
//! same result on one thread or many (the hash tests in `tests`).
//!
//! Never step two battles at once on one pool of several threads: in each step rapier hands
//! the pool a task (its broad phase's tree optimisation) and waits for it, and with every
//! thread of the pool so waiting nobody runs it. The large battles therefore take the wide
//! pool one at a time, and battles side by side each have a single-thread pool, where rapier
//! runs that task inline.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use rayon::ThreadPool;

use super::{baseline::Baseline, sim::BattleSim};

/// Bodies on the field from which a battle's step is split among the pool's threads: below
/// it, the second thread costs more than it brings (BENCHMARKS.md#battle-threads).
pub const WIDE_BODIES: usize = 4_000;

/// Something stepped on the pool: a battle, or the bare physics world the benchmark runs
/// beside one.
pub trait Steppable: Send {
    fn step_once(&mut self);
    /// Bodies in its physics world, which decide whether its step is split among threads.
    fn bodies(&self) -> usize;
    /// Whether it has ended and takes no more steps.
    fn ended(&self) -> bool;
}

impl Steppable for BattleSim {
    fn step_once(&mut self) {
        self.step();
    }
    fn bodies(&self) -> usize {
        self.physics_bodies()
    }
    fn ended(&self) -> bool {
        self.outcome().is_some()
    }
}

impl Steppable for Baseline {
    fn step_once(&mut self) {
        self.step();
    }
    fn bodies(&self) -> usize {
        Baseline::bodies(self)
    }
    fn ended(&self) -> bool {
        false
    }
}

/// One battle handed to the pool with the steps it may take.
pub struct Stepping<'a, S: Steppable + ?Sized> {
    pub battle: &'a mut S,
    pub quota: u64,
}

/// The threads battles step on: `threads` threads used together for a large battle, and one
/// single-thread pool per thread for the battles stepped side by side.
#[derive(bevy_ecs::resource::Resource, Clone)]
pub struct BattlePool {
    wide: Option<Arc<ThreadPool>>,
    narrow: Vec<Arc<ThreadPool>>,
    /// Bodies from which a battle steps on all threads ([`WIDE_BODIES`]).
    wide_from: usize,
}

fn pool(threads: usize, name: &'static str) -> Option<Arc<ThreadPool>> {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
    {
        Ok(pool) => Some(Arc::new(pool)),
        Err(error) => {
            tracing::warn!(%error, threads, "no battle threads: battles step on the World's thread");
            None
        }
    }
}

impl BattlePool {
    /// A pool of `threads` threads (at least one). If the system refuses threads, battles step
    /// on the calling thread instead: slower, never different.
    pub fn new(threads: usize) -> BattlePool {
        BattlePool::with_wide_from(threads, WIDE_BODIES)
    }

    /// A pool that splits the step of every battle of `wide_from` bodies or more among its
    /// threads (tests use it to split small ones).
    pub fn with_wide_from(threads: usize, wide_from: usize) -> BattlePool {
        let threads = threads.max(1);
        let wide = if threads > 1 {
            pool(threads, "battle")
        } else {
            None
        };
        let narrow: Option<Vec<_>> = (0..threads).map(|_| pool(1, "battle-one")).collect();
        BattlePool {
            wide,
            narrow: narrow.unwrap_or_default(),
            wide_from,
        }
    }

    /// Runs `work` on one thread of the pool, waiting for it: for a battle stepped outside a
    /// pass (a battle settled at once when a general joins it).
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match self.narrow.first() {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Steps `battles` in rounds, each battle up to `per_round` steps a round, until every
    /// quota is spent or every battle ended, or `deadline` passes (checked between rounds).
    /// Returns the steps taken.
    pub fn run<S: Steppable + ?Sized>(
        &self,
        battles: &mut [Stepping<'_, S>],
        per_round: u64,
        deadline: Option<Instant>,
    ) -> u64 {
        let mut total = 0;
        loop {
            let stepped = self.round(battles, per_round.max(1));
            total += stepped;
            if stepped == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                return total;
            }
        }
    }

    /// One round: the large battles one after another on all threads, then the rest side by
    /// side, in groups of about equal size, one group to a thread.
    fn round<S: Steppable + ?Sized>(&self, battles: &mut [Stepping<'_, S>], per_round: u64) -> u64 {
        let mut wide = Vec::new();
        let mut narrow = Vec::new();
        for stepping in battles.iter_mut() {
            if stepping.quota == 0 || stepping.battle.ended() {
                continue;
            }
            if self.wide.is_some() && stepping.battle.bodies() >= self.wide_from {
                wide.push(stepping);
            } else {
                narrow.push(stepping);
            }
        }
        let mut total = 0;
        if let Some(pool) = &self.wide {
            for stepping in wide {
                total += pool.install(|| advance(stepping, per_round));
            }
        }
        if narrow.is_empty() {
            return total;
        }
        let groups = self.narrow.len().min(narrow.len());
        if groups <= 1 {
            let step_all = || {
                narrow
                    .into_iter()
                    .map(|s| advance(s, per_round))
                    .sum::<u64>()
            };
            return total
                + match self.narrow.first() {
                    Some(pool) => pool.install(step_all),
                    None => step_all(),
                };
        }
        // Largest first, each to the lightest group so far.
        narrow.sort_by_key(|s| std::cmp::Reverse(s.battle.bodies()));
        let mut split: Vec<(usize, Vec<&mut Stepping<'_, S>>)> =
            (0..groups).map(|_| (0, Vec::new())).collect();
        for stepping in narrow {
            if let Some(lightest) = split.iter_mut().min_by_key(|(load, _)| *load) {
                lightest.0 += stepping.battle.bodies().max(1);
                lightest.1.push(stepping);
            }
        }
        let groups: Vec<Vec<&mut Stepping<'_, S>>> = split.into_iter().map(|(_, g)| g).collect();
        total + fan_out(&self.narrow, groups, per_round)
    }
}

/// Steps each group on its own single-thread pool, all at once, and waits for them: each
/// group is spawned into its pool from this thread (which only waits: a thread outside the
/// pools sleeps on the scope's latch, where a pool's worker waiting on another pool would spin).
fn fan_out<S: Steppable + ?Sized>(
    pools: &[Arc<ThreadPool>],
    groups: Vec<Vec<&mut Stepping<'_, S>>>,
    per_round: u64,
) -> u64 {
    let steps = AtomicU64::new(0);
    fn spawn_each<'scope, S: Steppable + ?Sized>(
        pools: &[Arc<ThreadPool>],
        mut groups: std::vec::IntoIter<Vec<&'scope mut Stepping<'_, S>>>,
        per_round: u64,
        steps: &'scope AtomicU64,
    ) {
        let (Some((pool, rest)), Some(mut group)) = (pools.split_first(), groups.next()) else {
            return;
        };
        pool.in_place_scope(|scope| {
            scope.spawn(move |_| {
                let taken: u64 = group.iter_mut().map(|s| advance(s, per_round)).sum();
                steps.fetch_add(taken, Ordering::Relaxed);
            });
            spawn_each(rest, groups, per_round, steps);
        });
    }
    spawn_each(pools, groups.into_iter(), per_round, &steps);
    steps.into_inner()
}

/// Steps one battle up to `per_round` times within its quota; returns the steps taken.
fn advance<S: Steppable + ?Sized>(stepping: &mut Stepping<'_, S>, per_round: u64) -> u64 {
    let mut steps = 0;
    while steps < per_round && stepping.quota > 0 && !stepping.battle.ended() {
        stepping.battle.step_once();
        stepping.quota -= 1;
        steps += 1;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::battle::setup::{BattleParams, field_battle};

    fn battles(count: u64) -> Vec<BattleSim> {
        let rules = crate::assets::load_rules_only(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../assets"
        )))
        .unwrap();
        let params = BattleParams::from_balance(&rules.balance.battle);
        (0..count)
            .map(|seed| {
                BattleSim::new(field_battle(240, 11 + seed, &params, &rules.troops)).unwrap()
            })
            .collect()
    }

    /// Steps `sims` `steps` times on `pool`, in passes of a few steps as the World does, and
    /// returns each battle's state hash.
    fn run(pool: &BattlePool, mut sims: Vec<BattleSim>, steps: u64) -> Vec<u64> {
        let mut left = steps;
        while left > 0 {
            let pass = left.min(7);
            let mut stepping: Vec<Stepping<'_, BattleSim>> = sims
                .iter_mut()
                .map(|battle| Stepping {
                    battle,
                    quota: pass,
                })
                .collect();
            let taken = pool.run(&mut stepping, 1, None);
            assert!(taken <= pass * 3);
            left -= pass;
        }
        sims.iter().map(BattleSim::state_hash).collect()
    }

    #[test]
    fn battles_end_the_same_on_one_thread_two_side_by_side_or_split() {
        let steps = 400;
        let alone: Vec<u64> = battles(3)
            .into_iter()
            .map(|mut sim| {
                for _ in 0..steps {
                    sim.step();
                }
                sim.state_hash()
            })
            .collect();
        assert_eq!(run(&BattlePool::new(1), battles(3), steps), alone);
        // Side by side, one battle to a thread at a time.
        assert_eq!(run(&BattlePool::new(2), battles(3), steps), alone);
        // Every step split among the threads (rapier's parallel stages).
        assert_eq!(
            run(&BattlePool::with_wide_from(2, 0), battles(3), steps),
            alone
        );
        assert_eq!(
            run(&BattlePool::with_wide_from(3, 0), battles(3), steps),
            alone
        );
    }

    #[test]
    fn a_pass_stops_at_its_quota_and_its_deadline() {
        let pool = BattlePool::new(2);
        let mut sims = battles(2);
        let mut stepping: Vec<Stepping<'_, BattleSim>> = sims
            .iter_mut()
            .zip([5, 2])
            .map(|(battle, quota)| Stepping { battle, quota })
            .collect();
        assert_eq!(pool.run(&mut stepping, 1, None), 7);
        assert_eq!(stepping.iter().map(|s| s.quota).sum::<u64>(), 0);
        // A deadline already past still lets one round through.
        let mut stepping: Vec<Stepping<'_, BattleSim>> = sims
            .iter_mut()
            .map(|battle| Stepping { battle, quota: 5 })
            .collect();
        assert_eq!(pool.run(&mut stepping, 1, Some(Instant::now())), 2);
        assert_eq!([sims[0].steps(), sims[1].steps()], [6, 3]);
    }
}

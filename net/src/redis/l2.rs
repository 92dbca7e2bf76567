//! The L2 read models in Redis (docs/redis.md#l2-read-models), written by the world's writer
//! from the read models the World publishes, never by the World itself (the tick never waits on
//! Redis):
//!
//! - `state:{world}:{kind}:{id}` hashes with `version` and `json` for the changed world
//!   summary, nations, cities, generals, battles and leaderboards, removed ones deleted;
//! - each round's changed keys on `channel:cache:invalidate:{world}` as `{"round": N, "keys":
//!   [...]}` (`"keys": "*"` on a writer's first round: drop everything);
//! - orders advanced in `order:{world}:{player}:{id}` by (revision, stage), never backwards,
//!   expiring 24 hours after they finish;
//! - live domain events on `channel:game:events:{world}` and battle frames (at most 10 a
//!   second, and each finished battle's last frame, marked `last`) on
//!   `channel:game:battle:{world}`.
//!
//! A round that fails (Redis out of reach) is retried whole from the last round written, so
//! what it holds is bounded by one snapshot; live events that left the published window
//! meanwhile are skipped (clients resynchronise from the durable log).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use components::read_model::{Key, OrderRecord, RankBy, ReadHandle, ReadModels, ranks};
use imbl::{OrdMap, ordmap::DiffItem};
use redis::{Pipeline, RedisResult, Script, aio::ConnectionManager};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{keys, lease::Tenure, scan_hashes};

/// How often the writer looks for a newly published snapshot.
pub const ROUND_EVERY: Duration = Duration::from_millis(50);
/// Battle frames go out at most this often.
const FRAMES_EVERY: Duration = Duration::from_millis(100);
/// A finished order's hash lives this long (docs/redis.md#advancing-an-order).
pub const FINISHED_ORDER_TTL: Duration = Duration::from_secs(24 * 3_600);

/// Advances an order hash if (revision, stage) is higher than what it holds.
const ADVANCE: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then return 0 end
local held = redis.call('HMGET', KEYS[1], 'revision', 'stage')
local revision, stage = tonumber(held[1]) or -1, tonumber(held[2]) or -1
local r, s = tonumber(ARGV[1]), tonumber(ARGV[2])
if r > revision or (r == revision and s > stage) then
  redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'stage', ARGV[2], 'status', ARGV[3],
    'body_hash', ARGV[4], 'view', ARGV[5], 'order_id', ARGV[6])
  if ARGV[7] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[7]) end
  return 1
end
return 0
";

/// What one round writes.
struct Round {
    pipe: Pipeline,
    keys: Vec<String>,
    /// Whether the pipeline loads the order script before its first use.
    script_loaded: bool,
}

impl Round {
    fn put(&mut self, key: String, version: u64, value: &impl Serialize) {
        self.put_json(
            key,
            version,
            &serde_json::to_string(value).unwrap_or_default(),
        );
    }

    /// [`Round::put`] of a value already serialized.
    fn put_json(&mut self, key: String, version: u64, json: &str) {
        self.pipe
            .cmd("HSET")
            .arg(&key)
            .arg("version")
            .arg(version)
            .arg("json")
            .arg(json)
            .ignore();
        self.keys.push(key);
    }

    /// Publishes `value` as JSON on `channel`.
    fn publish(&mut self, channel: &str, value: &impl Serialize) {
        let json = serde_json::to_string(value).unwrap_or_default();
        self.pipe.cmd("PUBLISH").arg(channel).arg(json).ignore();
    }

    fn delete(&mut self, key: String) {
        self.pipe.cmd("DEL").arg(&key).ignore();
        self.keys.push(key);
    }

    /// Writes what changed in one kind's map between `old` and `new`.
    fn map<V: Serialize + PartialEq>(
        &mut self,
        world: &str,
        kind: &str,
        old: Option<&OrdMap<Key, Arc<V>>>,
        new: &OrdMap<Key, Arc<V>>,
        version: impl Fn(&V) -> u64,
    ) -> bool {
        let before = self.keys.len();
        match old {
            None => {
                for (id, view) in new {
                    self.put(keys::state(world, kind, id), version(view), &**view);
                }
            }
            Some(old) => {
                for item in old.diff(new) {
                    match item {
                        DiffItem::Add(id, view)
                        | DiffItem::Update {
                            new: (id, view), ..
                        } => self.put(keys::state(world, kind, id), version(view), &**view),
                        DiffItem::Remove(id, _) => self.delete(keys::state(world, kind, id)),
                    }
                }
            }
        }
        self.keys.len() > before
    }
}

/// Writes the L2 read models of one world from its published snapshots.
pub struct L2Writer {
    redis: ConnectionManager,
    world: String,
    read: ReadHandle,
    /// The last snapshot written.
    written: Option<Arc<ReadModels>>,
    boards: BTreeMap<&'static str, String>,
    /// Invalidation messages published (their `round`).
    round: u64,
    /// This writer's id, in its messages and the world summary's hash: readers (and this
    /// writer) tell from it when another writer has written, or Redis has lost the keys.
    writer: String,
    tenure: Option<Tenure>,
    /// Events up to this `seq` were published live.
    events_after: Option<u64>,
    /// Order feed entries up to this `seq` were written.
    orders_after: u64,
    frames_at: Instant,
    advance: Script,
}

impl L2Writer {
    /// With `tenure`, rounds are written only while the lease was recently confirmed.
    pub fn new(
        redis: ConnectionManager,
        world: &str,
        read: ReadHandle,
        tenure: Option<Tenure>,
    ) -> Self {
        L2Writer {
            redis,
            world: world.to_string(),
            read,
            tenure,
            writer: crate::random_hex::<8>(),
            written: None,
            boards: BTreeMap::new(),
            round: 0,
            events_after: None,
            orders_after: 0,
            frames_at: Instant::now(),
            advance: Script::new(ADVANCE),
        }
    }

    /// Writes a round whenever a new snapshot is published, until `stop` (then once more).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut failing = false;
        loop {
            let stopping = *stop.borrow();
            match self.write().await {
                Ok(()) => {
                    if failing {
                        info!(world = %self.world, "writing L2 read models again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        warn!(world = %self.world, error = %e, "cannot write L2 read models; retrying (HTTP reads of this process go on)");
                    }
                    failing = true;
                }
            }
            if stopping {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(if failing { Duration::from_secs(1) } else { ROUND_EVERY }) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: everything that changed since the last round written.
    pub async fn write(&mut self) -> RedisResult<()> {
        let Some(models) = self.read.load_full() else {
            return Ok(());
        };
        if self
            .written
            .as_ref()
            .is_some_and(|w| Arc::ptr_eq(w, &models))
        {
            return Ok(());
        }
        if self.tenure.as_ref().is_some_and(|t| !t.fresh()) {
            // Not sure the lease is still ours: write nothing a successor may have replaced.
            return Ok(());
        }
        if self.written.is_some() {
            let writer: Option<String> = redis::cmd("HGET")
                .arg(keys::state(&self.world, "world", "summary"))
                .arg("writer")
                .query_async(&mut self.redis)
                .await?;
            if writer.as_deref() != Some(self.writer.as_str()) {
                // Another writer wrote since, or Redis lost the keys: write everything again.
                warn!(world = %self.world, "the L2 read models were written by another writer or lost; writing them all again");
                self.written = None;
            }
        }
        let old = self.written.clone();
        let old = old.as_deref();
        let world = self.world.clone();
        let mut round = Round {
            pipe: redis::pipe(),
            keys: Vec::new(),
            script_loaded: false,
        };
        if old.is_none_or(|o| o.world != models.world) {
            round.put(
                keys::state(&world, "world", "summary"),
                models.world.tick,
                &*models.world,
            );
        }
        if !models.rules.data_hash.is_empty() && old.is_none_or(|o| o.rules != models.rules) {
            round.put(
                keys::state(&world, "rules", "current"),
                models.world.tick,
                &*models.rules,
            );
        }
        let mut ranked = false;
        ranked |= round.map(
            &world,
            "nation",
            old.map(|o| &o.nations),
            &models.nations,
            |v| v.version,
        );
        ranked |= round.map(
            &world,
            "city",
            old.map(|o| &o.cities),
            &models.cities,
            |v| v.version,
        );
        ranked |= round.map(
            &world,
            "general",
            old.map(|o| &o.generals),
            &models.generals,
            |v| v.version,
        );
        round.map(
            &world,
            "battle",
            old.map(|o| &o.battles),
            &models.battles,
            |v| v.version,
        );
        let mut boards = self.boards.clone();
        if ranked || old.is_none() {
            for by in RankBy::ALL {
                let json = serde_json::to_string(&ranks(&models, by)).unwrap_or_default();
                if boards.get(by.name()) != Some(&json) {
                    round.put_json(
                        keys::state(&world, "leaderboard", by.name()),
                        self.round + 1,
                        &json,
                    );
                    boards.insert(by.name(), json);
                }
            }
        }
        if old.is_none() {
            // A new writer: whatever an earlier one left that is gone now goes too.
            let live: BTreeSet<String> = round.keys.iter().cloned().collect();
            let pattern = keys::states_pattern(&self.world);
            for stale in scan_hashes(&mut self.redis, &pattern).await? {
                if !live.contains(&stale) {
                    round.pipe.cmd("DEL").arg(&stale).ignore();
                }
            }
        }
        let orders_to = self.orders(&mut round, old.is_none(), &models);
        // Live events from the writer's start on; earlier ones are in the durable log.
        let newest = models.events.last().map_or(0, |e| e.seq);
        let after = self.events_after.unwrap_or(newest);
        for event in models.events_after(after, usize::MAX, None) {
            round.publish(&keys::events(&world), &*event);
        }
        // A finished battle's last frame goes out at once (its `last` field tells it apart).
        let last_frames: Vec<_> = match old {
            None => Vec::new(),
            Some(o) => o
                .final_frames
                .diff(&models.final_frames)
                .filter_map(|item| match item {
                    DiffItem::Add(_, f) => Some(f.clone()),
                    _ => None,
                })
                .collect(),
        };
        for frame in last_frames {
            round.publish(&keys::battle_frames(&world), &*frame);
        }
        if self.frames_at.elapsed() >= FRAMES_EVERY {
            self.frames_at = Instant::now();
            let changed: Vec<_> = match old {
                None => models.frames.values().cloned().collect(),
                Some(o) => o
                    .frames
                    .diff(&models.frames)
                    .filter_map(|item| match item {
                        DiffItem::Add(_, f) | DiffItem::Update { new: (_, f), .. } => {
                            Some(f.clone())
                        }
                        DiffItem::Remove(..) => None,
                    })
                    .collect(),
            };
            for frame in changed {
                round.publish(&keys::battle_frames(&world), &*frame);
            }
        }
        let keys = if old.is_none() {
            json!("*")
        } else {
            json!(round.keys)
        };
        let announce = old.is_none() || !round.keys.is_empty();
        if announce {
            // Readers that missed a message find the round here and reload.
            round
                .pipe
                .cmd("HSET")
                .arg(keys::state(&world, "world", "summary"))
                .arg("round")
                .arg(self.round + 1)
                .arg("writer")
                .arg(&self.writer)
                .ignore();
            let message = json!({
                "round": self.round + 1,
                "writer": self.writer,
                "keys": keys,
                "applied_entry": models.applied_entry,
            })
            .to_string();
            round
                .pipe
                .cmd("PUBLISH")
                .arg(keys::invalidations(&world))
                .arg(message)
                .ignore();
        }
        if !round.pipe.is_empty() {
            round.pipe.query_async::<()>(&mut self.redis).await?;
        }
        if announce {
            self.round += 1;
        }
        self.events_after = Some(newest.max(after));
        self.orders_after = orders_to;
        self.boards = boards;
        self.written = Some(models);
        Ok(())
    }

    /// Advances the order hashes of orders that changed since the last round: those of the
    /// order feed, which holds orders the window evicted before this round looked (a backlog
    /// decided between two rounds), and every order in the windows when the writer is new or
    /// fell behind the feed.
    /// Returns the feed position written up to.
    fn orders(&self, round: &mut Round, first: bool, models: &ReadModels) -> u64 {
        let mut changed: BTreeMap<(&str, &str), &OrderRecord> = BTreeMap::new();
        let feed = match models.order_changes_after(self.orders_after) {
            Some(feed) if !first => feed,
            behind => {
                if behind.is_none() {
                    warn!(world = %self.world, "the order feed moved on past this writer's last round; writing every order window");
                }
                for (player, window) in &models.orders {
                    for entry in window.values() {
                        changed.insert((player, &entry.view.order_id), entry);
                    }
                }
                models.order_feed.clone()
            }
        };
        for change in &feed {
            changed.insert(
                (&change.player, &change.record.view.order_id),
                &change.record,
            );
        }
        for ((player, _), entry) in changed {
            self.advance(round, player, entry);
        }
        models.order_feed_seq()
    }

    /// Advances one order's hash to `entry`'s state (never backwards).
    fn advance(&self, round: &mut Round, player: &str, entry: &OrderRecord) {
        if !round.script_loaded {
            round.pipe.load_script(&self.advance).ignore();
            round.script_loaded = true;
        }
        let key = keys::order(&self.world, player, &entry.view.order_id);
        round.keys.push(key.clone());
        let view = &entry.view;
        let ttl = if view.status.is_finished() {
            FINISHED_ORDER_TTL.as_secs()
        } else {
            0
        };
        let json = serde_json::to_string(view).unwrap_or_default();
        round
            .pipe
            .invoke_script(
                self.advance
                    .key(key)
                    .arg(view.revision)
                    .arg(view.status.stage())
                    .arg(view.status.name())
                    .arg(entry.body_hash.to_string())
                    .arg(json)
                    .arg(&view.order_id)
                    .arg(ttl),
            )
            .ignore();
    }
}

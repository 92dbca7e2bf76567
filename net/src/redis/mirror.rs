//! The L1 read models of an `api` process (docs/redis.md#the-api-mirror,
//! docs/http.md#read-consistency): an in-process copy of the world's L2 read models in Redis,
//! published through the same [`ReadHandle`] the `serve` handlers read, so every read route
//! works unchanged.
//!
//! It subscribes to `channel:cache:invalidate:{world}` before loading everything, then fetches
//! the keys each message names (a `*`, or a message out of sequence, reloads everything).
//! Pub/Sub may drop messages, so every [`L1_TTL`] it compares the round the writer last
//! announced (`round` in the world summary's hash) with its own and reloads when they differ at
//! two checks in a row: a read is never staler than about two TTLs plus a tick. Battle frames come from
//! `channel:game:battle:{world}` and live domain events from `channel:game:events:{world}`, on
//! the same subscription (one per process), into a bounded window of recent events that the
//! WebSocket side pushes from; each order hash it reads is also added to the order feed. While
//! Redis is out of reach the last copy keeps serving.

use std::{sync::Arc, time::Duration};

use components::{
    battle::{BattleStatus, BattleView, FrameView},
    events::{DomainEvent, EventKind},
    read_model::{
        CityView, GeneralView, Key, NationView, ORDER_FEED_LEN, OrderChange, OrderRecord,
        OrderView, ReadHandle, ReadModels, RulesView, WorldSummary,
    },
};
use futures_util::StreamExt;
use imbl::{OrdMap, Vector};
use metrics::counter;
use redis::{RedisResult, aio::ConnectionManager};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{keys, scan_hashes};

/// Longest an api process serves a copy without checking it is current.
pub const L1_TTL: Duration = Duration::from_millis(500);
/// Keys fetched per round trip.
const FETCH_PAGE: usize = 500;
/// Live events kept in the copy's window.
pub const EVENT_WINDOW: usize = 10_000;

/// Keeps an api process's read models in step with L2.
pub struct Mirror {
    client: redis::Client,
    redis: ConnectionManager,
    world: String,
    read: ReadHandle,
    /// The writer and its last announced round this copy has applied.
    writer: Option<String>,
    round: u64,
}

#[derive(serde::Deserialize)]
struct Invalidation {
    round: u64,
    #[serde(default)]
    writer: Option<String>,
    keys: serde_json::Value,
    #[serde(default)]
    applied_entry: Option<components::stream::EntryId>,
}

fn parse<T: DeserializeOwned>(json: &str) -> Option<Arc<T>> {
    serde_json::from_str(json).ok().map(Arc::new)
}

/// An order hash as the order read model: the writer's view, or the queued order the submit
/// script created.
fn order_entry(id: &str, hash: &std::collections::HashMap<String, String>) -> Option<OrderRecord> {
    let body_hash = hash.get("body_hash")?.parse().ok()?;
    let view = match hash.get("view") {
        Some(json) => serde_json::from_str(json).ok()?,
        None => OrderView::queued(
            id.to_string(),
            hash.get("type").cloned().unwrap_or_default(),
            hash.get("general").filter(|g| !g.is_empty()).cloned(),
        ),
    };
    Some(OrderRecord { view, body_hash })
}

impl Mirror {
    pub fn new(
        client: redis::Client,
        redis: ConnectionManager,
        world: &str,
        read: ReadHandle,
    ) -> Self {
        Mirror {
            client,
            redis,
            world: world.to_string(),
            read,
            writer: None,
            round: 0,
        }
    }

    /// Follows L2 until `stop`, reconnecting with backoff.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if *stop.borrow() {
                return;
            }
            match self.follow(&mut stop).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(world = %self.world, error = %e, "lost L2 read models; serving the last copy and reconnecting");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Subscribes, loads everything, then applies messages until an error or `stop`.
    async fn follow(&mut self, stop: &mut watch::Receiver<bool>) -> RedisResult<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(keys::invalidations(&self.world)).await?;
        pubsub.subscribe(keys::battle_frames(&self.world)).await?;
        pubsub.subscribe(keys::events(&self.world)).await?;
        self.reload().await?;
        let mut messages = pubsub.into_on_message();
        let mut check = tokio::time::interval(L1_TTL);
        let battles = keys::battle_frames(&self.world);
        let events = keys::events(&self.world);
        let mut behind = false;
        loop {
            tokio::select! {
                // Messages first: a check must not race the message it would see.
                biased;
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "the subscription ended")));
                    };
                    let payload: String = message.get_payload().unwrap_or_default();
                    if message.get_channel_name() == battles {
                        self.frame(&payload);
                    } else if message.get_channel_name() == events {
                        self.event(&payload);
                    } else {
                        self.invalidated(&payload).await?;
                    }
                }
                _ = check.tick() => {
                    let (round, writer) = self.last_round().await?;
                    let current = round.is_none_or(|r| r == self.round) && writer == self.writer;
                    // Behind at two checks in a row: a message was lost, not just late.
                    if !current && behind {
                        self.reload().await?;
                        behind = false;
                    } else {
                        behind = !current;
                    }
                }
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    async fn invalidated(&mut self, payload: &str) -> RedisResult<()> {
        let Ok(message) = serde_json::from_str::<Invalidation>(payload) else {
            warn!(world = %self.world, "an invalidation message that cannot be read; reloading");
            return self.reload().await;
        };
        if message.writer != self.writer {
            return self.reload().await;
        }
        match message.keys {
            serde_json::Value::Array(_) if message.round <= self.round => Ok(()),
            serde_json::Value::Array(keys) if message.round == self.round + 1 => {
                let keys: Vec<String> = keys
                    .into_iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect();
                self.refresh(&keys, message.applied_entry).await?;
                self.round = message.round;
                Ok(())
            }
            _ => self.reload().await,
        }
    }

    fn frame(&self, payload: &str) {
        let Some(frame) = parse::<FrameView>(payload) else {
            return;
        };
        if let Some(models) = self.read.load_full() {
            let mut next = (*models).clone();
            let id = Key::from(frame.battle.as_str());
            if frame.last {
                next.frames.remove(&id);
                next.final_frames.insert(id, frame);
            } else {
                next.frames.insert(id, frame);
            }
            self.read.store(Some(Arc::new(next)));
        }
    }

    /// A live event into the copy's window. After a recovery the World numbers its events
    /// again from its last durable one: the window drops what came after it.
    fn event(&self, payload: &str) {
        let Some(event) = parse::<DomainEvent>(payload) else {
            return;
        };
        if let Some(models) = self.read.load_full() {
            let mut next = (*models).clone();
            if let EventKind::WorldRecovered { last_seq, .. } = event.kind {
                while next.events.last().is_some_and(|e| e.seq > last_seq) {
                    next.events.pop_back();
                }
            } else if next.events.last().is_some_and(|e| e.seq >= event.seq) {
                // Already here.
                return;
            }
            next.events.push_back(event);
            while next.events.len() > EVENT_WINDOW {
                next.events.pop_front();
            }
            self.read.store(Some(Arc::new(next)));
        }
    }

    /// The writer's last round and its id, as the world summary's hash records them.
    async fn last_round(&mut self) -> RedisResult<(Option<u64>, Option<String>)> {
        redis::cmd("HMGET")
            .arg(keys::state(&self.world, "world", "summary"))
            .arg("round")
            .arg("writer")
            .query_async(&mut self.redis)
            .await
    }

    /// Every key of the world, loaded afresh.
    async fn reload(&mut self) -> RedisResult<()> {
        let (round, writer) = self.last_round().await?;
        let summary: Option<String> = redis::cmd("HGET")
            .arg(keys::state(&self.world, "world", "summary"))
            .arg("json")
            .query_async(&mut self.redis)
            .await?;
        let Some(summary) = summary.as_deref().and_then(parse::<WorldSummary>) else {
            // No writer has published this world yet.
            return Ok(());
        };
        let mut keys = scan_hashes(&mut self.redis, &keys::states_pattern(&self.world)).await?;
        keys.extend(scan_hashes(&mut self.redis, &keys::orders_pattern(&self.world)).await?);
        let mut models = ReadModels {
            world: summary,
            rules: Arc::default(),
            nations: OrdMap::new(),
            cities: OrdMap::new(),
            generals: OrdMap::new(),
            battles: OrdMap::new(),
            frames: OrdMap::new(),
            final_frames: OrdMap::new(),
            // Recordings are not carried to L2: an api process has none to serve.
            recordings: OrdMap::new(),
            events: Vector::new(),
            orders: OrdMap::new(),
            order_feed: Vector::new(),
            applied_log_seq: 0,
            applied_entry: None,
        };
        self.fetch(&keys, &mut models).await?;
        if let Some(old) = self.read.load_full() {
            // Live events and the order feed are not in L2: they carry on.
            models.events = old.events.clone();
            models.order_feed = old.order_feed.clone();
            models.final_frames = old.final_frames.clone();
            models.frames = old
                .frames
                .clone()
                .into_iter()
                .filter(|(id, _)| {
                    models
                        .battles
                        .get(id)
                        .is_some_and(|b| b.status == BattleStatus::Active)
                })
                .collect();
        }
        let first = self.read.load_full().is_none();
        self.read.store(Some(Arc::new(models)));
        if first {
            info!(world = %self.world, keys = keys.len(), "L2 read models loaded");
        }
        self.round = round.unwrap_or(0);
        self.writer = writer;
        Ok(())
    }

    /// Fetches `keys` into a copy of the current read models and publishes it.
    async fn refresh(
        &mut self,
        keys: &[String],
        applied_entry: Option<components::stream::EntryId>,
    ) -> RedisResult<()> {
        let Some(current) = self.read.load_full() else {
            return self.reload().await;
        };
        let mut models = (*current).clone();
        self.fetch(keys, &mut models).await?;
        // Commands up to here have their orders: queued ones need not be kept for them.
        models.applied_entry = models.applied_entry.max(applied_entry);
        self.read.store(Some(Arc::new(models)));
        Ok(())
    }

    /// Reads `keys` into `models` (a key gone removes its entry); whether the world summary
    /// was among them.
    async fn fetch(&mut self, keys: &[String], models: &mut ReadModels) -> RedisResult<bool> {
        let mut has_world = false;
        for page in keys.chunks(FETCH_PAGE) {
            let mut pipe = redis::pipe();
            for key in page {
                pipe.cmd("HGETALL").arg(key);
            }
            let hashes: Vec<redis::Value> = pipe.query_async(&mut self.redis).await?;
            for (key, hash) in page.iter().zip(hashes) {
                // A hash that cannot be read (not text) counts as absent; it never blocks
                // the rest.
                let hash: std::collections::HashMap<String, String> =
                    redis::from_redis_value(hash).unwrap_or_default();
                let result = if hash.is_empty() { "miss" } else { "hit" };
                counter!("tianxia_cache_requests_total", "layer" => "l2", "result" => result)
                    .increment(1);
                has_world |= self.apply(key, &hash, models);
            }
        }
        Ok(has_world)
    }

    /// One key into `models`; whether it was the world summary.
    fn apply(
        &self,
        key: &str,
        hash: &std::collections::HashMap<String, String>,
        models: &mut ReadModels,
    ) -> bool {
        let json = hash.get("json").map(String::as_str);
        let mut parts = key.splitn(4, ':');
        let (Some(prefix), Some(_world), Some(kind), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if prefix == "order" {
            let (player, id) = (kind, id);
            match order_entry(id, hash) {
                Some(entry) => {
                    let mut window = models.orders.get(player).cloned().unwrap_or_default();
                    let entry = Arc::new(entry);
                    let changed = window.get(id).is_none_or(|held| held.view != entry.view);
                    window.insert(Key::from(id), entry.clone());
                    models.orders.insert(Key::from(player), window);
                    if changed {
                        let seq = models.order_feed_seq() + 1;
                        models.order_feed.push_back(OrderChange {
                            seq,
                            player: Key::from(player),
                            record: entry,
                        });
                        while models.order_feed.len() > ORDER_FEED_LEN {
                            models.order_feed.pop_front();
                        }
                    }
                }
                None => {
                    if let Some(window) = models.orders.get_mut(player) {
                        window.remove(id);
                    }
                }
            }
            return false;
        }
        fn put<T: DeserializeOwned>(map: &mut OrdMap<Key, Arc<T>>, id: &str, json: Option<&str>) {
            match json.and_then(parse::<T>) {
                Some(view) => {
                    map.insert(Key::from(id), view);
                }
                None => {
                    map.remove(id);
                }
            }
        }
        match kind {
            "world" if id == "summary" => {
                if let Some(summary) = json.and_then(parse::<WorldSummary>) {
                    models.world = summary;
                    return true;
                }
            }
            "rules" if id == "current" => {
                if let Some(rules) = json.and_then(parse::<RulesView>) {
                    models.rules = rules;
                }
            }
            "nation" => put::<NationView>(&mut models.nations, id, json),
            "city" => put::<CityView>(&mut models.cities, id, json),
            "general" => put::<GeneralView>(&mut models.generals, id, json),
            "battle" => {
                put::<BattleView>(&mut models.battles, id, json);
                if !models.battles.contains_key(id) {
                    models.final_frames.remove(id);
                }
                if models
                    .battles
                    .get(id)
                    .is_none_or(|b| b.status != BattleStatus::Active)
                {
                    models.frames.remove(id);
                }
            }
            // Leaderboards are ranked from the copy itself.
            _ => {}
        }
        false
    }
}

//! Presence across processes (docs/redis.md#presence): `api` processes record each active
//! player's last activity (real ms) in `presence:{world}`; every second the world's writer
//! takes what it holds (emptying it) and tells the World who was active.

use std::{collections::HashMap, time::Duration};

use components::command::Inbound;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tracing::warn;

use super::keys;

/// How often presence is written and read.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    components::time::unix_ms(std::time::SystemTime::now())
}

/// An api process: drains the presence its handlers report and writes it to Redis, at most
/// once per [`PRESENCE_EVERY`] (what Redis does not take is dropped: presence is advisory).
pub async fn record(
    mut redis: ConnectionManager,
    world: String,
    rx: Receiver<Inbound>,
    mut stop: watch::Receiver<bool>,
) {
    let key = keys::presence(&world);
    loop {
        let mut seen: HashMap<String, u64> = HashMap::new();
        loop {
            match rx.try_recv() {
                Ok(Inbound::Seen { player }) => {
                    seen.insert(player, now_ms());
                }
                Ok(Inbound::Command(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if !seen.is_empty() {
            let mut write = redis::cmd("HSET");
            write.arg(&key);
            for (player, at) in &seen {
                write.arg(player).arg(*at);
            }
            if let Err(e) = write.query_async::<()>(&mut redis).await {
                warn!(error = %e, "presence could not be recorded");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PRESENCE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Takes what the hash holds and empties it in one step, so it holds only what the writer
/// has not seen yet and never grows beyond the players active between two looks.
const TAKE: &str = r"
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all
";

/// The world's writer: tells the World of players active since the last look.
pub async fn feed(
    mut redis: ConnectionManager,
    world: String,
    tx: Sender<Inbound>,
    mut stop: watch::Receiver<bool>,
) {
    let key = keys::presence(&world);
    let take = redis::Script::new(TAKE);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRESENCE_EVERY) => {}
            _ = stop.changed() => return,
        }
        let taken: Result<Vec<(String, String)>, _> = take.key(&key).invoke_async(&mut redis).await;
        let Ok(taken) = taken else { continue };
        for (player, _) in taken {
            // Advisory: when the World's queue is full, the rest is dropped.
            if tx.try_send(Inbound::Seen { player }).is_err() {
                break;
            }
        }
    }
}

//! Presence across processes (SPEC 7): `api` processes record each active player's last
//! activity (real ms) in `presence:{world}`; the world's writer reads it every few seconds
//! and tells the World who was active.

use std::{collections::HashMap, time::Duration};

use components::command::Inbound;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tracing::warn;

/// How often presence is written and read.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(1);

/// `presence:{world}`.
pub fn presence_key(world: &str) -> String {
    format!("presence:{world}")
}

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
    let key = presence_key(&world);
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

/// The world's writer: tells the World of players active since the last look.
pub async fn feed(
    mut redis: ConnectionManager,
    world: String,
    tx: Sender<Inbound>,
    mut stop: watch::Receiver<bool>,
) {
    let key = presence_key(&world);
    let mut since = now_ms();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRESENCE_EVERY) => {}
            _ = stop.changed() => return,
        }
        let all: Result<HashMap<String, u64>, _> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut redis)
            .await;
        let Ok(all) = all else { continue };
        let mut newest = since;
        for (player, at) in all {
            if at > since {
                newest = newest.max(at);
                if tx.try_send(Inbound::Seen { player }).is_err() {
                    break;
                }
            }
        }
        since = newest;
    }
}

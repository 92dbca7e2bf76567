//! The baseline of `bench ws`: a bare tokio-tungstenite broadcast server of the same shape as
//! the server's WebSocket. A source task looks at the same World's read models as often as the
//! server's pump and broadcasts the same messages (each event on `world` and, for the battle's
//! own, on the battle's topic; the battle's state when it changes; its frames at most every
//! 100 ms), each encoded once, through one `tokio::sync::broadcast` channel; each connection
//! answers its `subscribe` and writes whatever the channel holds. No topics, queue limits,
//! snapshots, rate limits or heartbeats: what fan-out costs with nothing around it.

use std::{sync::Arc, time::Duration};

use components::{battle::BattleView, events::DomainEvent, read_model::ReadHandle};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{broadcast, watch},
    time::Instant,
};
use tokio_tungstenite::tungstenite::Message;

use crate::connections::SEND_BUFFER;

/// Messages the channel holds for a connection that falls behind.
const CHANNEL: usize = 4_096;

/// One push, in the server's shape.
#[derive(Serialize)]
struct Push<'a> {
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a DomainEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a BattleView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<&'a components::battle::FrameView>,
}

impl Push<'_> {
    fn message(&self) -> Message {
        Message::text(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Serves on `listener` until `stop`.
pub(super) async fn serve(
    listener: TcpListener,
    read: ReadHandle,
    battle: String,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, _) = broadcast::channel(CHANNEL);
    let source = tokio::spawn(source(read, battle, tx.clone(), stop.clone()));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                tokio::spawn(connection(stream, tx.subscribe(), stop.clone()));
            }
        }
    }
    let _ = source.await;
}

async fn connection(
    stream: TcpStream,
    mut rx: broadcast::Receiver<Message>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = rx.recv() => match message {
                Ok(message) => {
                    if sink.feed(message).await.is_err() {
                        return;
                    }
                    while let Ok(message) = rx.try_recv() {
                        if sink.feed(message).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let id = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|m| m.get("id").cloned());
                    let reply = serde_json::json!({"op": "subscribed", "id": id});
                    if sink.send(Message::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink.close().await;
}

/// Broadcasts the World's new events, the battle's state and its frames.
async fn source(
    read: ReadHandle,
    battle: String,
    tx: broadcast::Sender<Message>,
    mut stop: watch::Receiver<bool>,
) {
    let topic = format!("battle:{battle}");
    let mut ticker = tokio::time::interval(net::ws::pump::LOOK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = read
        .load()
        .as_ref()
        .and_then(|m| m.events.last().map(|e| e.seq));
    let mut last = read.load_full();
    let mut frames_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(models) = read.load_full() else {
            continue;
        };
        if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &models)) {
            continue;
        }
        for event in models.events_after(seen.unwrap_or(0), usize::MAX, None) {
            seen = Some(event.seq);
            if event.aggregate == topic {
                let _ = tx.send(push(&topic, Some(&event), None, None));
            }
            let _ = tx.send(push("world", Some(&event), None, None));
        }
        let old = last.as_deref();
        let view = models.battles.get(battle.as_str());
        if view.is_some() && old.and_then(|o| o.battles.get(battle.as_str())) != view {
            let _ = tx.send(push(&topic, None, view.map(|v| &**v), None));
        }
        let frame = models.frames.get(battle.as_str());
        if frames_at.is_none_or(|at| at.elapsed() >= net::ws::pump::FRAMES_EVERY)
            && frame.is_some()
            && old.and_then(|o| o.frames.get(battle.as_str())) != frame
        {
            let _ = tx.send(push(&topic, None, None, frame.map(|f| &**f)));
            frames_at = Some(Instant::now());
        }
        last = Some(models);
    }
}

fn push(
    topic: &str,
    event: Option<&DomainEvent>,
    state: Option<&BattleView>,
    frame: Option<&components::battle::FrameView>,
) -> Message {
    Push {
        topic,
        event,
        state,
        frame,
    }
    .message()
}

/// How long the bare server's connections get to close.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(5);

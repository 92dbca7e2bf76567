//! One WebSocket connection (docs/websocket.md): its subscriptions, its bounded outbound
//! queue, and the task that reads the client's messages, takes its topics' messages from the
//! pump's batches and writes to the socket, all in one `select!` so none waits on another.
//!
//! The slow-client policy: battle frames are latest-wins per battle (a frame not yet written
//! is replaced by the next); anything else that would overflow the queue (by messages or by
//! bytes), or falling [`super::BATCHES_KEPT`] batches behind, closes the connection with
//! [`SLOW_CLIENT`] and the last event `seq` written, so the client resumes with `since`.

use std::{
    collections::{HashMap, VecDeque},
    num::NonZeroU32,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use components::{
    events::DomainEvent,
    read_model::{Key, ReadModels},
};
use futures_util::{Sink, SinkExt, StreamExt, stream::SplitSink};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, broadcast::error::RecvError};

use super::{
    Hub, PING_EVERY, SILENT_FOR,
    protocol::{
        self, ClientMessage, Encoding, Kind, MAX_CLIENT_MESSAGE, MAX_TOPICS, Outgoing, RequestId,
        ServerMessage, State, Topic, TopicError,
    },
    pump::Batch,
    replay,
};
use crate::http::AppState;

/// Close codes (docs/websocket.md#close-codes).
pub const GOING_AWAY: u16 = 1001;
/// Nothing heard from the client for [`SILENT_FOR`].
pub const SILENT: u16 = 4000;
/// The outbound queue overflowed: resume with `since` = the `last_seq` of the close reason.
pub const SLOW_CLIENT: u16 = 4008;
/// Over the message rate: abuse.
pub const RATE_LIMITED: u16 = 4029;

/// How long a replay may take to write.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the close frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Client messages per second, and the burst allowed above it.
const MESSAGES_PER_SECOND: u32 = 20;
const MESSAGE_BURST: u32 = 40;

type Sender = SplitSink<WebSocket, Message>;

/// One subscription of a connection.
struct Sub {
    /// Events up to this `seq` were replayed: their live copies are skipped.
    replayed_to: u64,
    /// The state version last sent: older ones are skipped.
    version: u64,
}

/// A message waiting to be written.
struct Queued {
    message: Message,
    size: usize,
    kind: Kind,
    seq: Option<u64>,
}

struct Connection {
    sink: Sender,
    state: AppState,
    hub: Arc<Hub>,
    encoding: Encoding,
    player: Option<Key>,
    subs: HashMap<Topic, Sub>,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// Latest-wins battle frames not yet written, by battle.
    frames: Vec<(Arc<str>, Arc<Outgoing>)>,
    /// Written but perhaps not flushed.
    unflushed: bool,
    /// The `seq` of the last event written.
    delivered: u64,
    limiter: DefaultDirectRateLimiter,
    heard_at: Instant,
    close: Option<CloseFrame>,
}

/// Serves one upgraded connection until it closes.
pub(crate) async fn run(
    socket: WebSocket,
    state: AppState,
    player: Option<Key>,
    encoding: Encoding,
    permit: OwnedSemaphorePermit,
) {
    let hub = state.ws.clone();
    let mut batches = hub.subscribe();
    let mut shutdown = hub.shutdown.subscribe();
    hub.metrics.connections.increment(1.0);
    let (sink, mut stream) = socket.split();
    let quota = Quota::per_second(NonZeroU32::new(MESSAGES_PER_SECOND).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(MESSAGE_BURST).unwrap_or(NonZeroU32::MIN));
    let mut conn = Connection {
        sink,
        state,
        hub: hub.clone(),
        encoding,
        player,
        subs: HashMap::new(),
        queue: VecDeque::new(),
        queued_bytes: 0,
        frames: Vec::new(),
        unflushed: false,
        delivered: 0,
        limiter: RateLimiter::direct(quota),
        heard_at: Instant::now(),
        close: None,
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let writing = conn.has_output();
        tokio::select! {
            biased;
            written = std::future::poll_fn(|cx| conn.drive(cx)), if writing => {
                if written.is_err() {
                    break;
                }
            }
            _ = async { drop(shutdown.wait_for(|stop| *stop).await) } => {
                conn.closing(GOING_AWAY, "the server is shutting down".to_string());
            }
            incoming = stream.next() => match incoming {
                Some(Ok(message)) => {
                    conn.heard_at = Instant::now();
                    conn.incoming(message).await;
                }
                _ => break,
            },
            batch = batches.recv() => match batch {
                Ok(batch) => conn.take(&batch),
                Err(RecvError::Lagged(_)) => conn.slow(),
                Err(RecvError::Closed) => {
                    conn.closing(GOING_AWAY, "the server is shutting down".to_string());
                }
            },
            _ = ping.tick() => {
                if conn.heard_at.elapsed() >= SILENT_FOR {
                    conn.closing(SILENT, format!("nothing heard for {} s", SILENT_FOR.as_secs()));
                } else {
                    // Queued: a client whose socket is full must not hold this task.
                    conn.push(Message::Ping(Default::default()), 0, Kind::Reply, None);
                }
            }
        }
        if let Some(frame) = conn.close.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                let _ = conn.sink.send(Message::Close(Some(frame))).await;
                // Wait for the client's close frame, so the client sees ours.
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
            break;
        }
    }
    for topic in conn.subs.keys() {
        hub.metrics.subscribed(topic, -1.0);
    }
    hub.metrics.connections.decrement(1.0);
    drop(permit);
}

impl Connection {
    fn has_output(&self) -> bool {
        !self.queue.is_empty() || !self.frames.is_empty() || self.unflushed
    }

    /// Writes whatever is waiting while the socket takes it, frames first, then flushes.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        loop {
            if self.frames.is_empty() && self.queue.is_empty() {
                ready!(Sink::poll_flush(std::pin::Pin::new(&mut self.sink), cx))?;
                self.unflushed = false;
                return Poll::Ready(Ok(()));
            }
            ready!(Sink::poll_ready(std::pin::Pin::new(&mut self.sink), cx))?;
            let (message, kind, seq) = if let Some((_, frame)) = self.frames.pop() {
                (frame.encoded(self.encoding).0, Kind::Frame, None)
            } else if let Some(queued) = self.queue.pop_front() {
                self.queued_bytes -= queued.size;
                (queued.message, queued.kind, queued.seq)
            } else {
                continue;
            };
            Sink::start_send(std::pin::Pin::new(&mut self.sink), message)?;
            self.unflushed = true;
            self.hub.metrics.sent[kind.index()].increment(1);
            if let Some(seq) = seq {
                self.delivered = seq;
            }
        }
    }

    /// Writes what the socket takes without waiting (the main loop writes the rest).
    fn write_now(&mut self) {
        let _ = futures_util::FutureExt::now_or_never(std::future::poll_fn(|cx| self.drive(cx)));
    }

    /// Queues a message; on overflow the connection closes as a slow client.
    fn enqueue(&mut self, message: &Outgoing) {
        let (encoded, size) = message.encoded(self.encoding);
        self.push(encoded, size, message.kind, message.seq);
    }

    fn push(&mut self, message: Message, size: usize, kind: Kind, seq: Option<u64>) {
        if self.close.is_some() {
            return;
        }
        let full = |conn: &Self| {
            conn.queue.len() >= conn.hub.config.queue_messages
                || conn.queued_bytes + size > conn.hub.config.queue_bytes
        };
        if full(self) {
            // A burst larger than the queue goes to the socket as far as it takes it.
            self.write_now();
        }
        if full(self) {
            self.hub.metrics.dropped[kind.index()].increment(1);
            self.slow();
            return;
        }
        self.queued_bytes += size;
        self.queue.push_back(Queued {
            message,
            size,
            kind,
            seq,
        });
    }

    fn reply(&mut self, message: ServerMessage) {
        let outgoing = Outgoing::new(Kind::Reply, message);
        self.enqueue(&outgoing);
    }

    /// Closes as a slow client, telling the last event written.
    fn slow(&mut self) {
        if self.close.is_none() {
            self.hub.metrics.slow_closes.increment(1);
            let reason = format!(r#"{{"code":"slow_client","last_seq":{}}}"#, self.delivered);
            self.closing(SLOW_CLIENT, reason);
        }
    }

    fn closing(&mut self, code: u16, reason: String) {
        if self.close.is_none() {
            self.queue.clear();
            self.queued_bytes = 0;
            self.frames.clear();
            self.close = Some(CloseFrame {
                code,
                reason: reason.into(),
            });
        }
    }

    /// Takes this connection's messages from a batch, in the batch's order.
    fn take(&mut self, batch: &Batch) {
        if batch.recovered {
            for sub in self.subs.values_mut() {
                sub.replayed_to = 0;
                sub.version = 0;
            }
        }
        if batch.gap && self.subs.keys().any(Topic::has_events) {
            // Events were missed: the client resumes from the durable log.
            self.slow();
            return;
        }
        let mut mine: Vec<(u32, &Topic)> = Vec::new();
        for topic in self.subs.keys() {
            if let Some(positions) = batch.index.get(topic) {
                mine.extend(positions.iter().map(|p| (*p, topic)));
            }
        }
        if mine.is_empty() {
            return;
        }
        mine.sort_unstable_by_key(|(p, _)| *p);
        let mine: Vec<(u32, Topic)> = mine.into_iter().map(|(p, t)| (p, t.clone())).collect();
        for (position, topic) in mine {
            let Some(message) = batch.messages.get(position as usize) else {
                continue;
            };
            let Some(sub) = self.subs.get_mut(&topic) else {
                continue;
            };
            match message.kind {
                Kind::Event if message.seq.is_some_and(|s| s <= sub.replayed_to) => continue,
                Kind::State => {
                    let version = message.version.unwrap_or(0);
                    if version <= sub.version {
                        continue;
                    }
                    sub.version = version;
                }
                Kind::Frame if !message.is_final_frame() => {
                    self.frame(message);
                    continue;
                }
                Kind::Frame => {
                    // The last frame: never skipped, and after any frame still waiting.
                    let battle = message.battle().unwrap_or_default();
                    self.frames.retain(|(b, _)| &**b != battle);
                }
                _ => {}
            }
            self.enqueue(message);
        }
    }

    /// Keeps only the newest frame of each battle.
    fn frame(&mut self, message: &Arc<Outgoing>) {
        let battle = message.battle().unwrap_or_default();
        match self.frames.iter_mut().find(|(b, _)| &**b == battle) {
            Some(slot) => {
                self.hub.metrics.dropped[Kind::Frame.index()].increment(1);
                slot.1 = message.clone();
            }
            None => self.frames.push((Arc::from(battle), message.clone())),
        }
    }

    /// Handles one message from the client.
    async fn incoming(&mut self, message: Message) {
        let (bytes, binary) = match &message {
            Message::Text(text) => (text.as_bytes(), false),
            Message::Binary(bytes) => (&bytes[..], true),
            Message::Close(_) => {
                self.closing(1000, String::new());
                return;
            }
            Message::Ping(_) | Message::Pong(_) => return,
        };
        if self.limiter.check().is_err() {
            self.closing(
                RATE_LIMITED,
                format!("over {MESSAGES_PER_SECOND} messages a second"),
            );
            return;
        }
        if let Some(player) = &self.player {
            self.state.bus.seen(player);
        }
        if bytes.len() > MAX_CLIENT_MESSAGE {
            let id = protocol::salvage_id(bytes, binary);
            self.reply(protocol::error(
                id,
                "message_too_large",
                format!("a message is at most {MAX_CLIENT_MESSAGE} bytes"),
            ));
            return;
        }
        let parsed = ClientMessage::decode(bytes, binary);
        let message = match parsed {
            Ok(message) => message,
            Err(why) => {
                let error = unreadable(bytes, binary, why);
                self.reply(error);
                return;
            }
        };
        match message {
            ClientMessage::Ping { id } => self.reply(protocol::reply("pong", id)),
            ClientMessage::Auth { id, token } => self.auth(id, &token).await,
            ClientMessage::Unsubscribe { id, topics } => self.unsubscribe(id, &topics),
            ClientMessage::Subscribe {
                id,
                topics,
                since,
                incarnation,
            } => self.subscribe(id, &topics, since, incarnation).await,
        }
    }

    async fn auth(&mut self, id: Option<RequestId>, token: &str) {
        if self.player.is_some() {
            self.reply(protocol::error(
                id,
                "already_authenticated",
                "this connection already has a player",
            ));
            return;
        }
        match super::authenticate(&self.state, token, None).await {
            Ok(player) => {
                self.state.bus.seen(&player);
                let mut reply = protocol::reply("authenticated", id);
                reply.player = Some(player.clone());
                self.player = Some(player);
                self.reply(reply);
            }
            Err(error) => self.reply(protocol::error(id, error.code.name(), error.message)),
        }
    }

    /// The topics named, or the error reply.
    fn topics(
        &self,
        id: &Option<RequestId>,
        names: &[String],
    ) -> Result<Vec<Topic>, Box<ServerMessage>> {
        if names.is_empty() {
            return Err(Box::new(protocol::error(
                id.clone(),
                "invalid_message",
                "topics: name at least one topic",
            )));
        }
        if names.len() > MAX_TOPICS {
            return Err(Box::new(protocol::error(
                id.clone(),
                "too_many_topics",
                format!("a connection holds at most {MAX_TOPICS} topics"),
            )));
        }
        let mut topics: Vec<Topic> = Vec::with_capacity(names.len());
        for name in names {
            match Topic::parse(name, self.player.as_ref()) {
                Ok(topic) => {
                    if !topics.contains(&topic) {
                        topics.push(topic);
                    }
                }
                Err(TopicError::Unknown) => {
                    return Err(Box::new(protocol::error(
                        id.clone(),
                        "unknown_topic",
                        format!(
                            "\"{}\" is not a topic (world, orders, nation:ID, city:ID, general:ID, battle:ID)",
                            components::text::clip(name, 64)
                        ),
                    )));
                }
                Err(TopicError::NeedsToken) => {
                    return Err(Box::new(protocol::error(
                        id.clone(),
                        "unauthorized",
                        "the orders topic needs a token (?token= or an auth message)",
                    )));
                }
            }
        }
        Ok(topics)
    }

    fn unsubscribe(&mut self, id: Option<RequestId>, names: &[String]) {
        let topics = match self.topics(&id, names) {
            Ok(topics) => topics,
            Err(error) => return self.reply(*error),
        };
        for topic in &topics {
            if self.subs.remove(topic).is_some() {
                self.hub.metrics.subscribed(topic, -1.0);
            }
            if let Topic::Battle(battle) = topic {
                self.frames.retain(|(b, _)| b != battle);
            }
        }
        let mut reply = protocol::reply("unsubscribed", id);
        reply.topics = Some(topics.iter().map(Topic::name).collect());
        self.reply(reply);
    }

    async fn subscribe(
        &mut self,
        id: Option<RequestId>,
        names: &[String],
        since: Option<u64>,
        incarnation: Option<u64>,
    ) {
        let topics = match self.topics(&id, names) {
            Ok(topics) => topics,
            Err(error) => return self.reply(*error),
        };
        let new = topics
            .iter()
            .filter(|t| !self.subs.contains_key(*t))
            .count();
        if self.subs.len() + new > MAX_TOPICS {
            return self.reply(protocol::error(
                id,
                "too_many_topics",
                format!("a connection holds at most {MAX_TOPICS} topics"),
            ));
        }
        let Some(models) = self.hub.read.load_full() else {
            return self.reply(protocol::error(
                id,
                "unavailable",
                "the world is not loaded yet",
            ));
        };
        for topic in &topics {
            if !exists(&models, topic) {
                return self.reply(protocol::error(
                    id,
                    "not_found",
                    format!("no {}", topic.name()),
                ));
            }
        }
        let newest = models.events.last().map_or(0, |e| e.seq);
        // Events to replay, found before anything is subscribed: a refusal changes nothing.
        let missed = match since {
            Some(since) if topics.iter().any(Topic::has_events) => {
                if let Some(theirs) = incarnation
                    && let Err(error) = replay::same_history(&models, since, theirs)
                {
                    return self.reply(error.reply(id, newest));
                }
                match replay::find(self.state.events.as_ref(), &models, &topics, since).await {
                    Ok(events) => Some(events),
                    Err(error) => return self.reply(error.reply(id, newest)),
                }
            }
            _ => None,
        };
        let replayed_to = missed
            .as_ref()
            .and_then(|events| events.last().map(|e| e.seq))
            .unwrap_or(0)
            .max(since.unwrap_or(0).min(newest));
        for topic in &topics {
            let sub = self.subs.entry(topic.clone()).or_insert_with(|| {
                self.hub.metrics.subscribed(topic, 1.0);
                Sub {
                    replayed_to: 0,
                    version: 0,
                }
            });
            if topic.has_events() {
                // Without `since`, live from the reply's `seq` on; with it, after the replay.
                sub.replayed_to = if since.is_some() { replayed_to } else { newest };
            }
        }
        let mut reply = protocol::reply("subscribed", id);
        reply.topics = Some(topics.iter().map(Topic::name).collect());
        reply.seq = Some(newest);
        reply.incarnation = Some(models.world.incarnation);
        self.reply(reply);
        if let Some(events) = missed
            && !self.write_replay(&topics, &events).await
        {
            return;
        }
        for topic in &topics {
            self.snapshot(&models, topic);
        }
    }

    /// Sends the current state of an entity topic (its read model, a battle's latest or final
    /// frame, the player's open orders).
    fn snapshot(&mut self, models: &ReadModels, topic: &Topic) {
        let state = match topic {
            Topic::World => None,
            Topic::Nation(id) => models.nations.get(id).cloned().map(State::Nation),
            Topic::City(id) => models.cities.get(id).cloned().map(State::City),
            Topic::General(id) => models.generals.get(id).cloned().map(State::General),
            Topic::Battle(id) => models.battles.get(id).cloned().map(State::Battle),
            Topic::Orders(player) => {
                for order in models.open_orders(player) {
                    self.enqueue(&Outgoing::order(order));
                }
                None
            }
        };
        if let Some(state) = state {
            let version = state.version();
            let message = self.hub.snapshot(topic, state);
            if let Some(sub) = self.subs.get_mut(topic) {
                sub.version = sub.version.max(version);
            }
            self.enqueue(&message);
        }
        if let Topic::Battle(id) = topic {
            let name: Arc<str> = Arc::from(topic.name());
            if let Some(frame) = models.final_frames.get(id) {
                let result = models.battles.get(id).cloned();
                self.enqueue(&Outgoing::frame(name, frame.clone(), result));
            } else if let Some(frame) = models.frames.get(id) {
                self.frame(&Outgoing::frame(name, frame.clone(), None));
            }
        }
    }

    /// Writes replayed events straight to the socket, after what is queued; whether the
    /// connection goes on.
    async fn write_replay(&mut self, topics: &[Topic], events: &[Arc<DomainEvent>]) -> bool {
        let names: Vec<(Topic, Arc<str>)> = topics
            .iter()
            .filter(|t| t.has_events())
            .map(|t| (t.clone(), Arc::from(t.name())))
            .collect();
        let written = tokio::time::timeout(REPLAY_TIMEOUT, async {
            std::future::poll_fn(|cx| self.drive(cx)).await?;
            for event in events {
                for (topic, name) in &names {
                    if topic.carries(event) {
                        let message = Outgoing::event(name.clone(), event.clone());
                        self.sink.feed(message.encoded(self.encoding).0).await?;
                        self.hub.metrics.sent[Kind::Event.index()].increment(1);
                        self.delivered = event.seq;
                    }
                }
            }
            self.sink.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => true,
            Ok(Err(_)) => {
                self.closing(GOING_AWAY, String::new());
                false
            }
            Err(_) => {
                self.slow();
                false
            }
        }
    }
}

/// Whether the entity a topic names exists.
fn exists(models: &ReadModels, topic: &Topic) -> bool {
    match topic {
        Topic::World | Topic::Orders(_) => true,
        Topic::Nation(id) => models.nations.contains_key(id),
        Topic::City(id) => models.cities.contains_key(id),
        Topic::General(id) => models.generals.contains_key(id),
        Topic::Battle(id) => models.battles.contains_key(id),
    }
}

/// The error reply to a message that could not be read.
fn unreadable(bytes: &[u8], binary: bool, why: String) -> ServerMessage {
    #[derive(serde::Deserialize)]
    struct Loose {
        op: Option<serde_json::Value>,
        id: Option<RequestId>,
    }
    let loose: Result<Loose, ()> = if binary {
        rmp_serde::from_slice(bytes).map_err(|_| ())
    } else {
        serde_json::from_slice(bytes).map_err(|_| ())
    };
    let why = components::text::clip(&why, 200);
    match loose {
        Err(()) => protocol::error(
            None,
            if binary {
                "invalid_msgpack"
            } else {
                "invalid_json"
            },
            format!("the message cannot be read: {why}"),
        ),
        Ok(Loose { op, id }) => {
            let known = op
                .as_ref()
                .and_then(|op| op.as_str())
                .is_some_and(|op| ["subscribe", "unsubscribe", "ping", "auth"].contains(&op));
            if known {
                protocol::error(id, "invalid_message", why)
            } else {
                protocol::error(
                    id,
                    "unknown_op",
                    "op must be subscribe, unsubscribe, ping or auth",
                )
            }
        }
    }
}

//! The WebSocket interface (docs/websocket.md): `GET /ws` in `serve` and `api`.
//!
//! One [`Hub`] per process. Its pump ([`pump`]) watches the read models the process serves
//! from (the World's own in `serve`, the copy of L2 in `api`, which its one Pub/Sub
//! subscription keeps in step, events and frames included) and turns each new snapshot into
//! one [`pump::Batch`] of messages by topic, each encoded at most once per encoding, which it
//! broadcasts to every connection. Each connection ([`connection`]) takes from a batch the
//! messages of its own topics into its bounded outbound queue. The World never waits on any
//! of this: it only swaps its read models as it always does.

pub mod connection;
pub mod protocol;
pub mod pump;
pub mod replay;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{
        Query, State, WebSocketUpgrade, rejection::QueryRejection,
        ws::rejection::WebSocketUpgradeRejection,
    },
    response::Response,
};
use components::read_model::{Key, ReadHandle};
use metrics::{Counter, Gauge, counter, gauge};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use self::{
    protocol::{Encoding, Kind, Outgoing, Topic},
    pump::Batch,
};
use crate::http::{
    AppState,
    error::{ApiError, ErrorBody, ErrorCode},
    extract::ClientAddress,
};

/// Limits of the WebSocket side (docs/operations.md#websocket-limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Open WebSocket connections at most; beyond it an upgrade answers 503.
    pub max_connections: usize,
    /// Messages one connection's outbound queue holds at most.
    pub queue_messages: usize,
    /// Bytes one connection's outbound queue holds at most.
    pub queue_bytes: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_connections: 10_000,
            queue_messages: 1_024,
            queue_bytes: 1 << 20,
        }
    }
}

/// Batches the broadcast holds for connections that have not taken them yet; a connection
/// further behind is a slow client.
const BATCHES_KEPT: usize = 512;
/// State messages kept for subscribers that ask for the same entity at about the same time.
const SNAPSHOTS_KEPT: usize = 4_096;
/// How often the server pings a connection.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A connection the server has heard nothing from for this long is closed.
pub const SILENT_FOR: Duration = Duration::from_secs(30);

/// The metrics of the WebSocket side, resolved once.
pub(crate) struct WsMetrics {
    pub(crate) connections: Gauge,
    pub(crate) sent: [Counter; Kind::ALL.len()],
    pub(crate) dropped: [Counter; Kind::ALL.len()],
    pub(crate) slow_closes: Counter,
    pub(crate) subscriptions: HashMap<&'static str, Gauge>,
}

impl WsMetrics {
    fn new() -> Self {
        WsMetrics {
            connections: gauge!("tianxia_ws_connections"),
            sent: Kind::ALL.map(|k| counter!("tianxia_ws_messages_sent_total", "kind" => k.name())),
            dropped: Kind::ALL
                .map(|k| counter!("tianxia_ws_messages_dropped_total", "kind" => k.name())),
            slow_closes: counter!("tianxia_ws_slow_closes_total"),
            subscriptions: ["world", "nation", "city", "general", "battle", "orders"]
                .into_iter()
                .map(|kind| (kind, gauge!("tianxia_ws_subscriptions", "kind" => kind)))
                .collect(),
        }
    }

    pub(crate) fn subscribed(&self, topic: &Topic, delta: f64) {
        if let Some(gauge) = self.subscriptions.get(topic.kind()) {
            gauge.increment(delta);
        }
    }
}

/// The WebSocket side of one process: its connections' limit, the broadcast of batches and
/// the pump's shared state.
pub struct Hub {
    pub(crate) config: WsConfig,
    pub(crate) read: ReadHandle,
    batches: broadcast::Sender<Arc<Batch>>,
    permits: Arc<Semaphore>,
    /// The last state message made per entity topic, for snapshots.
    snapshots: Mutex<HashMap<Topic, Arc<Outgoing>>>,
    pub(crate) metrics: WsMetrics,
    shutdown: watch::Sender<bool>,
}

impl Hub {
    pub fn new(read: ReadHandle, config: WsConfig) -> Arc<Hub> {
        let (batches, _) = broadcast::channel(BATCHES_KEPT);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Hub {
            config,
            read,
            batches,
            permits: Arc::new(Semaphore::new(config.max_connections.max(1))),
            snapshots: Mutex::new(HashMap::new()),
            metrics: WsMetrics::new(),
            shutdown,
        })
    }

    /// Closes every connection (`1001 going away`) and refuses new ones.
    pub fn shut_down(&self) {
        self.permits.close();
        let _ = self.shutdown.send(true);
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.batches.receiver_count()
    }

    /// Open connections and the limit, for `/admin/status`.
    pub fn connections_report(&self) -> components::admin::OpenReport {
        components::admin::OpenReport {
            open: self.connections(),
            max: self.config.max_connections,
        }
    }

    /// The state message of an entity topic as of `state`'s version: the one already made if
    /// it is that version, so subscribers asking at the same time share one encoding.
    pub(crate) fn snapshot(&self, topic: &Topic, state: protocol::State) -> Arc<Outgoing> {
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(made) = snapshots.get(topic)
            && made.version == Some(state.version())
        {
            return made.clone();
        }
        let made = Outgoing::state(Arc::from(topic.name()), state);
        self.remember(&mut snapshots, topic, &made);
        made
    }

    fn remember(
        &self,
        snapshots: &mut HashMap<Topic, Arc<Outgoing>>,
        topic: &Topic,
        made: &Arc<Outgoing>,
    ) {
        if snapshots.len() >= SNAPSHOTS_KEPT && !snapshots.contains_key(topic) {
            snapshots.clear();
        }
        snapshots.insert(topic.clone(), made.clone());
    }
}

/// `GET /ws` query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// A player's token (or send `{"op":"auth","token":...}` first); public topics need none.
    token: Option<String>,
    /// `json` (text frames, the default) or `msgpack` (binary frames of the same shapes).
    #[param(value_type = Option<String>, pattern = "^(json|msgpack)$")]
    encoding: Option<Encoding>,
}

#[utoipa::path(
    get,
    path = "/ws",
    tag = "realtime",
    params(WsQuery),
    responses(
        (status = 101, description = "switching to the WebSocket protocol (docs/websocket.md)"),
        (status = 400, description = "a query parameter that is not accepted (`invalid_field`)", body = ErrorBody),
        (status = 401, description = "the token is not valid (`unauthorized`)", body = ErrorBody),
        (status = 426, description = "not a WebSocket upgrade request (`upgrade_required`)", body = ErrorBody),
        (status = 429, description = "too many bad tokens from this address (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "too many WebSocket connections, or shutting down (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn upgrade(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    query: Result<Query<WsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(e.body_text()))?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            ErrorCode::UpgradeRequired,
            format!(
                "GET /ws takes a WebSocket upgrade request: {}",
                e.body_text()
            ),
        )
    })?;
    let player = match query.token.as_deref() {
        None => None,
        Some(token) => Some(authenticate(&state, token, address).await?),
    };
    let hub = state.ws.clone();
    let permit: OwnedSemaphorePermit =
        hub.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::unavailable("too many WebSocket connections; try again later")
        })?;
    let encoding = query.encoding.unwrap_or_default();
    Ok(upgrade
        // Client messages are small; buffers grow only while a message needs them.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            connection::run(socket, state, player, encoding, permit).await;
        }))
}

/// The player a token belongs to; a bad token costs the address its allowance.
pub(crate) async fn authenticate(
    state: &AppState,
    token: &str,
    address: Option<std::net::IpAddr>,
) -> Result<Key, ApiError> {
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the token is not valid".to_string(),
        ));
    }
    match state.accounts.authenticate(token).await {
        Ok(id) => Ok(Key::from(id.as_str())),
        Err(error) => {
            if let Some(address) = address {
                state.limits.address(address)?;
            }
            Err(error)
        }
    }
}

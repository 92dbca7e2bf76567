//! The HTTP API (docs/http.md): every route, its shared state, and the layers around it
//! (request tracing, panics turned into `500 internal`, JSON 404 and 405). [`router`] is the
//! whole API and the spectator page (`serve` and `api`); [`ops_router`] is health, readiness and metrics only (a
//! `daemon`, which serves no players); `browsers` adds CORS, compression and `ETag`s. Handlers read the last published read models with one
//! atomic load and never wait for the World; commands go to it over the command bus.

pub mod access;
pub mod admin;
pub mod auth;
pub mod browsers;
pub mod commands;
pub mod error;
pub mod extract;
pub mod health;
pub mod limits;
pub mod me;
pub mod openapi;
pub mod page;
pub mod read;
pub mod sandbox;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{Method, Uri},
    middleware,
    routing::{get, post},
};
use components::{
    durable::{EventLog, PersistStatus},
    read_model::{ReadHandle, ReadModels},
};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

pub use self::access::ReadSource;
use self::{
    error::{ApiError, ErrorCode},
    extract::MAX_BODY,
    health::Backends,
    limits::RateLimits,
};
use crate::{accounts::Accounts, bus::CommandBus};

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    /// The read models the World publishes.
    pub read: ReadHandle,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Reachability of the configured backends, for `/ready`.
    pub backends: Arc<Backends>,
    /// Players' accounts and tokens.
    pub accounts: Accounts,
    /// Where commands and presence go to the World.
    pub bus: Arc<CommandBus>,
    /// Requests per player and per address.
    pub limits: Arc<RateLimits>,
    /// The durable event log (`GET /api/events`).
    pub events: Arc<dyn EventLog>,
    /// How the world's store is doing (`/ready`).
    pub persist: Arc<PersistStatus>,
    /// Where the read models come from (`X-Cache`).
    pub read_source: ReadSource,
    /// The WebSocket side (`GET /ws`).
    pub ws: Arc<crate::ws::Hub>,
    /// Origins whose pages may call the API (CORS).
    pub cors: browsers::CorsOrigins,
    /// `serve --sandbox`: the sandbox's routes answer (docs/sandbox.md).
    pub sandbox: bool,
    /// The admin routes, with `TIANXIA_ADMIN_TOKEN` set (docs/http.md#admin-routes).
    pub admin: Option<Arc<admin::Admin>>,
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal("a request handler panicked").into_response()
}

/// How often a route that waits for the World looks again.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Looks at `ready` every 10 ms until it gives a value, or `within` has passed (`None`); an
/// error from `ready` ends the wait.
pub(crate) async fn poll<T>(
    within: std::time::Duration,
    mut ready: impl FnMut() -> Result<Option<T>, ApiError>,
) -> Result<Option<T>, ApiError> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(found) = ready()? {
            return Ok(Some(found));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// 503 with the operator's message while maintenance is on (docs/http.md#admin-routes).
pub(crate) fn taking_commands(models: &ReadModels) -> Result<(), ApiError> {
    match &models.world.maintenance {
        Some(message) => Err(ApiError::unavailable(message.clone())),
        None => Ok(()),
    }
}

/// The last published read models, or 503 while the world is not loaded.
pub(crate) fn published(state: &AppState) -> Result<Arc<ReadModels>, ApiError> {
    state
        .read
        .load_full()
        .ok_or_else(|| ApiError::unavailable("the world is not loaded yet"))
}

/// Health, readiness, metrics and the admin routes: every role serves them (the admin routes
/// do something only where the World runs).
fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/flush", post(admin::flush))
        .route("/admin/maintenance", post(admin::maintenance))
        .route("/admin/status", get(admin::status))
}

/// The layers around every route: JSON 404 and 405, panics as `500 internal`, the access
/// log, tracing, compression.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(access::access_log))
        .layer(TraceLayer::new_for_http())
        .layer(browsers::compression())
        .with_state(state)
}

/// Health, readiness and metrics only: the HTTP side of a `daemon`, which serves no players.
pub fn ops_router(state: AppState) -> Router {
    finish(ops_routes(), state)
}

/// The whole API: the HTTP side of `serve` and `api`.
pub fn router(state: AppState) -> Router {
    // Reads from the read models, which say where they came from (`X-Cache`).
    let reads = Router::new()
        .route("/api/world", get(read::world))
        .route("/api/rules", get(read::rules))
        .route("/api/nations", get(read::nations))
        .route("/api/nations/{id}", get(read::nation))
        .route("/api/cities", get(read::cities))
        .route("/api/cities/{id}", get(read::city))
        .route("/api/generals", get(read::generals))
        .route("/api/generals/{id}", get(read::general))
        .route("/api/battles", get(read::battles))
        .route("/api/battles/{id}", get(read::battle))
        .route("/api/battles/{id}/frame", get(read::frame))
        .route("/api/battles/{id}/recording", get(read::recording))
        .route("/api/leaderboard", get(read::leaderboard))
        .route("/api/orders/{id}", get(commands::order))
        .route("/api/orders", get(me::orders))
        .route("/api/me", get(me::me))
        .route_layer(middleware::from_fn_with_state(
            state.read_source,
            access::read_answer,
        ));
    let routes = ops_routes()
        .merge(reads)
        .route("/api/events", get(read::events))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/join", post(commands::join))
        .route("/api/commands", post(commands::command))
        .route("/api/sandbox/give", post(sandbox::give))
        .route("/api/sandbox/teleport", post(sandbox::teleport))
        .route("/api/sandbox/clock", post(sandbox::clock))
        .route("/ws", get(crate::ws::upgrade))
        .merge(page::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY));
    // Outermost, so a preflight is answered before any route sees it.
    let cors = state.cors.layer();
    let app = finish(routes, state);
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

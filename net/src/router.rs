//! The HTTP router: every route of the API, its shared state, and the layers around it
//! (request tracing, panics turned into `500 internal`, JSON 404 and 405).

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{Method, Uri},
    routing::{get, post},
};
use components::read_model::ReadHandle;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{
    accounts::Accounts,
    bus::CommandBus,
    durable::{EventLog, PersistStatus},
    error::{ApiError, ErrorCode},
    extract::MAX_BODY,
    health::{self, Backends},
    limits::RateLimits,
    play, read,
};

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

/// Health, readiness and metrics only: the HTTP side of a `daemon`, which serves no players.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/api/world", get(read::world))
        .route("/api/nations", get(read::nations))
        .route("/api/nations/{id}", get(read::nation))
        .route("/api/cities", get(read::cities))
        .route("/api/cities/{id}", get(read::city))
        .route("/api/generals", get(read::generals))
        .route("/api/generals/{id}", get(read::general))
        .route("/api/battles", get(read::battles))
        .route("/api/battles/{id}", get(read::battle))
        .route("/api/battles/{id}/frame", get(read::frame))
        .route("/api/events", get(read::events))
        .route("/api/leaderboard", get(play::leaderboard))
        .route("/api/auth/register", post(play::register))
        .route("/api/auth/login", post(play::login))
        .route("/api/auth/logout", post(play::logout))
        .route("/api/join", post(play::join))
        .route("/api/commands", post(play::command))
        .route("/api/orders/{id}", get(play::order))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

//! Liveness, readiness and metrics. Readiness (`GET /ready`) says whether the World has
//! published its first read models, whether every configured backend answered its last
//! probe and whether the world's store took the last epoch (with the epochs waiting for it);
//! probes run in the background on a timer, so `/ready` itself does no I/O.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use components::durable::PersistReport;
use serde::Serialize;
use tokio::task::JoinHandle;

use super::AppState;

/// The future a probe returns: `Err` carries a message safe to show operators.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A backend whose reachability readiness depends on.
pub trait Probe: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn check(&self) -> ProbeFuture<'_>;
}

/// The last outcome of one backend's probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackendStatus {
    pub name: &'static str,
    pub ok: bool,
    /// Why the last probe failed, or that none has finished yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The configured backends and what their probes last found.
pub struct Backends {
    probes: Vec<Arc<dyn Probe>>,
    status: ArcSwap<Vec<BackendStatus>>,
    timeout: Duration,
}

impl Backends {
    pub fn new(probes: Vec<Arc<dyn Probe>>, timeout: Duration) -> Self {
        let status = probes
            .iter()
            .map(|p| BackendStatus {
                name: p.name(),
                ok: false,
                error: Some("not checked yet".into()),
            })
            .collect();
        Backends {
            probes,
            status: ArcSwap::from_pointee(status),
            timeout,
        }
    }

    /// No backends: embedded mode.
    pub fn none() -> Self {
        Self::new(Vec::new(), Duration::from_secs(1))
    }

    /// Probes every backend once, each bounded by the timeout.
    pub async fn refresh(&self) {
        let mut status = Vec::with_capacity(self.probes.len());
        for probe in &self.probes {
            let outcome = match tokio::time::timeout(self.timeout, probe.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            };
            if let Err(error) = &outcome {
                tracing::warn!(backend = probe.name(), %error, "backend probe failed");
            }
            status.push(BackendStatus {
                name: probe.name(),
                ok: outcome.is_ok(),
                error: outcome.err(),
            });
        }
        self.status.store(Arc::new(status));
    }

    /// Probes at once and then every `interval`, until the task is aborted.
    pub fn spawn_monitor(self: Arc<Self>, interval: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.refresh().await;
            }
        })
    }

    pub fn status(&self) -> Arc<Vec<BackendStatus>> {
        self.status.load_full()
    }
}

/// `GET /health`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "the process lives", body = Health)),
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /ready` (docs/operations.md#readiness).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub world_loaded: bool,
    pub backends: Vec<BackendStatus>,
    pub persistence: PersistReport,
    /// The last event the World published.
    pub last_seq: u64,
    /// Why it is not ready; empty when it is.
    pub reasons: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "ready to serve", body = Readiness),
        (status = 503, description = "not ready; `reasons` says why", body = Readiness),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let backends = state.backends.status();
    let mut reasons = Vec::new();
    let models = state.read.load_full();
    let world_loaded = models.is_some();
    // The last event the World has published; the durable log catches up with each epoch.
    let last_seq = models
        .as_ref()
        .and_then(|m| m.events.last().map(|e| e.seq))
        .unwrap_or(0);
    if !world_loaded {
        reasons.push("the world is not loaded yet".to_string());
    }
    for backend in backends.iter().filter(|b| !b.ok) {
        reasons.push(format!(
            "{} is unreachable: {}",
            backend.name,
            backend.error.as_deref().unwrap_or("unknown")
        ));
    }
    let persistence = state.persist.report();
    if !persistence.ok {
        reasons.push(format!(
            "the {} store is failing ({} epochs waiting): {}",
            persistence.store,
            persistence.buffered_batches,
            persistence.error.as_deref().unwrap_or("unknown")
        ));
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if reasons.is_empty() {
            "ready"
        } else {
            "not_ready"
        },
        world_loaded,
        backends: backends.to_vec(),
        persistence,
        last_seq,
        reasons,
    };
    (status, Json(body)).into_response()
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

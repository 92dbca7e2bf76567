//! The admin routes (docs/http.md#admin-routes), behind `TIANXIA_ADMIN_TOKEN`: without the
//! variable they answer 404 like any unknown route; with it, a request must carry
//! `Authorization: Bearer <token>` (compared in constant time) or is answered 401.
//! `POST /admin/reload` reads and validates the designer data now and has the World apply it;
//! `POST /admin/flush` closes a checkpoint epoch and answers when it is durable;
//! `POST /admin/maintenance` refuses commands (503 with a message; reads go on) or takes them
//! again, durably;
//! `GET /admin/status` reports the data in force, reload errors, persistence and the clock.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use components::{
    admin::{
        AdminOps, LeaseReport, OpenCount, OpenReport, ReloadError, ReloadOutcome, ReloadStatus,
    },
    durable::PersistReport,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    AppState,
    error::{ApiError, ErrorBody, ErrorCode, ErrorDetail},
    extract::ApiJson,
    poll, published,
};

/// How long `POST /admin/reload` waits for the World to put new data in force.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// The admin side of a process: its token, and what it can do (none in an `api` process,
/// which runs no World).
pub struct Admin {
    pub token: String,
    pub ops: Option<Arc<dyn AdminOps>>,
    /// This process's open HTTP connections, counted where they are accepted.
    pub http: Arc<OpenCount>,
}

/// A request that carries the admin token, with what the admin routes can do here. As an
/// extractor it runs before the body is read: without the token nothing else is looked at.
pub struct AdminAccess(pub Arc<dyn AdminOps>);

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authorize(state, &parts.headers).map(AdminAccess)
    }
}

/// The admin operations, once the request's token is the admin token.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Arc<dyn AdminOps>, ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::not_found(
            "no admin routes: TIANXIA_ADMIN_TOKEN is not set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests of equal length, compared in constant time: neither the token's bytes nor its
    // length show in the time taken.
    let matches: bool = Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(admin.token.as_bytes()))
        .into();
    if !matches {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "admin routes need Authorization: Bearer <TIANXIA_ADMIN_TOKEN>",
        ));
    }
    admin.ops.clone().ok_or_else(|| {
        ApiError::not_found(
            "admin routes are served by the process that runs the World (serve or daemon)",
        )
    })
}

/// `422`: the designer data does not validate; every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReloadRefused {
    pub error: ErrorDetail,
    /// Every error, as `file:line:column: message`.
    pub errors: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/admin/reload",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "the data on disk is in force: its hash and the files that changed (none if nothing did)", body = ReloadOutcome),
        (status = 401, description = "no admin token, or a wrong one (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "TIANXIA_ADMIN_TOKEN is not set, or this process runs no World (`not_found`)", body = ErrorBody),
        (status = 422, description = "the data does not validate; the data in force stays (`invalid_data`)", body = ReloadRefused),
        (status = 503, description = "the World did not apply the data within 5 s (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn reload(State(state): State<AppState>, AdminAccess(ops): AdminAccess) -> Response {
    let outcome = match tokio::task::spawn_blocking(move || ops.reload("admin")).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(ReloadError::Unavailable(why))) => {
            return ApiError::unavailable(why).into_response();
        }
        Ok(Err(ReloadError::Invalid(errors))) => {
            let refused = ReloadRefused {
                error: ErrorDetail {
                    code: ErrorCode::InvalidData,
                    message: format!(
                        "the designer data has {} error(s); the data in force is unchanged",
                        errors.len()
                    ),
                },
                errors,
            };
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(refused)).into_response();
        }
        Err(_) => return ApiError::internal("the reload failed").into_response(),
    };
    // Answered once the World has the data in force.
    let applied = poll(APPLY_WAIT, || {
        Ok(published(&state)
            .ok()
            .filter(|models| models.world.data_hash == outcome.data_hash)
            .map(|_| ()))
    })
    .await;
    match applied {
        Ok(Some(())) => Json(outcome).into_response(),
        _ => {
            ApiError::unavailable("the data validated, but the World has not applied it within 5 s")
                .into_response()
        }
    }
}

/// How long `POST /admin/flush` waits for the store to have the epoch.
const DURABLE_WAIT: Duration = Duration::from_secs(30);

/// `POST /admin/flush`: the epoch closed, now durable.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Flushed {
    /// The epoch closed on request.
    pub epoch: u64,
    /// The last event the store has (everything before the request is in it).
    pub durable_seq: u64,
}

#[utoipa::path(
    post,
    path = "/admin/flush",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "an epoch was closed and is durable: everything the World did before the request is in the store", body = Flushed),
        (status = 401, description = "no admin token, or a wrong one (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "TIANXIA_ADMIN_TOKEN is not set, or this process runs no World (`not_found`)", body = ErrorBody),
        (status = 503, description = "the World did not close the epoch within 5 s, or the store did not have it within 30 s (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn flush(
    State(state): State<AppState>,
    AdminAccess(ops): AdminAccess,
) -> Result<Json<Flushed>, ApiError> {
    let epoch = tokio::task::spawn_blocking(move || ops.flush())
        .await
        .map_err(|_| ApiError::internal("the flush failed"))?
        .map_err(ApiError::unavailable)?;
    let report = durable(&state, epoch).await?;
    Ok(Json(Flushed {
        epoch,
        durable_seq: report.durable_seq,
    }))
}

/// Longest maintenance message, in characters.
pub const MAINTENANCE_MESSAGE_MAX: usize = 200;
const DEFAULT_MAINTENANCE_MESSAGE: &str =
    "the server is under maintenance; commands are not taken now, reads go on";

/// `POST /admin/maintenance`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// `true`: commands are answered 503 with `message`; `false`: taken again.
    pub on: bool,
    /// What refused commands are told (1–200 printable characters; a default when absent).
    #[serde(default)]
    pub message: Option<String>,
}

/// What maintenance is now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceState {
    pub on: bool,
    pub message: Option<String>,
    /// The epoch that holds the change, durable when this is answered.
    pub epoch: u64,
}

#[utoipa::path(
    post,
    path = "/admin/maintenance",
    tag = "admin",
    security(("admin" = [])),
    request_body = MaintenanceRequest,
    responses(
        (status = 200, description = "in force and durable: it holds across a restart", body = MaintenanceState),
        (status = 400, description = "malformed JSON (`invalid_json`), a field missing, unknown or of the wrong type, a message that is empty, too long or not printable (`invalid_field`)", body = ErrorBody),
        (status = 401, description = "no admin token, or a wrong one (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "TIANXIA_ADMIN_TOKEN is not set, or this process runs no World (`not_found`)", body = ErrorBody),
        (status = 413, description = "a body over 16 KiB (`payload_too_large`)", body = ErrorBody),
        (status = 503, description = "the World or the store did not take it in time (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn maintenance(
    State(state): State<AppState>,
    AdminAccess(ops): AdminAccess,
    ApiJson(request): ApiJson<MaintenanceRequest>,
) -> Result<Json<MaintenanceState>, ApiError> {
    let message = match (request.on, request.message) {
        (false, _) => None,
        (true, None) => Some(DEFAULT_MAINTENANCE_MESSAGE.to_string()),
        (true, Some(message)) => {
            let message = message.trim().to_string();
            if message.is_empty()
                || message.chars().count() > MAINTENANCE_MESSAGE_MAX
                || !components::text::printable(&message)
            {
                return Err(ApiError::invalid_field(format!(
                    "message: 1-{MAINTENANCE_MESSAGE_MAX} printable characters"
                )));
            }
            Some(message)
        }
    };
    let asked = message.clone();
    let epoch = tokio::task::spawn_blocking(move || ops.maintenance(asked))
        .await
        .map_err(|_| ApiError::internal("the request failed"))?
        .map_err(ApiError::unavailable)?;
    durable(&state, epoch).await?;
    Ok(Json(MaintenanceState {
        on: message.is_some(),
        message,
        epoch,
    }))
}

/// Waits until the store has `epoch`.
async fn durable(state: &AppState, epoch: u64) -> Result<PersistReport, ApiError> {
    let durable = poll(DURABLE_WAIT, || {
        let report = state.persist.report();
        Ok((report.durable_epoch >= epoch).then_some(report))
    })
    .await?;
    durable.ok_or_else(|| {
        ApiError::unavailable(format!(
            "epoch {epoch} was closed but the store does not have it after 30 s{}",
            state
                .persist
                .report()
                .error
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))
    })
}

/// `GET /admin/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminStatus {
    /// The data hash the World runs on.
    pub data_hash: String,
    /// Hot reload: the last data validated, the errors of the last refused edit.
    pub reload: ReloadStatus,
    /// The world's store: epochs waiting, lag, the last error.
    pub persistence: PersistReport,
    /// The game clock: game seconds, configured and effective speed, and whether a sandbox
    /// stopped it.
    pub clock: ClockStatus,
    /// The maintenance message while commands are refused.
    pub maintenance: Option<String>,
    /// The lease this process writes under (docs/redis.md#fencing): absent for an embedded
    /// world without MongoDB.
    pub lease: Option<LeaseReport>,
    /// Connections open now, with their limits.
    pub connections: ConnectionsStatus,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionsStatus {
    pub http: OpenReport,
    pub websocket: OpenReport,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClockStatus {
    pub game_seconds: i64,
    pub speed: f64,
    pub effective_speed: f64,
    /// Real seconds the clock is behind its schedule.
    pub lag_seconds: f64,
    pub paused: bool,
}

#[utoipa::path(
    get,
    path = "/admin/status",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "the data in force, reload errors, persistence (with the command stream's pending entries), the clock, maintenance, the lease and open connections", body = AdminStatus),
        (status = 401, description = "no admin token, or a wrong one (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "TIANXIA_ADMIN_TOKEN is not set, or this process runs no World (`not_found`)", body = ErrorBody),
        (status = 503, description = "the world is not loaded yet (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn status(
    State(state): State<AppState>,
    AdminAccess(ops): AdminAccess,
) -> Result<Json<AdminStatus>, ApiError> {
    let models = published(&state)?;
    let world = &models.world;
    Ok(Json(AdminStatus {
        data_hash: world.data_hash.clone(),
        reload: ops.reload_status(),
        persistence: state.persist.report(),
        clock: ClockStatus {
            game_seconds: world.game_seconds,
            speed: world.speed,
            effective_speed: world.effective_speed,
            lag_seconds: world.clock_lag_seconds,
            paused: world.paused,
        },
        maintenance: world.maintenance.clone(),
        lease: ops.lease(),
        connections: ConnectionsStatus {
            http: state
                .admin
                .as_ref()
                .map_or(OpenReport { open: 0, max: 0 }, |a| a.http.report()),
            websocket: state.ws.connections_report(),
        },
    }))
}

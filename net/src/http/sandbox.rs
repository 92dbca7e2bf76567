//! The sandbox's admin routes (docs/sandbox.md): `POST /api/sandbox/give`, `/teleport` and
//! `/clock`, for client developers on a server started with `serve --sandbox`; on any other
//! server they answer 404. Any signed-in player may edit anything. Each edit is a command
//! like the others: made durable in the command log, applied by the World in order,
//! answered like `POST /api/join` (the World's verdict within 5 s, else 202).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use components::command::{ClockArgs, CommandBody, GiveArgs, SandboxEdit, TeleportArgs};

use super::{
    AppState,
    commands::{Submitted, answer, shape_error, world_rejection},
    error::{ApiError, BodyFailures, ErrorBody, PlayerFailures},
    extract::{ApiJson, Player},
    published,
};
use components::read_model::{OrderStatus, OrderView};

/// Sends `edit` to the World and answers with its verdict.
async fn edit(state: AppState, player: Player, edit: SandboxEdit) -> Result<Response, ApiError> {
    if !state.sandbox {
        return Err(ApiError::not_found(
            "the sandbox is off: these routes answer on a server started with serve --sandbox",
        ));
    }
    edit.check().map_err(shape_error)?;
    let models = published(&state)?;
    super::taking_commands(&models)?;
    let (id, _) = state
        .bus
        .submit(
            &player.id,
            None,
            None,
            CommandBody::Sandbox(edit),
            Some(&models),
        )
        .await?;
    match answer(&state, &player.id, &id).await? {
        Some((_, order)) if order.status == OrderStatus::Completed => {
            Ok((StatusCode::OK, Json(order)).into_response())
        }
        Some((_, order)) => Err(world_rejection(&order)),
        None => Ok(Submitted::queued(id)),
    }
}

#[utoipa::path(
    post,
    path = "/api/sandbox/give",
    tag = "sandbox",
    security(("bearer" = [])),
    request_body(content = GiveArgs, description = "exactly one of `general` (troops), `city` (troops for its garrison, gold, rice) or `nation` (gold, rice); amounts within ±1,000,000,000, negative to take away; the result stays at zero or above, a general's troops within its cap, a garrison within 100,000"),
    responses(
        (status = 200, description = "done: the completed order; a `SandboxEdited` event tells what the target holds now", body = OrderView),
        (status = 202, description = "the World has not answered within 5 s", body = Submitted),
        BodyFailures,
        PlayerFailures,
        (status = 404, description = "the sandbox is off, or no such general, city or nation (`not_found`)", body = ErrorBody),
        (status = 503, description = "commands cannot be taken now (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn give(
    State(state): State<AppState>,
    player: Player,
    ApiJson(args): ApiJson<GiveArgs>,
) -> Result<Response, ApiError> {
    edit(state, player, SandboxEdit::Give(args)).await
}

#[utoipa::path(
    post,
    path = "/api/sandbox/teleport",
    tag = "sandbox",
    security(("bearer" = [])),
    request_body(content = TeleportArgs, description = "an idle general (no order, not in a battle) and a city where its march could end without a fight or a capture: for a ronin any city not held against it, for a nation's general its nation's cities and its allies'"),
    responses(
        (status = 200, description = "done: the general stands in the city", body = OrderView),
        (status = 202, description = "the World has not answered within 5 s", body = Submitted),
        BodyFailures,
        PlayerFailures,
        (status = 404, description = "the sandbox is off, or no such general or city (`not_found`)", body = ErrorBody),
        (status = 503, description = "commands cannot be taken now (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn teleport(
    State(state): State<AppState>,
    player: Player,
    ApiJson(args): ApiJson<TeleportArgs>,
) -> Result<Response, ApiError> {
    edit(state, player, SandboxEdit::Teleport(args)).await
}

#[utoipa::path(
    post,
    path = "/api/sandbox/clock",
    tag = "sandbox",
    security(("bearer" = [])),
    request_body(content = ClockArgs, description = "`paused` stops (true) or starts (false) the game clock; `speed` sets game seconds per real second (0.001–1,000,000); either or both"),
    responses(
        (status = 200, description = "done: `GET /api/world` shows `paused` and `speed`", body = OrderView),
        (status = 202, description = "the World has not answered within 5 s", body = Submitted),
        BodyFailures,
        PlayerFailures,
        (status = 404, description = "the sandbox is off (`not_found`)", body = ErrorBody),
        (status = 503, description = "commands cannot be taken now (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn clock(
    State(state): State<AppState>,
    player: Player,
    ApiJson(args): ApiJson<ClockArgs>,
) -> Result<Response, ApiError> {
    edit(state, player, SandboxEdit::Clock(args)).await
}

//! Player commands (docs/http.md#commands): joining the world, commands and the caller's
//! orders. The HTTP layer checks shapes, tokens and what the read model already shows
//! (docs/http.md#checks-at-the-http-layer); everything else is the World's to decide, and its
//! answer comes back through the order read model.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use components::{
    command::{CommandBody, JoinArgs, ShapeCode, check_command_id},
    ids::is_valid_id,
    read_model::{GeneralView, OrderStatus, OrderView, ReadModels},
    world::TroopType,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AppState,
    error::{ApiError, BodyFailures, ErrorBody, ErrorCode, PlayerFailures},
    extract::{ApiJson, ApiPath, Player},
    poll, published,
    read::count_l1,
    taking_commands,
};

/// How long `POST /api/join` waits for the World's answer.
pub const JOIN_WAIT: Duration = Duration::from_secs(5);

pub(super) fn shape_error(error: components::command::ShapeError) -> ApiError {
    let code = match error.code {
        ShapeCode::InvalidField => ErrorCode::InvalidField,
        ShapeCode::UnknownCommand => ErrorCode::UnknownCommand,
        ShapeCode::InvalidArgs => ErrorCode::InvalidArgs,
    };
    ApiError::new(code, error.message)
}

/// `POST /api/join`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    name: String,
    #[serde(default)]
    nation: Option<String>,
    #[serde(default)]
    troop_type: Option<TroopType>,
}

#[utoipa::path(
    post,
    path = "/api/join",
    tag = "commands",
    security(("bearer" = [])),
    request_body = JoinRequest,
    responses(
        (status = 201, description = "the player's new general", body = GeneralView),
        (status = 202, description = "the World has not answered within 5 s: the JOIN is queued", body = Submitted),
        (status = 400, description = "the World refused the arguments (`invalid_args`, e.g. a nation that takes no one); malformed JSON (`invalid_json`); a field of the wrong type, missing or unknown (`invalid_field`)", body = ErrorBody),
        (status = 413, description = "a body over 16 KiB (`payload_too_large`)", body = ErrorBody),
        PlayerFailures,
        (status = 409, description = "the player has a general already (`already_joined`)", body = ErrorBody),
        (status = 404, description = "no nation with that id (`not_found`)", body = ErrorBody),
        (status = 503, description = "commands cannot be taken now (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn join(
    State(state): State<AppState>,
    player: Player,
    ApiJson(body): ApiJson<JoinRequest>,
) -> Result<Response, ApiError> {
    let body = CommandBody::Join(JoinArgs {
        name: body.name,
        nation: body.nation,
        troop_type: body.troop_type,
    });
    body.check().map_err(shape_error)?;
    let models = published(&state)?;
    taking_commands(&models)?;
    if models
        .generals
        .contains_key(format!("g-{}", player.id).as_str())
    {
        return Err(ApiError::new(
            ErrorCode::AlreadyJoined,
            "you already have a general",
        ));
    }
    let (id, _) = state
        .bus
        .submit(&player.id, None, None, body, Some(&models))
        .await?;
    let Some((models, order)) = answer(&state, &player.id, &id).await? else {
        return Ok(Submitted::queued(id));
    };
    match order.status {
        OrderStatus::Completed => {
            let general = order
                .general_id
                .as_ref()
                .and_then(|g| models.generals.get(g.as_str()))
                .ok_or_else(|| ApiError::internal("a completed JOIN without its general"))?;
            Ok((StatusCode::CREATED, Json(general.as_ref().clone())).into_response())
        }
        _ => Err(world_rejection(&order)),
    }
}

/// Waits up to [`JOIN_WAIT`] for the World's answer to the caller's order `id`: the read
/// models it was found in and the order, or `None` if the World has not answered.
pub(super) async fn answer(
    state: &AppState,
    player: &str,
    id: &str,
) -> Result<Option<(Arc<ReadModels>, OrderView)>, ApiError> {
    let found = poll(JOIN_WAIT, || {
        let models = published(state)?;
        let view = models
            .orders
            .get(player)
            .and_then(|w| w.get(id))
            .map(|order| order.view.clone());
        Ok(view.map(|view| (models, view)))
    })
    .await?;
    if found.is_some() {
        state.bus.published(player, id);
    }
    Ok(found)
}

/// The World's rejection of a JOIN (or a sandbox edit) as an HTTP error.
pub(super) fn world_rejection(order: &OrderView) -> ApiError {
    let message = order
        .message
        .clone()
        .unwrap_or_else(|| "the World rejected the command".into());
    match order.reason.as_deref() {
        Some("already_joined") => ApiError::new(ErrorCode::AlreadyJoined, message),
        Some("unknown_target" | "unknown_general") => ApiError::not_found(message),
        Some("internal") => ApiError::internal(message),
        _ => ApiError::new(ErrorCode::InvalidArgs, message),
    }
}

/// `POST /api/commands`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    command_type: String,
    #[serde(default)]
    general: Option<String>,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    order_id: String,
    status: OrderStatus,
}

impl Submitted {
    /// `202 Accepted`: taken, not answered yet.
    pub(super) fn queued(order_id: String) -> Response {
        (
            StatusCode::ACCEPTED,
            Json(Submitted {
                order_id,
                status: OrderStatus::Queued,
            }),
        )
            .into_response()
    }
}

#[utoipa::path(
    post,
    path = "/api/commands",
    tag = "commands",
    security(("bearer" = [])),
    request_body = CommandRequest,
    responses(
        (status = 202, description = "taken (durable); a repeated id answers its order's status", body = Submitted),
        BodyFailures,
        PlayerFailures,
        (status = 403, description = "the general is not the caller's (`not_owner`)", body = ErrorBody),
        (status = 409, description = "the id was used for another command (`id_conflict`), or a JOIN of a player who has joined (`already_joined`)", body = ErrorBody),
        (status = 503, description = "commands cannot be taken now (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn command(
    State(state): State<AppState>,
    player: Player,
    ApiJson(request): ApiJson<CommandRequest>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    if let Some(id) = &request.id {
        check_command_id(id).map_err(shape_error)?;
    }
    let body = CommandBody::parse(&request.command_type, request.args).map_err(shape_error)?;
    let is_join = matches!(body, CommandBody::Join(_));
    match (&request.general, is_join) {
        (Some(_), true) => {
            return Err(ApiError::invalid_field("general: JOIN names no general"));
        }
        (None, false) => return Err(ApiError::invalid_field("general: required")),
        (Some(general), false) if !is_valid_id(general) => {
            return Err(ApiError::invalid_field(
                "general: 1-48 characters of [a-z0-9_-]",
            ));
        }
        _ => {}
    }
    let models = published(&state)?;
    taking_commands(&models)?;
    if let Some(general) = request
        .general
        .as_ref()
        .and_then(|g| models.generals.get(g.as_str()))
        && general.owner.as_deref() != Some(player.id.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::NotOwner,
            format!("general \"{}\" is not yours", general.id),
        ));
    }
    let hash = components::command::body_hash(request.general.as_deref(), &body);
    if let Some(id) = &request.id {
        let known = models
            .orders
            .get(player.id.as_str())
            .and_then(|w| w.get(id.as_str()))
            .map(|o| (o.body_hash, o.view.status))
            .or_else(|| {
                state
                    .bus
                    .queued(&player.id, id, Some(&models))
                    .map(|q| (q.body_hash, OrderStatus::Queued))
            });
        if let Some((known_hash, status)) = known {
            if known_hash != hash {
                return Err(ApiError::new(
                    ErrorCode::IdConflict,
                    format!("order id \"{id}\" was already used for another command"),
                ));
            }
            return Ok((
                StatusCode::ACCEPTED,
                Json(Submitted {
                    order_id: id.clone(),
                    status,
                }),
            ));
        }
    }
    let (id, status) = state
        .bus
        .submit(&player.id, request.id, request.general, body, Some(&models))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Submitted {
            order_id: id,
            status,
        }),
    ))
}

/// `GET /api/orders/{id}`: the caller's order.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the order's id (the command's)", pattern = "^[A-Za-z0-9_.:-]{1,64}$")),
    responses(
        (status = 200, description = "the caller's order", body = OrderView),
        (status = 400, description = "an id that is not an order id (`invalid_field`)", body = ErrorBody),
        PlayerFailures,
        (status = 404, description = "the caller has no order with that id (`not_found`)", body = ErrorBody),
        (status = 503, description = "the world is not loaded yet (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn order(
    State(state): State<AppState>,
    player: Player,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrderView>, ApiError> {
    let models = published(&state).inspect_err(|_| count_l1(false))?;
    let found = models
        .orders
        .get(player.id.as_str())
        .and_then(|w| w.get(id.as_str()));
    count_l1(found.is_some());
    if let Some(order) = found {
        state.bus.published(&player.id, &id);
        return Ok(Json(order.view.clone()));
    }
    if let Some(queued) = state.bus.queued(&player.id, &id, Some(&models)) {
        return Ok(Json(OrderView::queued(
            id,
            queued.command_type.to_string(),
            queued.general,
        )));
    }
    Err(ApiError::not_found("you have no order with that id"))
}

//! What a player reads about itself (docs/http.md#the-caller): `GET /api/me` (the player, its
//! general and its open orders) and `GET /api/orders` (its orders, a page at a time), from
//! the published read models like every read. Orders listed are those the World holds in
//! the player's window (docs/rules.md#order-ids-and-idempotency): the open ones and the last
//! finished ones; a command not yet taken in by the World is found by
//! `GET /api/orders/{id}` and pushed on the WebSocket's `orders` topic.

use std::sync::Arc;

use axum::{Json, extract::State};
use components::{
    command::check_command_id,
    read_model::{GeneralView, OrderView},
};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::{ApiError, ErrorBody, PlayerFailures},
    extract::{ApiQuery, Player},
    published,
    read::count_l1,
};

/// Orders one page holds by default, and at most.
pub const DEFAULT_ORDERS_LIMIT: usize = 50;
pub const MAX_ORDERS_LIMIT: usize = 100;

/// `GET /api/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The player id (the name in lower case).
    pub player: String,
    /// The name as registered.
    pub name: String,
    /// The player's general (`g-{player}`), or `null` before it joins.
    #[schema(value_type = Option<GeneralView>)]
    pub general: Option<Arc<GeneralView>>,
    /// Orders not finished yet, by order id.
    pub open_orders: Vec<OrderView>,
}

#[utoipa::path(
    get,
    path = "/api/me",
    tag = "commands",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller, its general and its open orders", body = Me),
        PlayerFailures,
        (status = 503, description = "the world is not loaded yet, or accounts cannot be read (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn me(State(state): State<AppState>, player: Player) -> Result<Json<Me>, ApiError> {
    let name = state
        .accounts
        .name(&player.id)
        .await?
        .unwrap_or_else(|| player.id.clone());
    let models = published(&state).inspect_err(|_| count_l1(false))?;
    count_l1(true);
    let general = models
        .generals
        .get(format!("g-{}", player.id).as_str())
        .cloned();
    let open_orders = models.open_orders(&player.id);
    Ok(Json(Me {
        player: player.id,
        name,
        general,
        open_orders,
    }))
}

/// Which orders `GET /api/orders` lists.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderFilter {
    /// Not finished: queued or accepted.
    Open,
    /// Completed, rejected or cancelled.
    Finished,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrdersQuery {
    /// Only open or only finished orders (default both).
    status: Option<OrderFilter>,
    /// Only orders whose id sorts after this one: the `next` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    after: Option<String>,
    /// At most this many orders (1–100, default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// `GET /api/orders`: one page of the caller's orders, in order-id order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrdersPage {
    pub orders: Vec<OrderView>,
    /// The `after` of the next page, or `null` on the last.
    pub next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "commands",
    security(("bearer" = [])),
    params(OrdersQuery),
    responses(
        (status = 200, description = "a page of the caller's orders, in order-id order", body = OrdersPage),
        (status = 400, description = "a query parameter that is not accepted (`invalid_field`)", body = ErrorBody),
        PlayerFailures,
        (status = 503, description = "the world is not loaded yet (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn orders(
    State(state): State<AppState>,
    player: Player,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<Json<OrdersPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_ORDERS_LIMIT);
    if !(1..=MAX_ORDERS_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(format!(
            "limit: {limit} is outside 1–{MAX_ORDERS_LIMIT}"
        )));
    }
    if let Some(after) = &query.after {
        check_command_id(after).map_err(|_| ApiError::invalid_field("after: not an order id"))?;
    }
    let models = published(&state).inspect_err(|_| count_l1(false))?;
    count_l1(true);
    let Some(window) = models.orders.get(player.id.as_str()) else {
        return Ok(Json(OrdersPage {
            orders: Vec::new(),
            next: None,
        }));
    };
    let wanted = |o: &OrderView| match query.status {
        None => true,
        Some(OrderFilter::Open) => !o.status.is_finished(),
        Some(OrderFilter::Finished) => o.status.is_finished(),
    };
    let after = query.after.as_deref();
    let mut matching = window
        .iter()
        .filter(|(id, _)| after.is_none_or(|a| &***id > a))
        .map(|(_, o)| &o.view)
        .filter(|o| wanted(o));
    let orders: Vec<OrderView> = matching.by_ref().take(limit).cloned().collect();
    let next = match matching.next() {
        Some(_) => orders.last().map(|o| o.order_id.clone()),
        None => None,
    };
    Ok(Json(OrdersPage { orders, next }))
}

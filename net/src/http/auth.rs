//! Account routes (docs/http.md#account-routes): register, log in, log out. Registrations
//! and logins are limited per client address.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    AppState,
    error::{ApiError, BodyFailures, ErrorBody, PlayerFailures},
    extract::{ApiJson, ClientAddress, Player},
};
use crate::accounts::Session;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Unique regardless of case; the player id is the name in lower case.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    name: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 201, description = "the account and a token", body = Session),
        BodyFailures,
        (status = 409, description = "the name is taken (`name_taken`)", body = ErrorBody),
        (status = 429, description = "over the rate limit of this address (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "the account store cannot be reached, or too many passwords are being hashed (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    if let Some(address) = address {
        state.limits.address(address)?;
    }
    let session = state.accounts.register(&body.name, &body.password).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 200, description = "a new token", body = Session),
        BodyFailures,
        (status = 401, description = "wrong name or password (`unauthorized`)", body = ErrorBody),
        (status = 429, description = "over the rate limit of this address (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "the account store cannot be reached, or too many passwords are being hashed (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Session>, ApiError> {
    if let Some(address) = address {
        state.limits.address(address)?;
    }
    match state.accounts.login(&body.name, &body.password).await {
        Ok(session) => Ok(Json(session)),
        Err(error) => {
            if error.code == crate::http::error::ErrorCode::Unauthorized {
                // The name is not a secret; the password is never logged.
                tracing::warn!(
                    name = %components::text::clip(&body.name, 64),
                    address = ?address,
                    "failed login"
                );
            }
            Err(error)
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "the token is revoked"),
        PlayerFailures,
        (status = 503, description = "the account store cannot be reached (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn logout(State(state): State<AppState>, player: Player) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&player.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

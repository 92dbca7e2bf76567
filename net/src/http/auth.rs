//! Account routes (docs/http.md#account-routes): register, log in, log out. Registrations
//! and logins are limited per client address.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    AppState,
    error::ApiError,
    extract::{ApiJson, ClientAddress, Player},
};
use crate::accounts::Session;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    name: String,
    password: String,
}

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

pub async fn logout(State(state): State<AppState>, player: Player) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&player.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
    Ok(Json(
        state.accounts.login(&body.name, &body.password).await?,
    ))
}

pub async fn logout(State(state): State<AppState>, player: Player) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&player.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

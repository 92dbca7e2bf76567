//! Extractors that turn malformed requests into [`ApiError`]s of the API's shape instead of
//! axum's plain-text rejections.

use axum::{
    extract::{FromRequestParts, Path, Query},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::{
    AppState,
    error::{ApiError, ErrorCode},
};

/// Query parameters; unknown or malformed ones are `400 invalid_field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::invalid_field(format!(
                "bad query string: {}",
                rejection
                    .body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
            ))),
        }
    }
}

/// Path parameters; malformed ones (invalid UTF-8, wrong type) are `400 invalid_field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::invalid_field(format!(
                "bad path: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Largest request body accepted (docs/http.md#requests-and-answers).
pub const MAX_BODY: usize = 16 * 1024;

/// A JSON body: over 16 KiB is `413 payload_too_large`, bad JSON (or invalid UTF-8) is
/// `400 invalid_json`, wrong types, missing or unknown fields are `400 invalid_field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request bodies are limited to {MAX_BODY} bytes"),
                ));
            }
            Err(rejection) => {
                return Err(ApiError::new(ErrorCode::InvalidJson, rejection.body_text()));
            }
        };
        if bytes.len() > MAX_BODY {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request bodies are limited to {MAX_BODY} bytes"),
            ));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::invalid_field(e.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {e}"))
                }
            }
        })
    }
}

/// The authenticated player of a request (`Authorization: Bearer <token>`); anything else is
/// `401 unauthorized`. Records the player's presence.
#[derive(Debug, Clone)]
pub struct Player {
    pub id: String,
    pub token: String,
}

impl FromRequestParts<AppState> for Player {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m.to_string());
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("an Authorization: Bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| unauthorized("the Authorization header must be \"Bearer <token>\""))?;
        let id = match state.accounts.authenticate(token).await {
            Ok(id) => id,
            Err(error) => {
                // Guessing tokens costs the address its allowance.
                let address = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|info| info.0.ip());
                if let Some(address) = address {
                    state.limits.address(address)?;
                }
                return Err(error);
            }
        };
        if let Some(player) = parts.extensions.get::<super::access::RequestPlayer>() {
            player.set(&id);
        }
        state.limits.player(&id)?;
        state.bus.seen(&id);
        Ok(Player {
            id,
            token: token.to_string(),
        })
    }
}

/// The client's address, where the server knows it (it is served with connection info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

//! The API's one error type: every failure a client sees has the shape
//! `{"error": {"code": "...", "message": "..."}}` with a stable code. Internal details are
//! logged, never sent.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// Stable error codes (docs/http.md#error-codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidField,
    UnknownCommand,
    InvalidArgs,
    Unauthorized,
    NotOwner,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NameTaken,
    AlreadyJoined,
    IdConflict,
    PayloadTooLarge,
    UpgradeRequired,
    RateLimited,
    /// The designer data does not validate (`POST /admin/reload`).
    InvalidData,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as clients see it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::InvalidArgs => "invalid_args",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::IdConflict => "id_conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InvalidData => "invalid_data",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::InvalidField
            | ErrorCode::UnknownCommand
            | ErrorCode::InvalidArgs => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotOwner | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::NameTaken | ErrorCode::AlreadyJoined | ErrorCode::IdConflict => {
                StatusCode::CONFLICT
            }
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InvalidData => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    /// Safe to show to the client.
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_field(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidField, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A fault of the server: `detail` is logged, the client sees a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error answering a request");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

/// How a request with a JSON body fails before anything else is looked at (for the OpenAPI
/// document; the handlers answer [`ApiError`]).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyFailures {
    #[response(
        status = 400,
        description = "malformed JSON (`invalid_json`); a field of the wrong type, missing or unknown (`invalid_field`)"
    )]
    Invalid(ErrorBody),
    #[response(status = 413, description = "a body over 16 KiB (`payload_too_large`)")]
    TooLarge(ErrorBody),
}

/// How a player's request fails on its token or its pace (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum PlayerFailures {
    #[response(
        status = 401,
        description = "no token, or an unknown, expired or revoked one (`unauthorized`)"
    )]
    Unauthorized(ErrorBody),
    #[response(status = 429, description = "over a rate limit (`rate_limited`)")]
    RateLimited(ErrorBody),
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable: clients may branch on it.
    pub code: ErrorCode,
    /// For people; may change.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.code.status(), Json(body)).into_response();
        // For the access log.
        response.extensions_mut().insert(self.code);
        if matches!(self.code, ErrorCode::RateLimited | ErrorCode::Unavailable) {
            // A moment is enough: limits refill and queues drain within a second.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_serialized_codes() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::InvalidField,
            ErrorCode::UnknownCommand,
            ErrorCode::InvalidArgs,
            ErrorCode::Unauthorized,
            ErrorCode::NotOwner,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::NameTaken,
            ErrorCode::AlreadyJoined,
            ErrorCode::IdConflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UpgradeRequired,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.name());
        }
    }
}

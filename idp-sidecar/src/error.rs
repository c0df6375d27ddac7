//! The one mapping from failures to HTTP error responses: `{"error": "<stable_code>",
//! "message": "…"}` with a fitting status, as pushauthd does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pushauth_client::{ClientError, ErrorCode};
use serde_json::json;

/// An API failure: a stable code, its status, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(400, "malformed_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "unauthorized",
            "missing or wrong shared secret in the Authorization header (Bearer <secret>)",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("no such {what}"))
    }

    pub fn internal() -> Self {
        Self::new(500, "internal", "the sidecar failed; see its log")
    }

    /// pushauthd did not answer within the sidecar's call deadline (`call_timeout_secs`).
    pub fn upstream_timeout() -> Self {
        Self::new(
            504,
            "upstream_timeout",
            "the pushauth server did not answer in time",
        )
    }
}

/// How a failed call to pushauthd looks to the shim. The shim must be able to tell "this user
/// has no device" (offer enrollment) from "the push service is down" (fail closed).
impl From<ClientError> for ApiError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::UnknownUser => ApiError::new(
                404,
                "unknown_user",
                "pushauth does not know this user; enroll a device first",
            ),
            ClientError::NoDevice => ApiError::new(
                404,
                "no_device",
                "the user has no enrolled push device; enroll one first",
            ),
            ClientError::RateLimited { code, message } => {
                ApiError::new(429, code.as_str(), message)
            }
            ClientError::Unreachable(msg) => {
                tracing::warn!(error = %msg, "pushauthd unreachable");
                ApiError::new(
                    502,
                    "upstream_unreachable",
                    "the pushauth server cannot be reached",
                )
            }
            ClientError::Unauthorized => {
                tracing::error!("pushauthd refused the sidecar's API key");
                ApiError::new(
                    502,
                    "upstream_refused",
                    "the pushauth server refused the sidecar's API key; check api_key_file",
                )
            }
            ClientError::Rejected {
                status: 409,
                code: Some(ErrorCode::WrongState),
                message,
            } => ApiError::new(409, "wrong_state", message),
            ClientError::Rejected {
                status: 400,
                code: Some(ErrorCode::InvalidContext),
                message,
            } => ApiError::new(400, "invalid_context", message),
            // pushauthd refused this relying party the call (user out of its scope, no enroll or
            // bootstrap right, an approval that does not count): the shim shows a refusal, not
            // an outage.
            ClientError::Rejected {
                status: status @ (403 | 409),
                code: Some(code),
                message,
            } => {
                tracing::warn!(status, code = code.as_str(), error = %message, "pushauthd refused the call");
                ApiError::new(status, code.as_str(), message)
            }
            other => {
                tracing::error!(error = %other, "pushauthd call failed");
                ApiError::new(502, "upstream_error", other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

//! The one HTTP error type: a stable code and a message for people, converted from the
//! service layer's [`service::Error`] in one place and sent as `{"error","message"}`. The
//! conversion only maps; [`super::routes`] logs server failures once, from the cause the
//! response carries.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pushauth_proto::wire::{ErrorBody, ErrorCode};

use crate::service;

/// An API failure: a stable code plus a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable wire code; it fixes the status ([`ErrorCode::status`]).
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
    /// For a server failure: what failed, for the log only (never sent).
    pub cause: Option<String>,
}

/// What a failed response carries for the log (a response extension, never sent).
#[derive(Debug, Clone)]
pub struct FailureCause(pub String);

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            cause: None,
        }
    }

    /// `malformed_request`.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedRequest, message)
    }

    /// `unauthorized`, with the one message for every refused credential.
    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, service::keys::UNAUTHORIZED)
    }

    /// `internal`, with `cause` kept for the log.
    pub fn internal(cause: impl Into<String>) -> Self {
        ApiError {
            cause: Some(cause.into()),
            ..Self::new(ErrorCode::Internal, "the server failed; see its log")
        }
    }
}

impl From<service::Error> for ApiError {
    fn from(err: service::Error) -> Self {
        use service::Error as E;
        let code = match &err {
            E::Invalid(_) => ErrorCode::MalformedRequest,
            E::InvalidContext(_) => ErrorCode::InvalidContext,
            E::Unauthorized(_) => ErrorCode::Unauthorized,
            E::Forbidden(_) => ErrorCode::Forbidden,
            E::NotFound(_) => ErrorCode::NotFound,
            E::UnknownUser => ErrorCode::UnknownUser,
            E::NoDevice => ErrorCode::NoDevice,
            E::WrongState(_) | E::Conflict(_) => ErrorCode::WrongState,
            E::Expired => ErrorCode::Expired,
            E::Limited(refusal) => refusal.code(),
            E::Enrollment(refusal) => refusal.code(),
            E::UnknownEnrollment => ErrorCode::UnknownEnrollment,
            E::EnrollmentUsed => ErrorCode::EnrollmentUsed,
            E::EnrollmentExpired => ErrorCode::EnrollmentExpired,
            E::UnknownDevice => ErrorCode::UnknownDevice,
            E::DeviceRevoked => ErrorCode::DeviceRevoked,
            E::StaleTimestamp(_) => ErrorCode::StaleTimestamp,
            E::BadSignature(_) => ErrorCode::BadSignature,
            E::ReplayedNonce => ErrorCode::ReplayedNonce,
            E::StorageFull => ErrorCode::StorageFull,
            E::Store(_) | E::Internal(_) => return ApiError::internal(err.to_string()),
        };
        ApiError::new(code, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: self.code,
            message: self.message,
        };
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(FailureCause(cause));
        }
        response
    }
}

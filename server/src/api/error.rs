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

/// Marks a server-error response that is an answer its handler logged already (`/healthz`'s
/// "not ready"): the request did not fail, and the log should not say it did (a response
/// extension, never sent).
#[derive(Debug, Clone, Copy)]
pub struct LoggedAnswer;

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

impl From<crate::hashing::HashingError> for ApiError {
    fn from(e: crate::hashing::HashingError) -> Self {
        service::Error::from(e).into()
    }
}

/// What a caller is told while the database cannot be reached (issue 13).
pub const STORE_UNAVAILABLE: &str =
    "the server cannot reach its database: try another server, or again shortly";

impl ApiError {
    /// `store_unavailable` (503), with `cause` kept for the log: the database could not be
    /// reached, so no answer about the request can be given. (A write whose COMMIT was cut
    /// off may still have been kept: retrying then meets its result, e.g. `wrong_state`.)
    pub fn store_unavailable(cause: impl Into<String>) -> Self {
        ApiError {
            cause: Some(cause.into()),
            ..Self::new(ErrorCode::StoreUnavailable, STORE_UNAVAILABLE)
        }
    }

    /// Whether this is [`ApiError::store_unavailable`] (a read worth retrying while waiting).
    pub fn is_store_unavailable(&self) -> bool {
        self.code == ErrorCode::StoreUnavailable
    }
}

impl crate::state::MayHaveCommitted for ApiError {
    /// `store_unavailable` or `internal`: the server failed, never a refusal of the request.
    fn may_have_committed(&self) -> bool {
        matches!(self.code, ErrorCode::StoreUnavailable | ErrorCode::Internal)
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
            E::PushOriginNotAllowed(_) => ErrorCode::PushOriginNotAllowed,
            E::TooManyChanges(_) => ErrorCode::RateLimited,
            E::BackupCodeInvalid => ErrorCode::BackupCodeInvalid,
            E::BackupCodesLocked => ErrorCode::UserLocked,
            E::Store(store) if store.is_unavailable() => {
                return ApiError::store_unavailable(err.to_string())
            }
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
        if status == StatusCode::UNAUTHORIZED {
            // Refused before its body was read: the server closes such a connection after the
            // answer, and says so, so that no client sends its next request into a closing
            // connection (an unauthenticated caller holds no connection either; HTTP/1.1 only
            // is served).
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(FailureCause(cause));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn issue10_item1_domain_errors_convert_once_to_code_and_status() {
        use service::Error as E;
        let cases = [
            (E::Invalid("x".into()), ErrorCode::MalformedRequest, 400),
            (E::Unauthorized("x".into()), ErrorCode::Unauthorized, 401),
            (E::Forbidden("x".into()), ErrorCode::Forbidden, 403),
            (E::NotFound("challenge"), ErrorCode::NotFound, 404),
            (E::UnknownUser, ErrorCode::UnknownUser, 404),
            (
                E::WrongState(pushauth_proto::ChallengeState::Approved),
                ErrorCode::WrongState,
                409,
            ),
            (E::Expired, ErrorCode::Expired, 410),
            (E::EnrollmentExpired, ErrorCode::EnrollmentExpired, 410),
            (
                E::Limited(crate::limits::Refusal::UserLocked),
                ErrorCode::UserLocked,
                429,
            ),
            (
                E::Enrollment(crate::enrollment::Refusal::DevicesRevoked),
                ErrorCode::BootstrapNotAllowed,
                403,
            ),
            (E::StorageFull, ErrorCode::StorageFull, 507),
        ];
        for (err, code, status) in cases {
            let text = err.to_string();
            let api = ApiError::from(err);
            assert_eq!((api.code, api.code.status()), (code, status), "{text}");
            assert_eq!(api.message, text);
            assert_eq!(api.cause, None);
        }
        assert_eq!(
            ApiError::from(E::WrongState(pushauth_proto::ChallengeState::Denied)).message,
            "the challenge is already denied"
        );
        // A server failure says nothing about itself to the caller; the cause rides along to
        // the logging middleware only.
        let secret_path = "/var/lib/pushauthd/pushauthd.sqlite3";
        let api = ApiError::from(E::Store(StoreError::Corrupt(secret_path.into())));
        assert_eq!(api.code, ErrorCode::Internal);
        assert!(!api.message.contains(secret_path));
        let response = api.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response
            .extensions()
            .get::<FailureCause>()
            .map(|c| c.0.clone());
        assert!(cause.is_some_and(|c| c.contains(secret_path)));
    }

    #[test]
    fn issue13_an_unreachable_database_is_503_store_unavailable_and_nothing_else_is() {
        use crate::store::{DbErrorKind, StoreError};
        let down = StoreError::db(
            DbErrorKind::Unavailable,
            "connection refused (127.0.0.1:5432)",
        );
        let api = ApiError::from(service::Error::Store(down));
        assert_eq!(
            (api.code, api.code.status()),
            (ErrorCode::StoreUnavailable, 503)
        );
        assert_eq!(api.message, STORE_UNAVAILABLE);
        assert!(api.is_store_unavailable());
        // The backend's text goes to the log only.
        assert!(api.cause.as_deref().is_some_and(|c| c.contains("5432")));
        assert!(!api.message.contains("5432"));
        for kind in [
            DbErrorKind::Busy,
            DbErrorKind::Constraint,
            DbErrorKind::InvalidData,
            DbErrorKind::Other,
        ] {
            let api = ApiError::from(service::Error::Store(StoreError::db(kind, "x")));
            assert_eq!(api.code, ErrorCode::Internal, "{kind:?}");
        }
        // Refused credentials: as unusable as a database that is down (a 503, never a 500).
        let denied = StoreError::db(DbErrorKind::Denied, "password authentication failed");
        let api = ApiError::from(service::Error::Store(denied));
        assert_eq!(api.code, ErrorCode::StoreUnavailable);
        let api = ApiError::from(service::Error::Store(StoreError::TooNew(99)));
        assert_eq!(api.code, ErrorCode::Internal);
    }

    /// A 401 is sent before the request's body is read, after which the server closes the
    /// connection: the answer must say so, or a client pooling connections sends its next
    /// request into the closing one ("Unexpected EOF", seen 5 times in 16 runs of
    /// `issue12_values_only_for_the_relying_partys_own_approved_challenge` on PostgreSQL).
    #[test]
    fn a_refused_caller_is_told_the_connection_closes() {
        use service::Error as E;
        let refused = ApiError::from(E::Unauthorized("no key".into())).into_response();
        assert_eq!(refused.headers()[header::CONNECTION], "close");
        let other = ApiError::from(E::NotFound("challenge")).into_response();
        assert!(other.headers().get(header::CONNECTION).is_none());
    }
}

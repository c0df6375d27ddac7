//! The one mapping from failures to HTTP error responses: `{"error": "<stable_code>",
//! "message": "…"}` with a fitting status, as pushauthd does (DESIGN.md, "The HTTP API").
//!
//! [`ErrorCode`] is the closed set of codes the sidecar answers with; the table below fixes each
//! code's wire spelling and status in one place. [`ApiError`] is a code with its message for
//! people; it is built only through [`ApiError::new`] (or the named constructors), so its status
//! is always the code's.
//!
//! Converting is mapping only: nothing here logs. A failure's detail for the operator (what
//! pushauthd said, why it could not be reached) rides along as an [`ErrorNote`] on the response,
//! and the API's request middleware logs it once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pushauth_client::ClientError;
use pushauth_proto::names::NameError;
use pushauth_proto::wire::ErrorCode as UpstreamCode;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Declares [`ErrorCode`] from one table: variant, wire spelling, HTTP status.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = ($wire:literal, $status:literal), )*) => {
        /// A stable error code of the shim API. The serde spelling is the wire spelling (the
        /// `error` field of an error body); [`ErrorCode::status`] is the status it is sent with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
        }

        impl ErrorCode {
            /// Every code, in table order (the wire fixture lists each one).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The HTTP status this code is answered with.
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$name => $status,)* }
            }

            /// The wire spelling (`malformed_request`, …).
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => $wire,)* }
            }
        }
    };
}

error_codes! {
    /// A body, path or query parameter the shim API does not take.
    MalformedRequest = ("malformed_request", 400),
    /// The login context is too large or holds bad keys or characters.
    InvalidContext = ("invalid_context", 400),
    /// Missing or wrong shared secret (or, on the CIBA channel, not a Keycloak CIBA token).
    Unauthorized = ("unauthorized", 401),
    /// The sidecar's relying-party key may not act for this user (pushauthd's refusal).
    Forbidden = ("forbidden", 403),
    /// The device was revoked (pushauthd's refusal).
    DeviceRevoked = ("device_revoked", 403),
    /// The realm has no `[realms.<name>]` rule: push logins there are refused.
    RealmNotConfigured = ("realm_not_configured", 403),
    /// A user with no device may not enroll one here without an administrator.
    BootstrapNotAllowed = ("bootstrap_not_allowed", 403),
    /// pushauthd wants an approval by an existing device before a new enrollment.
    ApprovalRequired = ("approval_required", 403),
    /// pushauthd does not count the approval presented for an enrollment.
    ApprovalInvalid = ("approval_invalid", 403),
    /// The backup code is wrong, used, or the user has none (one code for all three, so a
    /// refusal never tells whether the user has codes).
    BackupCodeInvalid = ("backup_code_invalid", 403),
    /// No such route, login or enrollment.
    NotFound = ("not_found", 404),
    /// pushauthd does not know the user: enroll a device first.
    UnknownUser = ("unknown_user", 404),
    /// The user has no enrolled push device: enroll one first.
    NoDevice = ("no_device", 404),
    /// The user has no such active device.
    UnknownDevice = ("unknown_device", 404),
    /// The login (or pushauthd's challenge) has already ended.
    WrongState = ("wrong_state", 409),
    /// The enrollment link was already used (pushauthd's refusal).
    EnrollmentUsed = ("enrollment_used", 409),
    /// The approval was already used for an enrollment (pushauthd's refusal).
    ApprovalUsed = ("approval_used", 409),
    /// The body is larger than 64 KiB.
    PayloadTooLarge = ("payload_too_large", 413),
    /// The sidecar holds its maximum of pending logins or enrollments.
    TooManyPending = ("too_many_pending", 429),
    /// The user already has pushauthd's maximum of open challenges.
    TooManyOpenChallenges = ("too_many_open_challenges", 429),
    /// Too many new challenges for the user (pushauthd's rate limit).
    RateLimited = ("rate_limited", 429),
    /// A recent "this was not me" report locks pushes to the user.
    UserLocked = ("user_locked", 429),
    /// The sidecar failed; its log says why.
    Internal = ("internal", 500),
    /// pushauthd (or Keycloak, for a CIBA callback) cannot be reached.
    UpstreamUnreachable = ("upstream_unreachable", 502),
    /// pushauthd refused the sidecar's API key (or Keycloak refused a CIBA callback).
    UpstreamRefused = ("upstream_refused", 502),
    /// Any other pushauthd failure: fail closed.
    UpstreamError = ("upstream_error", 502),
    /// pushauthd did not answer within `call_timeout_secs`.
    UpstreamTimeout = ("upstream_timeout", 504),
}

impl ErrorCode {
    /// The sidecar code a pushauthd refusal is passed on as, for the refusals the shim must tell
    /// apart (a refusal is not an outage); `None` for everything else (then `upstream_error`).
    /// Exhaustive, so a new pushauthd code needs a decision here.
    pub const fn from_upstream(code: UpstreamCode) -> Option<ErrorCode> {
        use UpstreamCode as U;
        match code {
            U::InvalidContext => Some(ErrorCode::InvalidContext),
            U::Forbidden => Some(ErrorCode::Forbidden),
            U::DeviceRevoked => Some(ErrorCode::DeviceRevoked),
            U::BootstrapNotAllowed => Some(ErrorCode::BootstrapNotAllowed),
            U::ApprovalRequired => Some(ErrorCode::ApprovalRequired),
            U::ApprovalInvalid => Some(ErrorCode::ApprovalInvalid),
            U::WrongState => Some(ErrorCode::WrongState),
            U::EnrollmentUsed => Some(ErrorCode::EnrollmentUsed),
            U::ApprovalUsed => Some(ErrorCode::ApprovalUsed),
            U::TooManyOpenChallenges => Some(ErrorCode::TooManyOpenChallenges),
            U::RateLimited => Some(ErrorCode::RateLimited),
            U::UserLocked => Some(ErrorCode::UserLocked),
            U::UnknownUser => Some(ErrorCode::UnknownUser),
            U::NoDevice => Some(ErrorCode::NoDevice),
            U::BackupCodeInvalid => Some(ErrorCode::BackupCodeInvalid),
            U::MalformedRequest
            | U::Unauthorized
            | U::BadSignature
            | U::StaleTimestamp
            | U::ReplayedNonce
            | U::UnknownDevice
            | U::NotFound
            | U::MethodNotAllowed
            | U::UnknownEnrollment
            | U::Expired
            | U::EnrollmentExpired
            | U::PayloadTooLarge
            | U::Internal
            | U::StorageFull
            // Every server's database unreachable (the client already tried the others):
            // an outage, passed on as upstream_error like any other pushauthd failure.
            | U::StoreUnavailable
            | U::PushOriginNotAllowed => None,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and callers compare a code with its wire spelling.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Every error answer (listed with the other bodies in [`crate::wire`]): `{"error": "<stable_code>", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code; the status is `error.status()`.
    pub error: ErrorCode,
    /// What happened and what to do, for people.
    pub message: String,
}

/// An API failure: a stable code, its status, and a message for people.
///
/// The fields are public for reading; build one with [`ApiError::new`], which takes the status
/// from the code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status: always `code.status()`.
    pub status: u16,
    /// The stable code (the body's `error`).
    pub code: ErrorCode,
    /// What happened and what to do, for people (the body's `message`).
    pub message: String,
    /// For the log only, never sent: the underlying failure, where there is one to record.
    detail: Option<String>,
}

/// The log's view of an error answer, attached to the response (never sent): the middleware
/// logs it once, at warn level, or error for a 5xx other than "pushauthd unreachable".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorNote {
    /// The answer's code.
    pub code: ErrorCode,
    /// The underlying failure.
    pub detail: String,
}

impl ApiError {
    /// A failure with `code`'s status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// The same error with `detail` for the log (see [`ErrorNote`]).
    pub fn noted(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// What the log should record about this error, if anything.
    pub fn note(&self) -> Option<ErrorNote> {
        self.detail.as_ref().map(|detail| ErrorNote {
            code: self.code,
            detail: detail.clone(),
        })
    }

    /// 400 `malformed_request`.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedRequest, message)
    }

    /// 400 `invalid_context`.
    pub fn invalid_context(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidContext, message)
    }

    /// 401 `unauthorized`: no or a wrong shared secret.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "missing or wrong shared secret in the Authorization header (Bearer <secret>)",
        )
    }

    /// 404 `not_found` for `what` (`route`, `login`, `enrollment`).
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 500 `internal`: the details are in the log, never in the answer.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "the sidecar failed; see its log")
    }

    /// pushauthd did not answer within the sidecar's call deadline (`call_timeout_secs`).
    pub fn upstream_timeout() -> Self {
        Self::new(
            ErrorCode::UpstreamTimeout,
            "the pushauth server did not answer in time",
        )
    }

    /// The error body as sent.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code,
            message: self.message.clone(),
        }
    }
}

/// A name or id the shared rules refuse is a malformed request; the message is the rule's.
impl From<NameError> for ApiError {
    fn from(err: NameError) -> Self {
        ApiError::malformed(err.to_string())
    }
}

/// How a failed call to pushauthd looks to the shim. The shim must be able to tell "this user
/// has no device" (offer enrollment) from "the push service is down" (fail closed).
impl From<ClientError> for ApiError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::UnknownUser => ApiError::new(
                ErrorCode::UnknownUser,
                "pushauth does not know this user; enroll a device first",
            ),
            ClientError::NoDevice => ApiError::new(
                ErrorCode::NoDevice,
                "the user has no enrolled push device; enroll one first",
            ),
            ClientError::RateLimited { code, message } => ApiError::new(
                ErrorCode::from_upstream(code)
                    .filter(|c| c.status() == 429)
                    .unwrap_or(ErrorCode::RateLimited),
                message,
            ),
            ClientError::Unreachable(msg) => ApiError::new(
                ErrorCode::UpstreamUnreachable,
                "the pushauth server cannot be reached",
            )
            .noted(format!("pushauthd unreachable: {msg}")),
            ClientError::Unauthorized => ApiError::new(
                ErrorCode::UpstreamRefused,
                "the pushauth server refused the sidecar's API key; check api_key_file",
            )
            .noted("pushauthd refused the sidecar's API key"),
            // pushauthd refused this relying party the call (user out of its scope, no enroll or
            // bootstrap right, an approval that does not count, a challenge already ended, a bad
            // context): the shim shows a refusal, not an outage. Only a status that fits the code.
            ClientError::Rejected {
                status: status @ (400 | 403 | 409),
                code: Some(upstream),
                message,
            } if ErrorCode::from_upstream(upstream).is_some_and(|c| c.status() == status) => {
                let code = ErrorCode::from_upstream(upstream).unwrap_or(ErrorCode::UpstreamError);
                let error = ApiError::new(code, message);
                if matches!(code, ErrorCode::WrongState | ErrorCode::InvalidContext) {
                    error
                } else {
                    let detail = format!("pushauthd refused the call: {}", error.message);
                    error.noted(detail)
                }
            }
            other => ApiError::new(ErrorCode::UpstreamError, other.to_string())
                .noted(format!("pushauthd call failed: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.body())).into_response();
        if let Some(note) = self.note() {
            response.extensions_mut().insert(note);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_item5_codes_are_spelt_and_statused_once() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.status()), "{code}");
            assert_eq!(ApiError::new(*code, "m").status, code.status());
        }
    }

    #[test]
    fn issue10_item5_passed_on_codes_keep_pushauthds_status() {
        use UpstreamCode as U;
        for upstream in [
            U::MalformedRequest,
            U::InvalidContext,
            U::Unauthorized,
            U::BadSignature,
            U::StaleTimestamp,
            U::ReplayedNonce,
            U::UnknownDevice,
            U::DeviceRevoked,
            U::Forbidden,
            U::NotFound,
            U::MethodNotAllowed,
            U::UnknownUser,
            U::NoDevice,
            U::UnknownEnrollment,
            U::WrongState,
            U::EnrollmentUsed,
            U::Expired,
            U::EnrollmentExpired,
            U::PayloadTooLarge,
            U::TooManyOpenChallenges,
            U::RateLimited,
            U::UserLocked,
            U::ApprovalRequired,
            U::ApprovalInvalid,
            U::ApprovalUsed,
            U::BootstrapNotAllowed,
            U::BackupCodeInvalid,
            U::Internal,
            U::StorageFull,
        ] {
            if let Some(code) = ErrorCode::from_upstream(upstream) {
                assert_eq!(code.status(), upstream.status(), "{code}");
                assert_eq!(code.as_str(), upstream.as_str());
            }
        }
    }

    #[test]
    fn issue10_item5_upstream_refusals_keep_their_meaning() {
        let rejected = |status, code| {
            ApiError::from(ClientError::Rejected {
                status,
                code: Some(code),
                message: "m".into(),
            })
        };
        let e = rejected(409, UpstreamCode::WrongState);
        assert_eq!((e.status, e.code), (409, ErrorCode::WrongState));
        let e = rejected(403, UpstreamCode::ApprovalInvalid);
        assert_eq!((e.status, e.code), (403, ErrorCode::ApprovalInvalid));
        let e = rejected(400, UpstreamCode::InvalidContext);
        assert_eq!((e.status, e.code), (400, ErrorCode::InvalidContext));
        // Anything else fails closed as an upstream error, never as a pass.
        for (status, code) in [
            (400, UpstreamCode::MalformedRequest),
            (404, UpstreamCode::UnknownEnrollment),
            (410, UpstreamCode::Expired),
            (403, UpstreamCode::WrongState),
        ] {
            let e = rejected(status, code);
            assert_eq!((e.status, e.code), (502, ErrorCode::UpstreamError));
        }
        let e = ApiError::from(ClientError::RateLimited {
            code: UpstreamCode::UserLocked,
            message: "m".into(),
        });
        assert_eq!((e.status, e.code), (429, ErrorCode::UserLocked));
    }

    #[test]
    fn issue10_item5_failures_carry_their_detail_to_the_log_not_the_wire() {
        let e = ApiError::from(ClientError::Unreachable("connection refused".into()));
        assert_eq!((e.status, e.code), (502, ErrorCode::UpstreamUnreachable));
        assert!(!e.message.contains("connection refused"), "{}", e.message);
        let note = e.note().unwrap();
        assert!(note.detail.contains("connection refused"), "{note:?}");
        let response = e.into_response();
        assert_eq!(response.extensions().get::<ErrorNote>(), Some(&note));
        // Plain refusals need no note.
        assert_eq!(ApiError::unauthorized().note(), None);
    }
}

//! What can go wrong on the device side.

use pushauth_proto::wire::ErrorCode;
use thiserror::Error;

/// Why a device operation failed.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// The enrollment link is not `<server>/enroll?token=…`.
    #[error("bad enrollment link: {0}")]
    BadLink(String),
    /// No HTTP answer: connection refused or reset, DNS, TLS, timeout.
    #[error("cannot reach the pushauth server: {0}")]
    Unreachable(String),
    /// The server answered with an error.
    #[error("server refused ({status} {}): {message}", code.map_or("unknown_error", |c| c.as_str()))]
    Server {
        /// The HTTP status.
        status: u16,
        /// The stable error code, when the body carried a known one.
        code: Option<ErrorCode>,
        /// The server's message (cut, for a body that was not an error JSON).
        message: String,
    },
    /// The server's answer is malformed or too large.
    #[error("bad answer from the pushauth server: {0}")]
    BadAnswer(String),
    /// A challenge that must not be signed (its context does not match its digest, it is for
    /// another user…).
    #[error("refusing to answer challenge: {0}")]
    BadChallenge(String),
    /// Reading, writing or parsing a profile, or a bad local setting.
    #[error("{0}")]
    Profile(String),
}

impl DeviceError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            DeviceError::Server { code, .. } => *code,
            _ => None,
        }
    }
}

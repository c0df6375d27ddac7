//! The errors a relying party must be able to tell apart (DESIGN.md, "Failure policy").
//!
//! Every variant is a refusal for the caller; they differ so that config can name which failures
//! are tolerated and so that logs say what happened. No message ever holds the API key.

use pushauth_proto::wire::ErrorCode;
use thiserror::Error;

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No server could be reached: connection refused, connect timeout, DNS failure. Nothing
    /// was proven about any server; this is the only error a "let in when the server is down"
    /// policy may tolerate.
    #[error("pushauth server unreachable: {0}")]
    Unreachable(String),
    /// A server was reached but failed: an HTTP 5xx (from it or a gateway in front of it), no
    /// answer in time after connecting, a connection broken mid-exchange, a malformed HTTP
    /// answer. Always a refusal, whatever the failure policy: an answer that is not an approval
    /// must never count as "no server" (issue 9 item 6).
    #[error("pushauth server failed: {0}")]
    ServerError(String),
    /// The TLS handshake failed: an untrusted, expired or wrongly named certificate, or a
    /// handshake error. Possibly a man in the middle: always a refusal.
    #[error("TLS with the pushauth server failed: {0}")]
    TlsFailure(String),
    /// The server does not know the user.
    #[error("pushauth server does not know this user")]
    UnknownUser,
    /// The user has no (matching) enrolled device.
    #[error("the user has no enrolled pushauth device")]
    NoDevice,
    /// One of the three 429s: too many open challenges, rate limited, or locked after a report.
    #[error("pushauth server refused: {} ({message})", code.as_str())]
    RateLimited {
        /// `too_many_open_challenges`, `rate_limited` or `user_locked`.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server refused the API key.
    #[error("pushauth server refused the API key (401)")]
    Unauthorized,
    /// Any other API error.
    #[error("pushauth server refused with {status}: {} ({message})", code.map_or("unknown_error", |c| c.as_str()))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The stable error code, when the body carried a known one.
        code: Option<ErrorCode>,
        /// The server's message (or a short printable excerpt of a body that was not JSON).
        message: String,
    },
    /// The server's answer is malformed, too large, or does not verify: treat as a refusal.
    #[error("untrustworthy answer from pushauth server: {0}")]
    BadAnswer(String),
    /// The client's own configuration is unusable (no servers, bad CA file, bad proxy, bad
    /// pinned-keys file, an API key that cannot be sent, a request that cannot be built…).
    #[error("pushauth client configuration: {0}")]
    Config(String),
}

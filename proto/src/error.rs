//! Errors from decoding and verifying protocol data.

use thiserror::Error;

/// What went wrong with a piece of protocol data.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    #[error("invalid base64url in {0}")]
    Base64(&'static str),
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("unsupported key algorithm {0:?}")]
    UnsupportedAlg(String),
    #[error("invalid public key")]
    BadPublicKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("malformed Authorization header: {0}")]
    BadAuthHeader(&'static str),
    #[error("unknown {kind} {value:?}")]
    UnknownValue { kind: &'static str, value: String },
    #[error("illegal transition from {from} to {to}")]
    IllegalTransition {
        from: crate::ChallengeState,
        to: crate::ChallengeState,
    },
    #[error("the system random source failed")]
    Random,
}

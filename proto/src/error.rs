//! Errors from decoding and verifying protocol data.

use thiserror::Error;

/// What went wrong with a piece of protocol data.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A field is not unpadded base64url (the field's name).
    #[error("invalid base64url in {0}")]
    Base64(&'static str),
    /// A decoded field has the wrong length.
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        /// The field's name.
        field: &'static str,
        /// Its required length in bytes.
        expected: usize,
        /// The length received, in bytes.
        got: usize,
    },
    /// A key algorithm other than `ed25519` and `es256`.
    #[error("unsupported key algorithm {0:?}")]
    UnsupportedAlg(String),
    /// Public key bytes that are not a valid point.
    #[error("invalid public key")]
    BadPublicKey,
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// An `Authorization: PushAuth` header that does not parse (what is wrong).
    #[error("malformed Authorization header: {0}")]
    BadAuthHeader(&'static str),
    /// A value outside a closed set (a state, decision or reason).
    #[error("unknown {kind} {value:?}")]
    UnknownValue {
        /// What kind of value (`state`, `decision`, `reason`, `alg`).
        kind: &'static str,
        /// The value received.
        value: String,
    },
    /// A state change the state machine does not allow.
    #[error("illegal transition from {from} to {to}")]
    IllegalTransition {
        /// The current state.
        from: crate::ChallengeState,
        /// The state asked for.
        to: crate::ChallengeState,
    },
    /// The operating system's random source failed.
    #[error("the system random source failed")]
    Random,
}

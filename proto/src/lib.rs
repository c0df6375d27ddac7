//! pushauth-proto: everything two pushauth parts must agree on, and nothing that does I/O.
//!
//! - [`challenge`]: challenge states, their legal transitions, decisions and number matching;
//! - [`signing`]: the length-framed bytes every signature covers (response, device request,
//!   enrollment proof);
//! - [`context`]: the login context and its digest;
//! - [`keys`]: device key algorithms, signing and verification;
//! - [`auth`]: the `Authorization: PushAuth …` header devices send;
//! - [`wire`]: the JSON bodies of the v1 HTTP API ([`backup`]: those of backup codes);
//! - [`b64`]: unpadded base64url, the only binary encoding on the wire;
//! - [`text`]: which characters may be shown to a person, and safe terminal output;
//! - [`names`]: the one rule for user names, device names and ids.
//!
//! `test-vectors.json` beside this crate is the contract for other implementations.

pub mod auth;
pub mod b64;
pub mod backup;
pub mod challenge;
pub mod context;
pub mod error;
pub mod keys;
pub mod names;
pub mod random;
pub mod signing;
pub mod text;
pub mod wire;

pub use challenge::{ChallengeState, Decision, Reason};
pub use context::{context_digest, Context};
pub use error::ProtoError;
pub use keys::{Alg, DevicePublicKey, DeviceSigningKey};

/// Largest request or response body any pushauth part accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest long-poll a server honours, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;

/// How far a device request's timestamp may be from the server's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 120;

//! pushauth-device: the device side of pushauth as a library and a CLI. It enrolls from a link
//! (making an Ed25519 or ES256 key and proving possession), lists the device's pending challenges,
//! acknowledges them and answers approve/deny/report with a signed response; every request is
//! signed with the device key; it asks for new backup codes ([`backup`]). It is also the test double for a phone, and the benchmark's
//! simulated device ([`DeviceClient::with_agent`] touches no disk).

pub mod backup;
mod client;
mod error;
pub mod link;
pub mod profile;
pub mod push;
mod transport;

pub use client::DeviceClient;
pub use error::DeviceError;
pub use profile::{Profile, DEFAULT_PROFILE};
pub use pushauth_proto::wire::{ChallengeStatus, DeviceNotice, PendingChallenge};
pub use pushauth_proto::{Alg, Decision};
pub use transport::build_agent;

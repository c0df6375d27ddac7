//! The values of the grace-window operations of the [`Store`](super::Store) (issue 12): what a
//! relying party's request looks for, and the login a window let in.

use crate::clock::Millis;
use crate::store::ChallengeRecord;

/// The window a new challenge asks for: an approval of the same relying party, user and grace
/// key ([`pushauth_proto::grace::grace_key`]) answered at or after `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceFind {
    /// The grace key of the new login.
    pub key: [u8; 32],
    /// Now less the `grace_secs` the relying party asks for now.
    pub since: Millis,
}

/// A login a grace window let in: stored as an `approved` challenge that no device was asked
/// about, naming the approval it rode on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceLogin {
    /// The new challenge, already `approved` (no device, no code, no signature).
    pub challenge: ChallengeRecord,
    /// The challenge a device approved, which opened the window.
    pub of: String,
    /// The device that approved it.
    pub device_id: String,
    /// When that approval was stored.
    pub approved_at: Millis,
}

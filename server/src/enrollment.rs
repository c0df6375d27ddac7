//! Why a relying party may not have an enrollment link (issue 9 item 1): the refusals and the
//! bootstrap rule checked again when a link is redeemed. The whole rule set, read over the
//! facts the store gathers, is [`crate::service::enrollments::decide`]; the re-check at
//! redemption is [`crate::service::enrollments::link_refusal`].
//!
//! - the relying party needs the `enroll` right and the user in its scope (`forbidden`);
//! - a user with an active device gets another only with an `approval`: a challenge this relying
//!   party created for this user with context `action = "add_device"`, approved on one of the
//!   user's devices (still active) within [`APPROVAL_MAX_AGE_MS`], never used before (`approval_required`,
//!   `approval_invalid`, `approval_used`);
//! - a user without an active device (or unknown) only where the relying party may bootstrap
//!   (`bootstrap_not_allowed`).
//!
//! The administrator's own paths (`POST /v1/admin/enrollments`, `pushauthd enroll`) are the
//! other approval and skip this.

use pushauth_proto::wire::ErrorCode;

use crate::clock::Millis;

/// How long after its answer an approval can be used: 10 minutes.
pub const APPROVAL_MAX_AGE_MS: Millis = 10 * 60 * 1000;

/// Why a relying party's enrollment request was refused (after its rights were checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The user has an active device and no approval was given.
    #[error("the user already has an active device: approve adding one on it first (an add_device challenge) and pass its id as approval")]
    ApprovalRequired,
    /// The approval is not a fresh, approved `add_device` challenge of this relying party for this user.
    #[error("the approval is not an approved add_device challenge of this relying party for this user from the last 10 minutes")]
    ApprovalInvalid,
    /// The approval served an enrollment before.
    #[error("this approval was already used for an enrollment")]
    ApprovalUsed,
    /// The user has no active device and the relying party may not enroll a first one.
    #[error("the user has no active device and this relying party may not enroll a first one; ask the administrator")]
    BootstrapNotAllowed,
    /// At redemption: the issuing relying party was revoked or lost the right.
    #[error("the relying party that issued this link was revoked or may no longer enroll this user; ask for a new link")]
    RelyingPartyRevoked,
    /// The user had devices and all were revoked: a relying party cannot tell the owner who lost
    /// a phone from someone who just removed it, so only the administrator re-enrolls.
    #[error("every device of this user was revoked; only the administrator can enroll a new one (pushauthd enroll)")]
    DevicesRevoked,
}

impl Refusal {
    /// The stable wire code.
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::ApprovalRequired => ErrorCode::ApprovalRequired,
            Refusal::ApprovalInvalid => ErrorCode::ApprovalInvalid,
            Refusal::ApprovalUsed => ErrorCode::ApprovalUsed,
            Refusal::BootstrapNotAllowed => ErrorCode::BootstrapNotAllowed,
            Refusal::RelyingPartyRevoked => ErrorCode::Forbidden,
            Refusal::DevicesRevoked => ErrorCode::BootstrapNotAllowed,
        }
    }
}

/// Whether a relying party may enroll a device for a user with no active device, given how many
/// devices were ever bound to the user (revoked ones included). Only a user who never had one
/// bootstraps: otherwise whoever can remove the owner's device (the account console's "remove",
/// issue 9 item 3) could then enroll their own without the owner's approval.
pub fn bootstrap_refusal(bound_devices: usize, may_bootstrap: bool) -> Option<Refusal> {
    if !may_bootstrap {
        Some(Refusal::BootstrapNotAllowed)
    } else if bound_devices > 0 {
        Some(Refusal::DevicesRevoked)
    } else {
        None
    }
}

//! Enrollment links asked for by a relying party (issue 9 item 1): the one place that decides
//! whether a relying party may have a link for a user.
//!
//! - the relying party needs the `enroll` right and the user in its scope (`forbidden`);
//! - a user with an active device gets another only with an `approval`: a challenge this relying
//!   party created for this user with context `action = "add_device"`, approved on one of the
//!   user's devices (still active) within [`APPROVAL_MAX_AGE_MS`], never used before (`approval_required`,
//!   `approval_invalid`, `approval_used`);
//! - a user without an active device (or unknown) only where the relying party may bootstrap
//!   (`bootstrap_not_allowed`).
//!
//! The facts are read and the approval used up in the same store transaction that records the
//! link ([`crate::store::Store::create_rp_enrollment`]). The administrator's own paths
//! (`POST /v1/admin/enrollments`, `pushauthd enroll`) are the other approval and skip this.

use pushauth_proto::wire::{CreateRpEnrollment, EnrollmentCreated, ErrorCode, ACTION_ADD_DEVICE};
use pushauth_proto::{random, ChallengeState};
use sha2::{Digest, Sha256};

use crate::api::admin::{enrollment_url, MAX_ENROLLMENT_TTL_SECS, MAX_USER};
use crate::api::printable;
use crate::app::SharedState;
use crate::auth::RpCaller;
use crate::clock::{self, Millis};
use crate::error::ApiError;
use crate::store::{EnrollFacts, NewRpEnrollment};

/// How long after its answer an approval can be used: 10 minutes.
pub const APPROVAL_MAX_AGE_MS: Millis = 10 * 60 * 1000;

/// Why a relying party's enrollment request was refused (after its rights were checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the user already has an active device: approve adding one on it first (an add_device challenge) and pass its id as approval")]
    ApprovalRequired,
    #[error("the approval is not an approved add_device challenge of this relying party for this user from the last 10 minutes")]
    ApprovalInvalid,
    #[error("this approval was already used for an enrollment")]
    ApprovalUsed,
    #[error("the user has no active device and this relying party may not enroll a first one; ask the administrator")]
    BootstrapNotAllowed,
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

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::new(r.code(), r.to_string())
    }
}

/// The rules over what the store read (pure, so they are tested without a store).
pub fn decide(
    rp_id: &str,
    may_bootstrap: bool,
    user: &str,
    approval: Option<&str>,
    facts: &EnrollFacts,
    now: Millis,
) -> Result<(), Refusal> {
    if let Some(id) = approval {
        let a = facts.approval.as_ref().ok_or(Refusal::ApprovalInvalid)?;
        let c = &a.challenge;
        let ours = c.id == id && c.rp_id == rp_id && c.user == user;
        let kind = c.context.get("action").map(String::as_str) == Some(ACTION_ADD_DEVICE);
        if !ours || !kind {
            return Err(Refusal::ApprovalInvalid);
        }
        if a.used {
            return Err(Refusal::ApprovalUsed);
        }
        let fresh = now.saturating_sub(a.decided_at) <= APPROVAL_MAX_AGE_MS;
        if c.state != ChallengeState::Approved || c.code.is_none() || !fresh || !a.approver_active {
            return Err(Refusal::ApprovalInvalid);
        }
    }
    if facts.active_devices == 0 {
        return match bootstrap_refusal(facts.bound_devices, may_bootstrap) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        };
    }
    if approval.is_none() {
        return Err(Refusal::ApprovalRequired);
    }
    Ok(())
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

/// `POST /v1/enrollments`: checks the caller's rights and the rules above, then records a
/// single-use link for `req.user`.
pub async fn create_for_rp(
    state: &SharedState,
    rp: &RpCaller,
    req: CreateRpEnrollment,
) -> Result<EnrollmentCreated, ApiError> {
    if !printable(&req.user, MAX_USER) {
        return Err(ApiError::malformed(format!(
            "user must be 1 to {MAX_USER} printable characters"
        )));
    }
    rp.require_enroll(&req.user)?;
    let ttl = req.ttl_secs.unwrap_or(state.config.enrollment_ttl_secs);
    if ttl == 0 || ttl > MAX_ENROLLMENT_TTL_SECS {
        return Err(ApiError::malformed(format!(
            "ttl_secs must be 1 to {MAX_ENROLLMENT_TTL_SECS}"
        )));
    }
    // A relying party's link lives no longer than the server's enrollment_ttl_secs (minutes by
    // default): an owner's "yes, add a device now" must not stay usable for days. The answer's
    // expires_at says when it ends.
    let ttl = ttl.min(state.config.enrollment_ttl_secs.max(1));
    if let Some(a) = &req.approval {
        if a.is_empty() || a.len() > 128 {
            return Err(Refusal::ApprovalInvalid.into());
        }
    }
    let token = random::secret_token().map_err(|_| ApiError::internal())?;
    let now = clock::now_ms();
    let expires_at = clock::ceil_to_second(now + i64::try_from(ttl * 1000).unwrap_or(i64::MAX));
    let new = NewRpEnrollment {
        user: req.user,
        token_hash: Sha256::digest(token.as_bytes()).into(),
        rp_id: rp.rp_id.clone(),
        approval: req.approval,
        created_at: now,
        expires_at,
    };
    let rp_id = rp.rp_id.clone();
    let may_bootstrap = rp.bootstrap;
    let outcome = state
        .db(move |s| {
            s.create_rp_enrollment(&new, &|facts| {
                decide(
                    &rp_id,
                    may_bootstrap,
                    &new.user,
                    new.approval.as_deref(),
                    facts,
                    now,
                )
            })
        })
        .await?;
    if let Err(refusal) = outcome {
        tracing::info!(rp = %rp.rp_id, code = refusal.code().as_str(), "enrollment refused");
        return Err(refusal.into());
    }
    tracing::info!(rp = %rp.rp_id, "enrollment link issued to a relying party");
    Ok(EnrollmentCreated {
        url: enrollment_url(&state.base_url, &token),
        token,
        expires_at: clock::rfc3339(expires_at),
    })
}

#[cfg(test)]
mod tests {
    use pushauth_proto::Context;

    use super::*;
    use crate::store::{ApprovalFacts, ChallengeRecord};

    fn approved(rp: &str, user: &str, action: &str) -> ChallengeRecord {
        let mut context = Context::new();
        context.insert("action".into(), action.into());
        ChallengeRecord {
            id: "c1".into(),
            user: user.into(),
            rp_id: rp.into(),
            state: ChallengeState::Approved,
            context,
            context_digest: [0; 32],
            rp_nonce: vec![0; 32],
            code: Some("123456".into()),
            devices: vec!["d1".into()],
            created_at: 0,
            expires_at: 60_000,
            device_id: Some("d1".into()),
            decision: None,
            reason: None,
            typed_code: None,
            responded_at: None,
            signature: None,
        }
    }

    fn facts(
        devices: usize,
        c: Option<ChallengeRecord>,
        decided_at: Millis,
        used: bool,
    ) -> EnrollFacts {
        EnrollFacts {
            active_devices: devices,
            bound_devices: devices,
            approval: c.map(|challenge| ApprovalFacts {
                challenge,
                decided_at,
                used,
                approver_active: true,
            }),
        }
    }

    #[test]
    fn issue9_item1_the_rules_of_relying_party_enrollment() {
        let now = 1_000_000;
        let ok = approved("rp", "alice", ACTION_ADD_DEVICE);
        let d =
            |f: &EnrollFacts, a: Option<&str>, boot: bool| decide("rp", boot, "alice", a, f, now);
        assert_eq!(
            d(&facts(1, None, 0, false), None, true),
            Err(Refusal::ApprovalRequired)
        );
        assert_eq!(
            d(&facts(1, Some(ok.clone()), now, false), Some("c1"), false),
            Ok(())
        );
        assert_eq!(
            d(&facts(1, Some(ok.clone()), now, true), Some("c1"), false),
            Err(Refusal::ApprovalUsed)
        );
        assert_eq!(
            d(
                &facts(1, Some(ok.clone()), now - APPROVAL_MAX_AGE_MS - 1, false),
                Some("c1"),
                false
            ),
            Err(Refusal::ApprovalInvalid)
        );
        assert_eq!(
            d(&facts(1, None, 0, false), Some("c1"), false),
            Err(Refusal::ApprovalInvalid)
        );
        for bad in [
            approved("other", "alice", ACTION_ADD_DEVICE),
            approved("rp", "bob", ACTION_ADD_DEVICE),
            approved("rp", "alice", "login"),
            ChallengeRecord {
                state: ChallengeState::Denied,
                ..ok.clone()
            },
            ChallengeRecord {
                state: ChallengeState::Pending,
                ..ok.clone()
            },
            ChallengeRecord {
                code: None,
                ..ok.clone()
            },
        ] {
            assert_eq!(
                d(&facts(1, Some(bad.clone()), now, false), Some("c1"), false),
                Err(Refusal::ApprovalInvalid),
                "{bad:?}"
            );
        }
        // The approving device was revoked since: its approval no longer counts.
        let mut revoked = facts(1, Some(ok.clone()), now, false);
        if let Some(a) = revoked.approval.as_mut() {
            a.approver_active = false;
        }
        assert_eq!(
            d(&revoked, Some("c1"), false),
            Err(Refusal::ApprovalInvalid)
        );
        assert_eq!(
            d(&facts(0, None, 0, false), None, false),
            Err(Refusal::BootstrapNotAllowed)
        );
        assert_eq!(d(&facts(0, None, 0, false), None, true), Ok(()));
    }
}

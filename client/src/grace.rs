//! The grace window (issue 12) as a relying party sees it: a `201` whose challenge is already
//! `approved` because pushauthd found a window open. The client only checks that the answer is
//! well formed and was asked for; whether to believe it is the caller's to decide against its
//! own record of approvals it verified (pam_push's `grace` module), since the server's word
//! alone must never let anyone in.

use pushauth_proto::grace::MAX_GRACE_SECS;
use pushauth_proto::wire::ChallengeCreated;
use pushauth_proto::ChallengeState;

pub use pushauth_proto::wire::GraceGrant;

use crate::{ClientError, StartOptions};

/// Checks a `201` that carries `grace`: asked for (`opts.grace_secs` 1 to
/// [`MAX_GRACE_SECS`]), already `approved`, no devices and no code (nothing was pushed), and
/// `grace.of` an id. `Ok(false)` for an answer without `grace` (a push, checked as before).
pub(crate) fn check_created(
    created: &ChallengeCreated,
    opts: &StartOptions,
) -> Result<bool, ClientError> {
    let bad = |msg: &str| Err(ClientError::BadAnswer(msg.to_owned()));
    let Some(grace) = &created.grace else {
        if created.state != ChallengeState::Pending {
            return bad("a new challenge is not pending and names no grace window");
        }
        return Ok(false);
    };
    if !opts
        .grace_secs
        .is_some_and(|secs| (1..=MAX_GRACE_SECS).contains(&secs))
    {
        return bad("the server answered with a grace window that was not asked for");
    }
    if created.state != ChallengeState::Approved {
        return bad("a grace answer must be approved");
    }
    if !created.devices.is_empty() || created.code.is_some() {
        return bad("a grace answer pushed to a device or shows a code");
    }
    if pushauth_proto::names::check_id("challenge", &grace.of).is_err() {
        return bad("the grace window names no valid challenge");
    }
    Ok(true)
}

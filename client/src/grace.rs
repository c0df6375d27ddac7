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

#[cfg(test)]
mod tests {
    use super::*;

    fn created(state: ChallengeState, grace: Option<&str>) -> ChallengeCreated {
        ChallengeCreated {
            id: "chal-2".into(),
            user: "alice".into(),
            devices: Vec::new(),
            device_info: Vec::new(),
            code: None,
            expires_at: "2026-01-01T00:00:00Z".into(),
            state,
            grace: grace.map(|of| GraceGrant {
                of: of.into(),
                until: "2026-01-01T00:00:00Z".into(),
            }),
        }
    }

    fn asking(secs: Option<u64>) -> StartOptions {
        StartOptions {
            grace_secs: secs,
            ..StartOptions::default()
        }
    }

    #[test]
    fn issue12_a_grace_answer_must_be_asked_for_and_well_formed() {
        let ok = created(ChallengeState::Approved, Some("chal-1"));
        assert!(check_created(&ok, &asking(Some(60))).unwrap());
        // Not asked for (the RP pushes every time, sudo without sudo_grace): refused.
        assert!(check_created(&ok, &asking(None)).is_err());
        // Pending with grace, approved without grace, a device or a code with grace: refused.
        assert!(check_created(
            &created(ChallengeState::Pending, Some("chal-1")),
            &asking(Some(60))
        )
        .is_err());
        assert!(
            check_created(&created(ChallengeState::Approved, None), &asking(Some(60))).is_err()
        );
        let mut pushed = ok.clone();
        pushed.devices.push("dev".into());
        assert!(check_created(&pushed, &asking(Some(60))).is_err());
        let mut coded = ok.clone();
        coded.code = Some("123456".into());
        assert!(check_created(&coded, &asking(Some(60))).is_err());
        assert!(check_created(
            &created(ChallengeState::Approved, Some("../x")),
            &asking(Some(60))
        )
        .is_err());
        // A plain push is not a grace answer.
        assert!(
            !check_created(&created(ChallengeState::Pending, None), &asking(Some(60))).unwrap()
        );
    }
}

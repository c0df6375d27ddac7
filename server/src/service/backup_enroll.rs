//! An enrollment link approved by a backup code (issue 12): how a person who lost every device
//! enrolls a new one through a relying party (the Keycloak page). The code takes the place of
//! the `add_device` approval: it is used up in the unit that records the link, and the link
//! holds at redemption without a device to approve it (`approved_by` =
//! [`BACKUP_CODE_APPROVER`]).

use pushauth_proto::names::check_user;
use pushauth_proto::random;
use pushauth_proto::wire::CreateRpEnrollment;

use super::backup_codes::{consume, Attempt, Bounds, Checked, Used, BACKUP_CODE_APPROVER};
use super::enrollments::{Issued, MAX_ENROLLMENT_TTL_SECS};
use super::keys::{self, RpCaller};
use super::{expiry, no_randomness, Error, Result};
use crate::auth::hash_secret;
use crate::backup_code::Code;
use crate::clock::Millis;
use crate::store::{NewRpEnrollment, Store};

/// The checks before any slow work: the user name, the `enroll` right over the user, the
/// lifetime, `backup_code` without `approval`, and the code's form. Returns the attempt and
/// the link's lifetime (at most `enrollment_ttl_secs`).
///
/// # Errors
/// [`Error::Invalid`], [`Error::Forbidden`].
pub fn check(
    rp: &RpCaller,
    req: &CreateRpEnrollment,
    enrollment_ttl_secs: u64,
) -> Result<(Attempt, u64)> {
    check_user(&req.user)?;
    rp.require_enroll(&req.user)?;
    if req.approval.is_some() {
        return Err(Error::Invalid(
            "give approval or backup_code, not both".into(),
        ));
    }
    let ttl = req.ttl_secs.unwrap_or(enrollment_ttl_secs);
    if ttl == 0 || ttl > MAX_ENROLLMENT_TTL_SECS {
        return Err(Error::Invalid(format!(
            "ttl_secs must be 1 to {MAX_ENROLLMENT_TTL_SECS}"
        )));
    }
    let typed = req.backup_code.as_deref().unwrap_or("");
    let attempt = Attempt {
        user: req.user.clone(),
        code: Code::parse(typed)?,
        context: Default::default(),
        via: format!("rp:{}", rp.rp_id),
        purpose: "enrollment",
    };
    Ok((attempt, ttl.min(enrollment_ttl_secs.max(1))))
}

/// Uses the code ([`consume`]) and records the link in one unit: a code refused issues no
/// link, a link not recorded uses no code.
///
/// # Errors
/// As [`consume`]; [`Error::Forbidden`] if the relying party lost the right; [`Error::Store`].
pub fn issue(
    s: &dyn Store,
    rp: &RpCaller,
    attempt: &Attempt,
    ttl: u64,
    verified: (Option<&str>, Checked),
    bounds: Bounds<'_>,
    now: Millis,
) -> Result<(Issued, Used)> {
    let token = random::secret_token().map_err(no_randomness)?;
    let expires_at = expiry(now, ttl);
    let new = NewRpEnrollment {
        user: attempt.user.clone(),
        token_hash: hash_secret(&token),
        rp_id: rp.rp_id.clone(),
        approval: None,
        created_at: now,
        expires_at,
    };
    let (hash, checked) = verified;
    let used = keys::atomically_for(s, rp, |s| {
        rp.require_enroll(&attempt.user)?;
        let used = consume(s, attempt, hash, checked, bounds, now)?;
        s.create_rp_enrollment(&new, Some(BACKUP_CODE_APPROVER))?;
        Ok(used)
    })?;
    tracing::info!(rp = %rp.rp_id, user = %attempt.user, "enrollment link issued on a backup code");
    Ok((Issued { token, expires_at }, used))
}

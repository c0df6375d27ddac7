//! Enrollment links: the administrator's (`POST /v1/admin/enrollments`, `pushauthd enroll`),
//! a relying party's under the rules of [`crate::enrollment`] (issue 9 item 1), and their
//! redemption by a device (`POST /v1/device/enroll`). Tokens are stored only as
//! [`crate::auth::hash_secret`].

use pushauth_proto::names::{check_device_name, check_id, check_user};
use pushauth_proto::signing::enroll_message;
use pushauth_proto::wire::{CreateRpEnrollment, EnrollRequest, ACTION_ADD_DEVICE};
use pushauth_proto::{random, ChallengeState, DevicePublicKey};

use super::keys::{self, RpCaller};
use super::{atomically, expiry, no_randomness, Error, Result};
use crate::auth::{hash_secret, ADMIN_RP};
use crate::clock::Millis;
use crate::enrollment::{bootstrap_refusal, Refusal, APPROVAL_MAX_AGE_MS};
use crate::rights::user_in_scope;
use crate::store::{
    AuditEntry, DeviceRecord, EnrollFacts, EnrollmentRecord, NewDevice, NewRpEnrollment, Redeem,
    Store,
};

/// Longest enrollment link lifetime: 7 days.
pub const MAX_ENROLLMENT_TTL_SECS: u64 = 7 * 24 * 3600;

/// A link just issued: its token (shown once, never stored) and when it expires.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The single-use token.
    pub token: String,
    /// When the link stops working.
    pub expires_at: Millis,
}

/// The link a device opens: `<base_url>/enroll?token=<token>`.
pub fn enrollment_url(base_url: &str, token: &str) -> String {
    format!("{}/enroll?token={token}", base_url.trim_end_matches('/'))
}

fn check_ttl(ttl_secs: u64) -> Result<()> {
    if ttl_secs == 0 || ttl_secs > MAX_ENROLLMENT_TTL_SECS {
        return Err(Error::Invalid(format!(
            "ttl_secs must be 1 to {MAX_ENROLLMENT_TTL_SECS}"
        )));
    }
    Ok(())
}

/// The checks of [`issue`] that need no store: the user name and the lifetime (1 to
/// [`MAX_ENROLLMENT_TTL_SECS`]).
///
/// # Errors
/// [`Error::Invalid`].
pub fn check_admin_request(user: &str, ttl_secs: u64) -> Result<()> {
    check_user(user)?;
    check_ttl(ttl_secs)
}

/// The administrator's link for `user` (created if new), living `ttl_secs`: the HTTP admin API
/// and `pushauthd enroll` both come here. The administrator is the approval, so the relying
/// party rules do not apply.
///
/// # Errors
/// [`Error::Invalid`] for a bad user name or lifetime, [`Error::Store`].
pub fn issue(s: &dyn Store, user: &str, ttl_secs: u64, now: Millis) -> Result<Issued> {
    check_admin_request(user, ttl_secs)?;
    let token = random::secret_token().map_err(no_randomness)?;
    let expires_at = expiry(now, ttl_secs);
    s.create_enrollment(user, &hash_secret(&token), now, expires_at)?;
    Ok(Issued { token, expires_at })
}

/// A relying party's link: checks its rights, then the rules of [`decide`] over the facts
/// the store reads, in the one atomic unit that records the link and uses the approval up. `enrollment_ttl_secs` is the
/// server's setting: a relying party's link lives no longer (minutes by default), so an
/// owner's "yes, add a device now" does not stay usable for days.
///
/// # Errors
/// [`Error::Invalid`], [`Error::Forbidden`], [`Error::Enrollment`], [`Error::Store`].
pub fn issue_for_rp(
    s: &dyn Store,
    rp: &RpCaller,
    req: CreateRpEnrollment,
    enrollment_ttl_secs: u64,
    now: Millis,
) -> Result<Issued> {
    check_user(&req.user)?;
    rp.require_enroll(&req.user)?;
    if req.backup_code.is_some() {
        // Served by `backup_enroll`, which verifies the code first.
        return Err(Error::Invalid("a backup code is checked elsewhere".into()));
    }
    let ttl = req.ttl_secs.unwrap_or(enrollment_ttl_secs);
    check_ttl(ttl)?;
    let ttl = ttl.min(enrollment_ttl_secs.max(1));
    if let Some(a) = &req.approval {
        check_id("challenge", a).map_err(|_| Refusal::ApprovalInvalid)?;
    }
    let token = random::secret_token().map_err(no_randomness)?;
    let expires_at = expiry(now, ttl);
    let new = NewRpEnrollment {
        user: req.user,
        token_hash: hash_secret(&token),
        rp_id: rp.rp_id.clone(),
        approval: req.approval,
        created_at: now,
        expires_at,
    };
    // Read, decided and written in one unit: two requests naming one approval cannot both
    // see it unused.
    keys::atomically_for(s, rp, |s| {
        let facts = s.enroll_facts(&new.user, new.approval.as_deref())?;
        let decided = decide(
            &rp.rp_id,
            rp.bootstrap,
            &new.user,
            new.approval.as_deref(),
            &facts,
            now,
        );
        if let Err(refusal) = decided {
            s.audit(
                &AuditEntry {
                    kind: "enrollment_refused",
                    user: Some(new.user.clone()),
                    challenge_id: new.approval.clone(),
                    detail: Some(format!("{} (rp {})", refusal.code().as_str(), new.rp_id)),
                    ..AuditEntry::default()
                },
                now,
            )?;
            tracing::info!(rp = %rp.rp_id, code = refusal.code().as_str(), "enrollment refused");
            return Err(refusal.into());
        }
        let approved_by = facts
            .approval
            .as_ref()
            .and_then(|a| a.challenge.device_id.as_deref());
        Ok(s.create_rp_enrollment(&new, approved_by)?)
    })?;
    tracing::info!(rp = %rp.rp_id, "enrollment link issued to a relying party");
    Ok(Issued { token, expires_at })
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

/// The link behind a token, if it can still be redeemed (first step of a redemption;
/// [`redeem`] checks again in the unit that redeems it).
///
/// # Errors
/// [`Error::UnknownEnrollment`], [`Error::EnrollmentUsed`], [`Error::EnrollmentExpired`],
/// [`Error::Store`].
pub fn open_link(s: &dyn Store, token: &str, now: Millis) -> Result<EnrollmentRecord> {
    let link = s
        .get_enrollment(&hash_secret(token))?
        .ok_or(Error::UnknownEnrollment)?;
    if link.used {
        return Err(Error::EnrollmentUsed);
    }
    if now >= link.expires_at {
        return Err(Error::EnrollmentExpired);
    }
    Ok(link)
}

/// Checks a device's enrollment request off the store thread: the device name rule and the
/// proof of possession of the key. `user` (the link's) is for the log only.
///
/// # Errors
/// [`Error::Invalid`] for a bad name or key, [`Error::BadSignature`] for a proof that does not
/// verify.
pub fn prove(req: &EnrollRequest, user: &str) -> Result<NewDevice> {
    check_device_name(&req.name)?;
    let public = DevicePublicKey::from_wire(&req.alg, &req.public_key)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let proof = enroll_message(&req.token, public.alg().as_str(), &public.to_bytes());
    if public.verify_b64(&proof, &req.proof).is_err() {
        tracing::warn!(%user, "enrollment proof does not verify");
        return Err(Error::BadSignature(
            "the proof of possession does not verify",
        ));
    }
    Ok(NewDevice {
        id: random::id().map_err(no_randomness)?,
        name: req.name.clone(),
        alg: public.alg().as_str().to_owned(),
        public_key: public.to_b64(),
    })
}

/// Whether what allowed a relying party's link still holds now (the link lives up to a week):
/// the relying party still has the `enroll` right over the user, a bootstrap link still finds
/// the user with no device ever bound (where the relying party may still bootstrap), and the
/// device that approved it is still active. The administrator's links, and the admin token
/// acting as a relying party (every right, never revoked), always hold.
///
/// `Some` refusal when it no longer holds.
///
/// # Errors
/// [`Error::Store`].
pub fn link_refusal(s: &dyn Store, link: &EnrollmentRecord) -> Result<Option<Refusal>> {
    let Some(rp_id) = link.via.strip_prefix("rp:") else {
        return Ok(None);
    };
    let may_bootstrap = if rp_id == ADMIN_RP {
        true
    } else {
        let rp = s.get_relying_party(rp_id)?;
        let holds = rp.as_ref().is_some_and(|rp| {
            rp.revoked_at.is_none() && rp.enroll && user_in_scope(&rp.users, &link.user)
        });
        if !holds {
            return Ok(Some(Refusal::RelyingPartyRevoked));
        }
        rp.is_some_and(|rp| rp.bootstrap)
    };
    Ok(match link.approved_by.as_deref() {
        None => {
            let facts = s.enroll_facts(&link.user, None)?;
            if facts.active_devices > 0 {
                Some(Refusal::ApprovalRequired)
            } else {
                bootstrap_refusal(facts.bound_devices, may_bootstrap)
            }
        }
        // A backup code approved it (issue 12): used up when the link was made.
        Some(super::backup_codes::BACKUP_CODE_APPROVER) => None,
        Some(approver) => {
            let active = s
                .get_device(approver)?
                .is_some_and(|d| d.user == link.user && d.is_active());
            (!active).then_some(Refusal::ApprovalInvalid)
        }
    })
}

/// A device just enrolled, and the user's other active devices (to be told about it).
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The new device.
    pub device: DeviceRecord,
    /// Ids of the user's other active devices.
    pub others: Vec<String>,
}

/// Redeems the link once and binds the device; `source` is the redeeming peer's address.
/// A relying party's link is checked again first ([`link_refusal`]), in the same atomic
/// unit as the redemption.
///
/// # Errors
/// As [`open_link`], [`Error::Enrollment`] for grounds that no longer hold, [`Error::Store`].
pub fn redeem(
    s: &dyn Store,
    token: &str,
    device: &NewDevice,
    source: Option<&str>,
    now: Millis,
) -> Result<Enrolled> {
    let hash = hash_secret(token);
    let device = atomically(s, |s| {
        // The grounds of a relying party's link are read again in the unit that redeems it.
        if let Some(link) = s.get_enrollment(&hash)? {
            if !link.used && now < link.expires_at {
                if let Some(refusal) = link_refusal(s, &link)? {
                    s.audit(
                        &AuditEntry {
                            kind: "enrollment_refused",
                            user: Some(link.user.clone()),
                            device_id: link.approved_by.clone(),
                            detail: Some(format!(
                                "{} at redemption (via {})",
                                refusal.code().as_str(),
                                link.via
                            )),
                            ..AuditEntry::default()
                        },
                        now,
                    )?;
                    return Err(refusal.into());
                }
            }
        }
        match s.redeem_enrollment(&hash, device, source, now)? {
            Redeem::Enrolled(d) => Ok(*d),
            Redeem::Used => Err(Error::EnrollmentUsed),
            Redeem::Expired => Err(Error::EnrollmentExpired),
            Redeem::Unknown => Err(Error::UnknownEnrollment),
        }
    })?;
    tracing::info!(user = %device.user, device = %device.id, source = ?device.source, via = ?device.via, "device enrolled");
    // The binding stands whatever happens next: telling the other devices is best effort.
    let others = match s.user_devices(&device.user) {
        Ok(all) => all
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d.is_active() && d.id != device.id)
            .map(|d| d.id)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, user = %device.user, "cannot list the user's other devices to tell them");
            Vec::new()
        }
    };
    Ok(Enrolled { device, others })
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

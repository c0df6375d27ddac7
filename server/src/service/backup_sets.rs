//! Sets of backup codes (issue 12; NIST SP 800-63B-4 §3.1.2): issuing a set for the
//! administrator, a device or a relying party on an `issue_backup_codes` approval, and voiding
//! every code of a user (a lost sheet). Using one code is [`super::backup_codes`].
//!
//! Rules: a set holds `count` codes (`[backup_codes] count`, 1 to [`MAX_BACKUP_CODES`]); a new
//! set voids the old in the same unit; the set is drawn and hashed off the store thread
//! ([`draw_set`], through [`crate::hashing::Hashing`]) and stored in a second unit that checks
//! again. Audit kinds: `backup_codes_issued`, `backup_codes_voided`, `backup_code_refused`
//! (a refused relying-party approval). Notices: `backup_codes_issued`, `backup_codes_voided`.

use pushauth_proto::wire::{
    ACTION_ISSUE_BACKUP_CODES, NOTICE_BACKUP_CODES_ISSUED, NOTICE_BACKUP_CODES_VOIDED,
};
use pushauth_proto::{ChallengeState, Context};

use super::keys::{self, RpCaller};
use super::{atomically, notices, Error, Result};
use crate::backup_code::{self, Code};
use crate::bounds::SignatureFailures;
use crate::clock::Millis;
use crate::config::MAX_BACKUP_CODES;
use crate::enrollment::Refusal;
use crate::store::{AuditEntry, NoticeRecord, Store, StoredCode};

/// How recent a relying party's `issue_backup_codes` approval must be: 5 minutes.
pub const ISSUE_APPROVAL_MAX_AGE_MS: Millis = 5 * 60 * 1000;

/// The size of a set: `count` if given (1 to [`MAX_BACKUP_CODES`]), else `default`.
///
/// # Errors
/// [`Error::Invalid`] for a count out of range.
pub fn check_count(count: Option<u32>, default: u32) -> Result<u32> {
    let n = count.unwrap_or(default);
    if n == 0 || n > MAX_BACKUP_CODES {
        return Err(Error::Invalid(format!(
            "count must be 1 to {MAX_BACKUP_CODES}"
        )));
    }
    Ok(n)
}

/// A set drawn and hashed, not stored yet.
#[derive(Debug)]
pub struct DrawnSet {
    codes: Vec<Code>,
    stored: Vec<StoredCode>,
}

/// Draws `count` codes with distinct tags and hashes each. Slow (one Argon2id hash per code):
/// run it through [`crate::hashing::Hashing`].
///
/// # Errors
/// [`Error::Internal`] without randomness.
pub fn draw_set(count: u32) -> Result<DrawnSet> {
    let mut codes: Vec<Code> = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut stored = Vec::new();
    for _ in 0..count {
        let code = Code::generate_avoiding(&tags)?;
        tags.push(code.tag().to_owned());
        stored.push(StoredCode {
            tag: code.tag().to_owned(),
            hash: backup_code::hash(&code)?,
        });
        codes.push(code);
    }
    Ok(DrawnSet { codes, stored })
}

/// A set just stored: the codes to show once, and the devices to wake for the notice.
#[derive(Debug)]
pub struct IssuedSet {
    /// The codes, grouped for reading.
    pub codes: Vec<String>,
    /// When they were issued.
    pub created_at: Millis,
    /// The user's active devices (to wake for the `backup_codes_issued` notice).
    pub devices: Vec<String>,
}

/// Stores `set` for `user` in place of any earlier set, audits `backup_codes_issued` naming
/// `via` (`admin`, `cli`, `device:<id>`, `rp:<id>`) and tells the user's devices.
///
/// # Errors
/// [`Error::UnknownUser`] for a user never seen (nothing written), [`Error::Store`].
pub fn store_set(
    s: &dyn Store,
    user: &str,
    set: &DrawnSet,
    via: &str,
    now: Millis,
) -> Result<IssuedSet> {
    let devices = atomically(s, |s| store_set_in(s, user, set, via, now))?;
    tracing::info!(%user, %via, count = set.codes.len(), "backup codes issued");
    Ok(IssuedSet {
        codes: set.codes.iter().map(Code::grouped).collect(),
        created_at: now,
        devices,
    })
}

fn store_set_in(
    s: &dyn Store,
    user: &str,
    set: &DrawnSet,
    via: &str,
    now: Millis,
) -> Result<Vec<String>> {
    if !s.replace_backup_codes(user, &set.stored, now)? {
        return Err(Error::UnknownUser);
    }
    let count = u32::try_from(set.stored.len()).unwrap_or(u32::MAX);
    s.audit(
        &AuditEntry {
            kind: "backup_codes_issued",
            user: Some(user.to_owned()),
            device_id: via.strip_prefix("device:").map(str::to_owned),
            detail: Some(format!("{count} codes by {via}; earlier codes void")),
            ..AuditEntry::default()
        },
        now,
    )?;
    notices::record(
        s,
        &NoticeRecord {
            user: user.to_owned(),
            kind: NOTICE_BACKUP_CODES_ISSUED.to_owned(),
            at: now,
            source: None,
            via: Some(via.to_owned()),
            context: Context::new(),
            count: Some(count),
        },
    )
}

/// Voids every backup code of `user` without issuing new ones (a lost sheet), in one unit:
/// audits `backup_codes_voided` naming `via` (`admin`, `cli`) and tells the user's devices.
/// Returns the devices to wake.
///
/// # Errors
/// [`Error::Invalid`] for a bad name, [`Error::UnknownUser`] for a user never seen (nothing
/// written), [`Error::Store`].
pub fn void(s: &dyn Store, user: &str, via: &str, now: Millis) -> Result<Vec<String>> {
    pushauth_proto::names::check_user(user)?;
    let devices = atomically(s, |s| {
        if !s.replace_backup_codes(user, &[], now)? {
            return Err(Error::UnknownUser);
        }
        s.audit(
            &AuditEntry {
                kind: "backup_codes_voided",
                user: Some(user.to_owned()),
                detail: Some(format!("every backup code voided by {via}; none issued")),
                ..AuditEntry::default()
            },
            now,
        )?;
        notices::record(
            s,
            &NoticeRecord {
                user: user.to_owned(),
                kind: NOTICE_BACKUP_CODES_VOIDED.to_owned(),
                at: now,
                source: None,
                via: Some(via.to_owned()),
                context: Context::new(),
                count: None,
            },
        )
    })?;
    tracing::info!(%user, %via, "backup codes voided");
    Ok(devices)
}

/// Checks a relying party's `issue_backup_codes` approval over what the store holds (the read
/// before the codes are drawn; [`store_set_for_rp`] checks again and uses it up).
///
/// # Errors
/// [`Error::Forbidden`] for a user out of scope, [`Error::Enrollment`] with
/// [`Refusal::ApprovalInvalid`], [`Error::Store`].
pub fn check_rp_approval(
    s: &dyn Store,
    rp: &RpCaller,
    user: &str,
    approval: &str,
    now: Millis,
) -> Result<()> {
    rp.require_user(user, "issue backup codes for")?;
    let facts = s.enroll_facts(user, Some(approval))?;
    let Some(a) = facts.approval else {
        return Err(Refusal::ApprovalInvalid.into());
    };
    let c = &a.challenge;
    let ours = c.id == approval && c.rp_id == rp.rp_id && c.user == user;
    let kind = c.context.get("action").map(String::as_str) == Some(ACTION_ISSUE_BACKUP_CODES);
    let fresh = now.saturating_sub(a.decided_at) <= ISSUE_APPROVAL_MAX_AGE_MS;
    // Approved with the typed code (number matching), by a device still active.
    let approved = c.state == ChallengeState::Approved && c.code.is_some() && a.approver_active;
    if ours && kind && fresh && approved {
        Ok(())
    } else {
        Err(Refusal::ApprovalInvalid.into())
    }
}

/// Uses up a relying party's `issue_backup_codes` approval before any set is drawn (so copies
/// of one request cannot each make pushauthd hash a whole set): checks it
/// ([`check_rp_approval`]) and marks it used, in one unit; a refusal is audited as
/// `backup_code_refused` (coalesced: one row a minute per user and relying party). A set that
/// then fails to be drawn costs the person one approval.
///
/// # Errors
/// As [`check_rp_approval`]; [`Refusal::ApprovalUsed`] for an approval used before.
pub fn claim_rp_approval(
    s: &dyn Store,
    rp: &RpCaller,
    refusals: &SignatureFailures,
    user: &str,
    approval: &str,
    now: Millis,
) -> Result<()> {
    keys::atomically_for(s, rp, |s| {
        let checked = check_rp_approval(s, rp, user, approval, now).and_then(|()| {
            if s.use_backup_approval(approval, user, now)? {
                Ok(())
            } else {
                Err(Refusal::ApprovalUsed.into())
            }
        });
        if let Err(e) = checked {
            let source = format!("rp:{}", rp.rp_id);
            refusals.record_entry(
                s,
                &format!("backup_code_refused:{user}:new set"),
                &source,
                AuditEntry {
                    kind: "backup_code_refused",
                    user: Some(user.to_owned()),
                    challenge_id: Some(approval.to_owned()),
                    detail: Some(format!(
                        "new set refused ({e}) for {source}; further ones within a minute are \
                         counted here"
                    )),
                    ..AuditEntry::default()
                },
            );
            return Err(e);
        }
        Ok(())
    })
}

/// [`store_set`] for a relying party whose approval [`claim_rp_approval`] used up: checks the
/// approval again (a device revoked meanwhile voids it) and stores the set, in one unit.
///
/// # Errors
/// As [`check_rp_approval`], [`Error::UnknownUser`], [`Error::Store`].
pub fn store_set_for_rp(
    s: &dyn Store,
    rp: &RpCaller,
    user: &str,
    approval: &str,
    set: &DrawnSet,
    now: Millis,
) -> Result<IssuedSet> {
    let via = format!("rp:{}", rp.rp_id);
    let devices = keys::atomically_for(s, rp, |s| {
        check_rp_approval(s, rp, user, approval, now)?;
        store_set_in(s, user, set, &via, now)
    })?;
    tracing::info!(%user, %via, "backup codes issued on an approval");
    Ok(IssuedSet {
        codes: set.codes.iter().map(Code::grouped).collect(),
        created_at: now,
        devices,
    })
}

//! Backup codes (issue 12; NIST SP 800-63B-4 §3.1.2, saved recovery codes): using one code
//! instead of a push (at a PAM prompt, on the Keycloak page, to enroll a new device). Issuing
//! and voiding sets is [`super::backup_sets`] (re-exported here).
//!
//! The slow parts (Argon2id, [`crate::backup_code`]) run between two store jobs, off the
//! runtime ([`crate::hashing`]): [`draw_set`] and [`check_code`]. What the store read before
//! them is read again in the unit that writes ([`store_set`], [`consume`]), so two uses of one
//! code cannot both win, and a user who reached the lock meanwhile is refused.
//!
//! Rules:
//! - a used code's row takes a fresh code (same tag) in the unit that uses it; the caller shows
//!   the replacement where the code was used;
//! - every refusal is `backup_code_invalid`, whether the code was wrong, used, or the user has
//!   none or is unknown. For a known user it costs one Argon2id verify either way (a decoy when
//!   no row has the tag), so neither the answer nor its time tells whether the user has codes;
//!   an unknown user is refused before any hashing (uncounted attempts must cost no CPU, and
//!   relying parties see who exists anyway);
//! - consecutive wrong codes of a known user are counted; at `[limits]
//!   max_backup_code_failures` every code is refused (`user_locked`, checked before any verify)
//!   until `pushauthd unlock` clears the count. A right code below the lock resets it;
//! - a user with no active device may use a code (that is what they are for); an unknown user
//!   never has one.
//!
//! Audit kinds: `backup_codes_issued`, `backup_code_used`, `backup_code_refused` (one row a
//! minute per user, reason and relying party, with a count: a relying party looping wrong
//! codes cannot grow the database; [`Bounds`]), `backup_codes_locked`. Notices: `backup_code_used`.

use pushauth_proto::wire::NOTICE_BACKUP_CODE_USED;
use pushauth_proto::Context;

use super::keys::RpCaller;
use super::{notices, Error, Result};
use crate::backup_code::{self, Code, CodeError};
use crate::bounds::SignatureFailures;
use crate::clock::Millis;
use crate::store::{AuditEntry, BackupCodeFacts, NoticeRecord, Store, StoredCode, UseCode};

pub use super::backup_sets::{
    check_count, check_rp_approval, claim_rp_approval, draw_set, store_set, store_set_for_rp, void,
    DrawnSet, IssuedSet, ISSUE_APPROVAL_MAX_AGE_MS,
};

/// The `approved_by` of an enrollment link a backup code approved (never a device id, which is
/// 22 base64url characters).
pub const BACKUP_CODE_APPROVER: &str = "backup_code";

impl From<CodeError> for Error {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Malformed => Error::Invalid(e.to_string()),
            CodeError::Internal(why) => Error::Internal(why),
        }
    }
}

/// One attempt to use a backup code.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Whose code it should be.
    pub user: String,
    /// What was typed, read ([`Code::parse`]).
    pub code: Code,
    /// Where (service, host, rhost…), for the audit and the notice.
    pub context: Context,
    /// Who asks: `rp:<id>`.
    pub via: String,
    /// What the code is used for (`login`, `enrollment`), for the audit.
    pub purpose: &'static str,
}

fn place(a: &Attempt) -> String {
    let mut text: Vec<String> = a.context.iter().map(|(k, v)| format!("{k}={v}")).collect();
    text.push(format!("via {}", a.via));
    text.join(" ")
}

/// What bounds a user's attempts: `[limits] max_backup_code_failures`, and the coalesced
/// audit rows of refusals.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    /// Consecutive wrong codes that lock a user's codes.
    pub max_failures: u32,
    /// Where refusals are counted (one audit row a minute per user, reason and source).
    pub refusals: &'a SignatureFailures,
}

/// Why an attempt was refused, for the audit row it counts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    UnknownUser,
    Locked,
    Wrong,
}

fn refuse(s: &dyn Store, bounds: Bounds<'_>, a: &Attempt, why: Why, detail: &str) {
    // Unknown names share one row per relying party: a flood of made-up names is one key.
    let (user, reason) = match why {
        Why::UnknownUser => (None, "unknown user"),
        Why::Locked => (Some(a.user.clone()), "locked"),
        Why::Wrong => (Some(a.user.clone()), "wrong"),
    };
    let subject = format!(
        "backup_code_refused:{}:{}:{reason}",
        user.as_deref().unwrap_or("(unknown users)"),
        a.purpose
    );
    let named = match why {
        Why::UnknownUser => format!(" {:?}", a.user),
        _ => String::new(),
    };
    bounds.refusals.record_entry(
        s,
        &subject,
        &a.via,
        AuditEntry {
            kind: "backup_code_refused",
            user,
            detail: Some(format!(
                "{} ({reason}{named}{detail}): {}; further ones within a minute are counted here",
                a.purpose,
                place(a)
            )),
            ..AuditEntry::default()
        },
    );
    tracing::info!(via = %a.via, reason, "backup code refused");
}

/// The read before the verify: the row the code's tag picks, and the lock.
///
/// # Errors
/// [`Error::BackupCodeInvalid`] (audited) for an unknown user, [`Error::BackupCodesLocked`]
/// (audited) for a user at the lock, [`Error::Store`].
pub fn attempt_facts(s: &dyn Store, a: &Attempt, bounds: Bounds<'_>) -> Result<BackupCodeFacts> {
    let facts = s.backup_code_facts(&a.user, a.code.tag())?;
    // An unknown user is refused before any hashing: its attempts are not counted (no row to
    // count them on), so a decoy verify would be free Argon2id work for any relying party, and
    // it would hide nothing (`GET /v1/users/{user}/devices` tells a relying party who exists).
    if !facts.known_user {
        refuse(s, bounds, a, Why::UnknownUser, "");
        return Err(Error::BackupCodeInvalid);
    }
    if facts.failures >= bounds.max_failures {
        refuse(s, bounds, a, Why::Locked, "");
        return Err(Error::BackupCodesLocked);
    }
    Ok(facts)
}

/// The slow check of an attempt, with its replacement drawn when the code matched.
#[derive(Debug)]
pub struct Checked {
    replacement: Option<(Code, StoredCode)>,
}

/// Verifies `code` against `stored` (one Argon2id verify; a decoy when `None`) and, when it
/// matches, draws and hashes its replacement (same tag). Slow: run it through
/// [`crate::hashing::Hashing`].
///
/// # Errors
/// [`Error::Internal`] without randomness.
pub fn check_code(code: &Code, stored: Option<&str>) -> Result<Checked> {
    if !backup_code::verify(code, stored) {
        return Ok(Checked { replacement: None });
    }
    let fresh = Code::generate_with_tag(code.tag())?;
    let hash = backup_code::hash(&fresh)?;
    let tag = fresh.tag().to_owned();
    Ok(Checked {
        replacement: Some((fresh, StoredCode { tag, hash })),
    })
}

/// A code used: its replacement (to show where it was used), what is left, and the devices to
/// wake for the `backup_code_used` notice.
#[derive(Debug)]
pub struct Used {
    /// The fresh code, grouped for reading.
    pub replacement: String,
    /// Unused codes now (the replacement counted).
    pub remaining: u32,
    /// The user's active devices.
    pub devices: Vec<String>,
}

/// The write after the verify, inside the caller's [`super::atomically`] unit (so an enrollment can
/// be issued in the same unit): reads the lock and the row again, uses the code
/// (compare-and-set on the row that was verified) or counts a failure.
///
/// # Errors
/// [`Error::BackupCodeInvalid`] (wrong, used meanwhile, none, unknown user; the failure is
/// counted and audited), [`Error::BackupCodesLocked`], [`Error::Store`].
pub fn consume(
    s: &dyn Store,
    a: &Attempt,
    verified_hash: Option<&str>,
    checked: Checked,
    bounds: Bounds<'_>,
    now: Millis,
) -> Result<Used> {
    let max_failures = bounds.max_failures;
    let facts = s.backup_code_facts(&a.user, a.code.tag())?;
    if !facts.known_user {
        refuse(s, bounds, a, Why::UnknownUser, "");
        return Err(Error::BackupCodeInvalid);
    }
    if facts.failures >= bounds.max_failures {
        refuse(s, bounds, a, Why::Locked, "");
        return Err(Error::BackupCodesLocked);
    }
    if let (Some(old), Some((fresh, stored))) = (verified_hash, checked.replacement) {
        if let UseCode::Used { remaining } = s.use_backup_code(&a.user, old, &stored, now)? {
            s.audit(
                &AuditEntry {
                    kind: "backup_code_used",
                    user: Some(a.user.clone()),
                    detail: Some(format!(
                        "{}: {}; replaced, {remaining} left",
                        a.purpose,
                        place(a)
                    )),
                    ..AuditEntry::default()
                },
                now,
            )?;
            let devices = notices::record(
                s,
                &NoticeRecord {
                    user: a.user.clone(),
                    kind: NOTICE_BACKUP_CODE_USED.to_owned(),
                    at: now,
                    source: None,
                    via: Some(a.via.clone()),
                    context: a.context.clone(),
                    count: Some(remaining),
                },
            )?;
            tracing::info!(user = %a.user, via = %a.via, remaining, "backup code used");
            return Ok(Used {
                replacement: fresh.grouped(),
                remaining,
                devices,
            });
        }
    }
    let failures = s.backup_code_failed(&a.user)?;
    refuse(
        s,
        bounds,
        a,
        Why::Wrong,
        &format!(", used or none; {failures} of {max_failures} in a row"),
    );
    if failures >= max_failures {
        s.audit(
            &AuditEntry {
                kind: "backup_codes_locked",
                user: Some(a.user.clone()),
                detail: Some(format!(
                    "{failures} wrong backup codes in a row; `pushauthd unlock` lifts it"
                )),
                ..AuditEntry::default()
            },
            now,
        )?;
        tracing::warn!(user = %a.user, "backup codes locked after {failures} wrong codes");
    }
    Err(Error::BackupCodeInvalid)
}

/// A relying party's attempt at `POST /v1/users/{user}/backup-codes/verify`, checked before
/// any slow work: the user name, the relying party's right to push to the user (the scope of
/// challenges), the context, and the code's form.
///
/// # Errors
/// [`Error::Invalid`], [`Error::InvalidContext`], [`Error::Forbidden`].
pub fn rp_attempt(rp: &RpCaller, user: &str, code: &str, context: Context) -> Result<Attempt> {
    pushauth_proto::names::check_user(user)?;
    rp.require_user(user, "push to")?;
    pushauth_proto::context::validate_context(&context)
        .map_err(|e| Error::InvalidContext(e.to_string()))?;
    Ok(Attempt {
        user: user.to_owned(),
        code: Code::parse(code)?,
        context,
        via: format!("rp:{}", rp.rp_id),
        purpose: "login",
    })
}

/// [`Error::UnknownUser`] unless `user` was ever seen (checked before a set is drawn, so an
/// unknown name costs no hashing).
///
/// # Errors
/// [`Error::Invalid`] for a bad name, [`Error::UnknownUser`], [`Error::Store`].
pub fn require_known(s: &dyn Store, user: &str) -> Result<()> {
    pushauth_proto::names::check_user(user)?;
    match s.user_devices(user)? {
        Some(_) => Ok(()),
        None => Err(Error::UnknownUser),
    }
}

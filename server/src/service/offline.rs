//! Offline codes (issue 12), the rules: a device's HOTP secret issued at enrollment; the values
//! a PAM host may cache after an approved push of its own; a host's report of a code it
//! accepted while pushauthd was down. Values leave the server only as Argon2id hashes (made
//! off the store thread by the caller, [`crate::hashing::Hashing`]).

use pushauth_proto::hotp::{hotp, HotpAlg};
use pushauth_proto::names::{check_id, check_user};
use pushauth_proto::offline::{EnrollOffline, OfflineRequest, OfflineUsedRequest, MAX_WINDOW};
use pushauth_proto::wire::NOTICE_OFFLINE_CODE_USED;
use pushauth_proto::{b64, random, ChallengeState, Context};
use zeroize::Zeroizing;

use super::keys::RpCaller;
use super::{atomically, no_randomness, notices, secs_to_ms, Error, Result};
use crate::bounds::SignatureFailures;
use crate::clock::{parse_rfc3339, Millis};
use crate::offline::{OfflineConfig, OfflineKey};
use crate::store::{AuditEntry, NoticeRecord, OfflineSecretRecord, Store};

/// How long after its creation an approved challenge still lets its relying party fetch values.
pub const VALUES_MAX_AGE_SECS: u64 = 300;

/// How long the claim of an approval's one batch of values is kept
/// ([`crate::store::CountStore::claim_offline_batch`]): the 5 minutes values are served plus a
/// minute of clock slack; after that the challenge is refused as too old anyway.
pub const BATCH_KEEP_MS: Millis = 6 * 60 * 1000;

// The claim of a batch must outlive the time values are served.
const _: () = assert!(BATCH_KEEP_MS > VALUES_MAX_AGE_SECS as i64 * 1000);

/// Wrong codes in reports of one relying party for one device after which every report of
/// that pair is refused unchecked, on every replica, until an administrator unlocks the user
/// (a host only reports codes that matched the device's values, so one wrong code already
/// means a broken or broken-into host; ten stop guessing a 6-digit value). Counted in the
/// store ([`crate::store::CountStore::count_offline_check`]).
pub const MAX_WRONG_REPORTS: u64 = 10;

/// Most devices in one `have` map (a user has a handful).
const MAX_HAVE_ENTRIES: usize = 64;

/// Makes, seals and stores a new offline secret for a just-enrolled device; `None` when
/// `[offline] enabled = false`. The plain secret is returned once, for the enroll response.
///
/// # Errors
/// [`Error::Internal`] without randomness, [`Error::Store`].
pub fn issue(
    s: &dyn Store,
    config: &OfflineConfig,
    key: &OfflineKey,
    device_id: &str,
    now: Millis,
) -> Result<Option<EnrollOffline>> {
    if !config.enabled {
        return Ok(None);
    }
    let full = Zeroizing::new(random::bytes::<32>().map_err(no_randomness)?);
    let secret = &full[..config.algorithm.secret_len()];
    let sealed = key
        .seal(device_id, secret)
        .map_err(|e| Error::Internal(e.to_string()))?;
    s.set_offline_secret(
        &OfflineSecretRecord {
            device_id: device_id.to_owned(),
            sealed,
            algorithm: config.algorithm.as_str().to_owned(),
            digits: config.digits,
            last_used: 0,
            served_to: 0,
        },
        now,
    )?;
    Ok(Some(EnrollOffline {
        secret: b64::encode(secret),
        digits: config.digits,
        algorithm: config.algorithm.as_str().to_owned(),
        counter: 0,
    }))
}

/// The plain values a host is missing for one device, to be hashed before they leave.
pub struct PlannedDevice {
    /// The device.
    pub device_id: String,
    /// Its last used counter (the host drops what it holds at or below it).
    pub last_used: u64,
    /// Digits of its codes.
    pub digits: u32,
    /// `(counter, value)`, ascending.
    pub values: Vec<(u64, Zeroizing<String>)>,
}

/// What [`plan_values`] found: the user and, per device, the values to hash.
pub struct Planned {
    /// The approved challenge the values are for.
    pub challenge_id: String,
    /// The challenge's user.
    pub user: String,
    /// Per active device with a secret.
    pub devices: Vec<PlannedDevice>,
}

impl Planned {
    /// Number of values to hash.
    pub fn count(&self) -> usize {
        self.devices.iter().map(|d| d.values.len()).sum()
    }
}

/// What the offline rules need from the server: its settings, the key that opens the devices'
/// secrets, and where refusals are counted.
#[derive(Debug, Clone, Copy)]
pub struct Offline<'a> {
    /// `[offline]`.
    pub config: &'a OfflineConfig,
    /// Opens the sealed secrets.
    pub key: &'a OfflineKey,
    /// Refusals, one audit row a minute per subject and relying party ([`SignatureFailures`]).
    pub refusals: &'a SignatureFailures,
}

/// Audits `offline_values_refused`, one row a minute per relying party and reason with a
/// count (a relying party can repeat these at will).
fn refuse(
    refusals: &SignatureFailures,
    s: &dyn Store,
    rp: &RpCaller,
    challenge_id: &str,
    why: &str,
) {
    refusals.record_entry(
        s,
        &format!("offline_values_refused:{why}"),
        &format!("rp:{}", rp.rp_id),
        AuditEntry {
            kind: "offline_values_refused",
            challenge_id: Some(challenge_id.to_owned()),
            detail: Some(format!(
                "{why} (rp {}); further ones within a minute are counted here",
                rp.rp_id
            )),
            ..AuditEntry::default()
        },
    );
}

/// Checks that `rp` may fetch values on `challenge_id` (its own challenge, approved, created at
/// most [`VALUES_MAX_AGE_SECS`] ago) and computes, for each active device of the user with a
/// secret, the values for counters `last_used+1 ..= last_used+window` above what `have` says the
/// host holds. A refusal never tells another relying party's challenge from a missing one.
/// Writes only refusals: [`claim_batch`] audits what is then handed out.
///
/// # Errors
/// [`Error::Invalid`] for a bad `have`, [`Error::NotFound`] (no such challenge, or another
/// relying party's), [`Error::WrongState`] (not approved), [`Error::Expired`] (too old),
/// [`Error::Forbidden`] (offline codes off, user out of scope), [`Error::Internal`] (a secret
/// that does not open), [`Error::Store`].
pub fn plan_values(
    s: &dyn Store,
    rp: &RpCaller,
    off: Offline<'_>,
    challenge_id: &str,
    req: &OfflineRequest,
    now: Millis,
) -> Result<Planned> {
    let Offline {
        config,
        key,
        refusals,
    } = off;
    check_id("challenge", challenge_id)?;
    if req.have.len() > MAX_HAVE_ENTRIES {
        return Err(Error::Invalid(format!(
            "have lists more than {MAX_HAVE_ENTRIES} devices"
        )));
    }
    for id in req.have.keys() {
        check_id("device", id)?;
    }
    let Some((challenge, _)) = s.get_challenge(challenge_id, now)? else {
        return Err(Error::NotFound("challenge"));
    };
    if challenge.rp_id != rp.rp_id {
        refuse(
            refusals,
            s,
            rp,
            challenge_id,
            "another relying party's challenge",
        );
        return Err(Error::NotFound("challenge"));
    }
    if !config.enabled {
        return Err(Error::Forbidden(
            "offline codes are off on this server".into(),
        ));
    }
    rp.require_user(&challenge.user, "fetch offline values of")?;
    if challenge.state != ChallengeState::Approved {
        refuse(refusals, s, rp, challenge_id, "challenge not approved");
        return Err(Error::WrongState(challenge.state));
    }
    if now.saturating_sub(challenge.created_at) > secs_to_ms(VALUES_MAX_AGE_SECS) {
        refuse(
            refusals,
            s,
            rp,
            challenge_id,
            "challenge older than 5 minutes",
        );
        return Err(Error::Expired);
    }
    let window = config.window.min(MAX_WINDOW);
    let mut devices = Vec::new();
    for secret in s.offline_secrets(&challenge.user)? {
        let alg: HotpAlg = secret
            .algorithm
            .parse()
            .map_err(|e: pushauth_proto::hotp::HotpError| Error::Internal(e.to_string()))?;
        let plain = key
            .open(&secret.device_id, &secret.sealed)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let held = req.have.get(&secret.device_id).copied().unwrap_or(0);
        let first = secret.last_used.max(held).saturating_add(1);
        let last = secret.last_used.saturating_add(window);
        let mut values = Vec::new();
        for counter in first..=last {
            let code = hotp(alg, &plain, counter, secret.digits)
                .map_err(|e| Error::Internal(e.to_string()))?;
            values.push((counter, code));
        }
        devices.push(PlannedDevice {
            device_id: secret.device_id,
            last_used: secret.last_used,
            digits: secret.digits,
            values,
        });
    }
    Ok(Planned {
        challenge_id: challenge_id.to_owned(),
        user: challenge.user,
        devices,
    })
}

/// Claims the one batch of hashing an approval pays for (in the store, so a second replica
/// refuses it too; kept [`BATCH_KEEP_MS`]), records each device's highest counter handed out
/// (the most a host may later report) and audits `offline_values_issued`, in one unit; a plan
/// with nothing to hash needs no claim and writes nothing. Release the claim
/// ([`crate::store::CountStore::release_offline_batch`]) when the hashing then fails.
///
/// # Errors
/// [`Error::Conflict`] (audited as `offline_values_refused`) when the approval had its batch,
/// [`Error::Store`].
pub fn claim_batch(
    s: &dyn Store,
    rp: &RpCaller,
    refusals: &SignatureFailures,
    planned: &Planned,
    now: Millis,
) -> Result<()> {
    let count = planned.count();
    if count == 0 {
        return Ok(());
    }
    let id = &planned.challenge_id;
    let claimed = atomically(s, |s| {
        if !s.claim_offline_batch(id, now.saturating_add(BATCH_KEEP_MS))? {
            return Ok(false);
        }
        for device in &planned.devices {
            if let Some((top, _)) = device.values.last() {
                s.offline_served_to(&device.device_id, *top)?;
            }
        }
        s.audit(
            &AuditEntry {
                kind: "offline_values_issued",
                user: Some(planned.user.clone()),
                challenge_id: Some(id.clone()),
                detail: Some(format!(
                    "{count} value hashes for {} device(s) to rp {}",
                    planned.devices.len(),
                    rp.rp_id
                )),
                ..AuditEntry::default()
            },
            now,
        )?;
        Ok(true)
    })?;
    if !claimed {
        refuse(
            refusals,
            s,
            rp,
            id,
            "values already handed out for this approval",
        );
        return Err(Error::Conflict(
            "offline values were already handed out for this approval; the next approved \
             login brings the missing ones"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `req.code` is the device's HOTP value for `req.counter` (constant-time compare).
fn value_matches(
    off: Offline<'_>,
    secret: &OfflineSecretRecord,
    req: &OfflineUsedRequest,
) -> Result<bool> {
    use subtle::ConstantTimeEq;
    let alg: HotpAlg = secret
        .algorithm
        .parse()
        .map_err(|e: pushauth_proto::hotp::HotpError| Error::Internal(e.to_string()))?;
    let plain = off
        .key
        .open(&secret.device_id, &secret.sealed)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let expected = hotp(alg, &plain, req.counter, secret.digits)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(bool::from(expected.as_bytes().ct_eq(req.code.as_bytes())))
}

/// What a host's report did.
#[derive(Debug, Clone)]
pub struct Reported {
    /// The device's last used counter now.
    pub counter: u64,
    /// The user's active devices, to wake for the notice `offline_code_used`.
    pub wake: Vec<String>,
}

/// Records that `rp` accepted `device_id`'s code `counter` for `user` while pushauthd was down:
/// the device's counter moves up to it (never down), and the use is audited
/// (`offline_code_used`, with the host) and announced to the user's devices (notice
/// `offline_code_used`). A counter beyond the highest one handed out to a host (and never more
/// than [`MAX_WINDOW`] past the last used) cannot have come from a cache and is refused; one
/// at or below it is a repeat (another host's, or a retried report) and is audited without
/// moving anything. The report's `code` must be the device's value for `counter` (compared in
/// constant time): a report without the right value moves nothing and is audited
/// `offline_report_refused` (one row a minute per device and relying party, with a count);
/// after [`MAX_WRONG_REPORTS`] of them every report of that relying party for that device is
/// refused unchecked on every replica (counted in the store before the check, so concurrent
/// reports cannot pass the limit), so the value cannot be guessed; unlocking the user lifts
/// it. Each (device, relying party, counter) is recorded once, in the store, in the unit that
/// records the use: a copy is answered with the counter and writes nothing.
///
/// # Errors
/// [`Error::Invalid`] (bad fields), [`Error::Forbidden`] (user out of scope; a wrong code),
/// [`Error::NotFound`] (no such device of that user with a secret), [`Error::Internal`] (a
/// secret that does not open), [`Error::Store`].
pub fn report_used(
    s: &dyn Store,
    rp: &RpCaller,
    off: Offline<'_>,
    user: &str,
    req: &OfflineUsedRequest,
    now: Millis,
) -> Result<Reported> {
    check_user(user)?;
    check_id("device", &req.device_id)?;
    if req.counter == 0 {
        return Err(Error::Invalid("counter starts at 1".into()));
    }
    if parse_rfc3339(&req.used_at).is_none() {
        return Err(Error::Invalid("used_at must be RFC 3339 UTC".into()));
    }
    rp.require_user(user, "report offline codes of")?;
    let device = s.get_device(&req.device_id)?;
    if device.as_ref().is_none_or(|d| d.user != user) {
        return Err(Error::NotFound("device"));
    }
    let secrets = s.offline_secrets(user)?;
    let Some(current) = secrets.iter().find(|r| r.device_id == req.device_id) else {
        return Err(Error::NotFound("device"));
    };
    // Only a value handed out to a host can have been used from a cache: a report beyond
    // that would let one relying party push the counter past every other host's values.
    if req.counter
        > current
            .served_to
            .min(current.last_used.saturating_add(MAX_WINDOW))
    {
        return Err(Error::Invalid(format!(
            "counter {} is beyond any value handed out to a host",
            req.counter
        )));
    }
    if req.code.len() != current.digits as usize || !req.code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Invalid(format!(
            "code must be the device's {} digits",
            current.digits
        )));
    }
    // A host reports only codes that matched the device's values: a wrong one is a broken or
    // hostile host, and after a few its reports of this device are not checked any more.
    // The check is counted before it is made and taken back when the code is right, so the
    // count of wrong ones can never be passed by reports arriving together on several replicas.
    let blocked = s.count_offline_check(&req.device_id, &rp.rp_id)? > MAX_WRONG_REPORTS;
    let matches = if blocked {
        false
    } else {
        let checked = value_matches(off, current, req);
        if !matches!(checked, Ok(false)) {
            s.uncount_offline_check(&req.device_id, &rp.rp_id)?;
        }
        checked?
    };
    if !matches {
        let source = format!("rp:{}", rp.rp_id);
        let why = if blocked {
            "after too many wrong codes from this relying party"
        } else {
            "with a code that is not the device's"
        };
        off.refusals.record_entry(
            s,
            &format!("offline_report_refused:{}", req.device_id),
            &source,
            AuditEntry {
                kind: "offline_report_refused",
                user: Some(user.to_owned()),
                device_id: Some(req.device_id.clone()),
                detail: Some(format!(
                    "counter {} reported by {source} {why}; nothing changed; further ones \
                     within a minute are counted here",
                    req.counter
                )),
                ..AuditEntry::default()
            },
        );
        return Err(Error::Forbidden(if blocked {
            "too many wrong offline codes were reported by this host for this device; its \
             reports are refused until an administrator unlocks the user"
                .into()
        } else {
            "the code is not the device's offline code for that counter".into()
        }));
    }
    let device_name = device.map(|d| d.name).unwrap_or_default();
    // Record, advance, audit and notice in one unit: the notice exists exactly when the use was
    // recorded, and a failed unit records nothing (its retry is recorded).
    let recorded = atomically(s, |s| {
        let Some(moved) = s.advance_offline_counter(&req.device_id, req.counter)? else {
            return Err(Error::NotFound("device"));
        };
        // A copy of a report already recorded (a retry, or a flood) is answered and writes
        // nothing (its advance above moved nothing: the first one did).
        if !s.record_offline_report(&req.device_id, &rp.rp_id, req.counter, now)? {
            return Ok(None);
        }
        let note = if moved.after > moved.before {
            format!("counter moved from {} to {}", moved.before, moved.after)
        } else {
            format!(
                "counter already at {}: a repeated report or a second host",
                moved.before
            )
        };
        // The host is named as the administrator named its relying party.
        let (host, host_name) = match s.get_relying_party(&rp.rp_id)? {
            Some(record) => (format!("{:?} (rp {})", record.name, rp.rp_id), record.name),
            None => (rp.rp_id.clone(), rp.rp_id.clone()),
        };
        s.audit(
            &AuditEntry {
                kind: "offline_code_used",
                user: Some(user.to_owned()),
                device_id: Some(req.device_id.clone()),
                detail: Some(format!(
                    "counter {} used at {} on host {host} ({note})",
                    req.counter, req.used_at
                )),
                ..AuditEntry::default()
            },
            now,
        )?;
        let mut context = Context::new();
        context.insert("host".into(), host_name);
        context.insert("device".into(), device_name.clone());
        context.insert("counter".into(), req.counter.to_string());
        context.insert("used_at".into(), req.used_at.clone());
        let wake = notices::record(
            s,
            &NoticeRecord {
                user: user.to_owned(),
                kind: NOTICE_OFFLINE_CODE_USED.to_owned(),
                at: now,
                source: None,
                via: Some(format!("rp:{}", rp.rp_id)),
                context,
                count: None,
            },
        )?;
        Ok(Some((moved, wake)))
    })?;
    let Some((moved, wake)) = recorded else {
        return Ok(Reported {
            counter: current.last_used.max(req.counter),
            wake: Vec::new(),
        });
    };
    Ok(Reported {
        counter: moved.after,
        wake,
    })
}

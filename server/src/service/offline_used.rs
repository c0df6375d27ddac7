//! Offline codes (issue 12), a host's report of a code it accepted while pushauthd was down:
//! checked against the device's secret, recorded once, and announced to the user's devices.
//! The rest of the rules are in [`super::offline`].

use pushauth_proto::hotp::{hotp, HotpAlg};
use pushauth_proto::names::{check_id, check_user};
use pushauth_proto::offline::{OfflineUsedRequest, MAX_WINDOW};
use pushauth_proto::wire::NOTICE_OFFLINE_CODE_USED;
use pushauth_proto::Context;

use super::keys::{self, RpCaller};
use super::offline::Offline;
use super::{notices, Error, Result};
use crate::clock::{parse_rfc3339, Millis};
use crate::store::{AuditEntry, NoticeRecord, OfflineSecretRecord, Store};

/// Wrong codes in reports of one relying party for one device after which every report of
/// that pair is refused unchecked, on every replica, until an administrator unlocks the user
/// (a host only reports codes that matched the device's values, so one wrong code already
/// means a broken or broken-into host; ten stop guessing a 6-digit value). Counted in the
/// store ([`crate::store::CountStore::count_offline_check`]).
pub const MAX_WRONG_REPORTS: u64 = 10;

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
    // Counted only while the key holds (a report held up past a revocation counts nothing).
    let counted = keys::atomically_for(s, rp, |s| {
        Ok(s.count_offline_check(&req.device_id, &rp.rp_id)?)
    })?;
    let blocked = counted > MAX_WRONG_REPORTS;
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
    let recorded = keys::atomically_for(s, rp, |s| {
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

#[cfg(test)]
mod tests {
    use pushauth_proto::offline::OfflineUsedRequest;

    use super::report_used;
    use crate::bounds::SignatureFailures;
    use crate::config::OfflineConfig;
    use crate::offline::OfflineKey;
    use crate::service::keys::{self, RpKey};
    use crate::service::offline::{self, Offline};
    use crate::service::Error;
    use crate::store::tests::{enrolled, store};
    use crate::store::Store;

    /// Session 17 review: a report authenticated before `rp rotate` and held up until after it
    /// returned writes nothing and answers 401. Its wrong-report count, the first thing it
    /// writes, is made only while the key holds: else it would count against the id the new
    /// key keeps (and answer 403).
    #[test]
    fn session17_an_offline_report_held_up_past_a_rotation_writes_nothing() {
        let store = store();
        let s: &dyn Store = &*store;
        let (rp, api_key) = keys::added(s);
        let old = keys::authenticate(s, &RpKey::parse(&api_key, "not-this").unwrap()).unwrap();
        enrolled(s, "alice", "d1");
        let config = OfflineConfig::default();
        let key = OfflineKey::from_bytes(&[7; 32]);
        offline::issue(s, &config, &key, "d1", 10).unwrap().unwrap();
        s.offline_served_to("d1", 5).unwrap();
        let refusals = SignatureFailures::default();
        let off = Offline {
            config: &config,
            key: &key,
            refusals: &refusals,
        };

        // The revocation (here a rotation) returns; the request authenticated before it runs now.
        keys::rotate(s, &rp.id, 20).unwrap();
        let wrong = OfflineUsedRequest {
            device_id: "d1".into(),
            counter: 1,
            code: "000000".into(),
            used_at: "2026-01-01T00:00:00Z".into(),
        };
        let answer = report_used(s, &old, off, "alice", &wrong, 30);
        let checks = store.count("SELECT count(*) FROM offline_checks");
        let refused_rows =
            store.count("SELECT count(*) FROM audit WHERE kind = 'offline_report_refused'");
        assert!(
            matches!(answer, Err(Error::Unauthorized(_))) && checks == 0 && refused_rows == 0,
            "after the rotation returned: answer {answer:?}, offline_checks rows {checks}, \
             offline_report_refused rows {refused_rows}"
        );
    }
}

//! The audit rows both backends write: one constructor per event, so that an event's kind and
//! the wording of its row live in one place. Where the PostgreSQL backend writes the row in
//! SQL (`challenge_created`, `challenge_answered`), the detail text is shared on its own.

use super::{
    AnswerRecord, AuditEntry, ChallengeRecord, DeviceRecord, NewChallenge, NewDevice,
    NewRpEnrollment, RelyingPartyRecord,
};
use crate::clock::{self, Millis};
use crate::limits::Refusal;

/// `challenge_expired`: a due challenge expired.
pub(crate) fn challenge_expired(user: &str, id: &str) -> AuditEntry {
    AuditEntry {
        kind: "challenge_expired",
        user: Some(user.to_owned()),
        challenge_id: Some(id.to_owned()),
        ..AuditEntry::default()
    }
}

/// The detail of `challenge_created`: its relying party, how many devices, whether a code;
/// for an approval by someone else (issue 14), also who asked, what and why, so that the audit
/// log alone tells requester, approver (the challenge's user), command, reason and outcome.
pub(crate) fn challenge_created_detail(new: &NewChallenge, devices: usize) -> String {
    let mut detail = format!(
        "rp {}, {devices} device(s), code {}",
        new.rp_id,
        if new.code.is_some() { "on" } else { "off" }
    );
    let get = |key: &str| new.context.get(key).map(String::as_str);
    if get("action") == Some(pushauth_proto::wire::ACTION_APPROVAL) {
        detail.push_str(&format!(
            ", approval asked by {:?}: {:?}",
            get("requester").unwrap_or(""),
            get("message").unwrap_or("")
        ));
        if let Some(command) = get("command") {
            detail.push_str(&format!(", command {command:?}"));
        }
        if let Some(reason) = get("reason") {
            detail.push_str(&format!(", reason {reason:?}"));
        }
    }
    detail
}

/// `challenge_created`: a challenge was pushed to `devices` devices.
pub(crate) fn challenge_created(new: &NewChallenge, devices: usize) -> AuditEntry {
    AuditEntry {
        kind: "challenge_created",
        user: Some(new.user.clone()),
        challenge_id: Some(new.id.clone()),
        detail: Some(challenge_created_detail(new, devices)),
        ..AuditEntry::default()
    }
}

/// The detail of `challenge_answered`: the decision, and its reason if any.
pub(crate) fn challenge_answered_detail(answer: &AnswerRecord) -> String {
    match answer.reason {
        Some(reason) => format!("{} ({reason})", answer.decision),
        None => answer.decision.to_string(),
    }
}

/// `challenge_answered`: a device answered challenge `id` of `user`.
pub(crate) fn challenge_answered(user: &str, id: &str, answer: &AnswerRecord) -> AuditEntry {
    AuditEntry {
        kind: "challenge_answered",
        user: Some(user.to_owned()),
        device_id: Some(answer.device_id.clone()),
        challenge_id: Some(id.to_owned()),
        detail: Some(challenge_answered_detail(answer)),
    }
}

/// `challenge_cancelled`: the open challenge `id` (`current`) was cancelled.
pub(crate) fn challenge_cancelled(current: &ChallengeRecord, id: &str) -> AuditEntry {
    AuditEntry {
        kind: "challenge_cancelled",
        user: Some(current.user.clone()),
        challenge_id: Some(id.to_owned()),
        detail: Some(format!("rp {}", current.rp_id)),
        ..AuditEntry::default()
    }
}

/// `revoked`: a device was revoked by `actor`.
pub(crate) fn revoked(device: &DeviceRecord, actor: &str) -> AuditEntry {
    AuditEntry {
        kind: "revoked",
        user: Some(device.user.clone()),
        device_id: Some(device.id.clone()),
        detail: Some(format!("by {actor}")),
        ..AuditEntry::default()
    }
}

/// `enrollment_created`: an enrollment token was made for `user` (by the command line).
pub(crate) fn enrollment_created(user: &str, expires_at: Millis) -> AuditEntry {
    AuditEntry {
        kind: "enrollment_created",
        user: Some(user.to_owned()),
        detail: Some(format!("expires {}", clock::rfc3339(expires_at))),
        ..AuditEntry::default()
    }
}

/// `enrollment_created`: a relying party's link was recorded, `via` it, approved (or not) by
/// `approved_by`.
pub(crate) fn rp_enrollment_created(
    new: &NewRpEnrollment,
    via: &str,
    approved_by: Option<&str>,
) -> AuditEntry {
    let approval_text = match (&new.approval, approved_by) {
        (Some(c), Some(d)) => format!(", approved by device {d} (challenge {c})"),
        (Some(c), None) => format!(", approval challenge {c}"),
        (None, Some(by)) => format!(", approved by {by}"),
        _ => ", no device to approve (bootstrap)".to_owned(),
    };
    AuditEntry {
        kind: "enrollment_created",
        user: Some(new.user.clone()),
        device_id: approved_by.map(str::to_owned),
        challenge_id: new.approval.clone(),
        detail: Some(format!(
            "expires {}, via {via}{approval_text}",
            clock::rfc3339(new.expires_at)
        )),
    }
}

/// `device_enrolled`: an enrollment was redeemed and `device` added to `user`.
pub(crate) fn device_enrolled(
    user: &str,
    device: &NewDevice,
    source: Option<&str>,
    via: &str,
    approved_by: Option<&str>,
) -> AuditEntry {
    AuditEntry {
        kind: "device_enrolled",
        user: Some(user.to_owned()),
        device_id: Some(device.id.clone()),
        detail: Some(format!(
            "name {:?}, alg {}, source {}, via {via}, approved_by {}",
            device.name,
            device.alg,
            source.unwrap_or("unknown"),
            approved_by.unwrap_or("none")
        )),
        ..AuditEntry::default()
    }
}

/// `grace_login`: a login was approved without a push, inside the grace window of `of`.
pub(crate) fn grace_login(
    new: &NewChallenge,
    device_id: &str,
    of: &str,
    approved_at: Millis,
) -> AuditEntry {
    AuditEntry {
        kind: "grace_login",
        user: Some(new.user.clone()),
        device_id: Some(device_id.to_owned()),
        challenge_id: Some(new.id.clone()),
        detail: Some(format!(
            "rp {}, no push: grace of {of} approved {}",
            new.rp_id,
            clock::rfc3339(approved_at)
        )),
    }
}

/// `grace_ended`: every grace window of `user` was ended by `by`.
pub(crate) fn grace_ended(user: &str, device_id: Option<&str>, by: &str) -> AuditEntry {
    AuditEntry {
        kind: "grace_ended",
        user: Some(user.to_owned()),
        device_id: device_id.map(str::to_owned),
        detail: Some(format!("every grace window ended by {by}")),
        ..AuditEntry::default()
    }
}

/// The start of a `rate_limited` row's detail, the same for every source: a minute's
/// refusals of one relying party and kind count in the row that starts so.
pub(crate) fn rate_limited_prefix(new: &NewChallenge, refusal: &Refusal) -> String {
    format!("{} (rp {}, ", refusal.code().as_str(), new.rp_id)
}

/// `rate_limited`: a challenge was refused by the limits.
pub(crate) fn rate_limited(new: &NewChallenge, refusal: &Refusal) -> AuditEntry {
    AuditEntry {
        kind: "rate_limited",
        user: Some(new.user.clone()),
        detail: Some(format!(
            "{}source {:?})",
            rate_limited_prefix(new, refusal),
            new.source
        )),
        ..AuditEntry::default()
    }
}

/// `user_locked`: a report on challenge `id` paused pushes from its relying party and
/// `source` until `until`.
pub(crate) fn user_locked_reported(
    current: &ChallengeRecord,
    id: &str,
    device_id: &str,
    source: &str,
    until: Millis,
) -> AuditEntry {
    AuditEntry {
        kind: "user_locked",
        user: Some(current.user.clone()),
        device_id: Some(device_id.to_owned()),
        challenge_id: Some(id.to_owned()),
        detail: Some(format!(
            "reported; pushes from rp {}, source {:?} paused until {}",
            current.rp_id,
            source,
            clock::rfc3339(until)
        )),
    }
}

/// `user_locked`: `count` wrong codes in a row stopped all pushes to the user.
pub(crate) fn user_locked_wrong_codes(
    current: &ChallengeRecord,
    device_id: &str,
    count: u32,
) -> AuditEntry {
    AuditEntry {
        kind: "user_locked",
        user: Some(current.user.clone()),
        device_id: Some(device_id.to_owned()),
        challenge_id: Some(current.id.clone()),
        detail: Some(format!(
            "{count} wrong codes in a row; all pushes to the user stopped until \
             pushauthd unlock"
        )),
    }
}

/// `user_unlocked`: `by` lifted the user's locks and forgot their wrong codes.
pub(crate) fn user_unlocked(
    user: &str,
    by: &str,
    locks: u64,
    wrong_codes: u32,
    wrong_backup: u32,
) -> AuditEntry {
    AuditEntry {
        kind: "user_unlocked",
        user: Some(user.to_owned()),
        detail: Some(format!(
            "by {by}; {locks} lock(s) lifted, {wrong_codes} wrong code(s) forgotten, \
             counters reset{}",
            if wrong_backup > 0 {
                format!(", {wrong_backup} wrong backup code(s) forgotten")
            } else {
                String::new()
            }
        )),
        ..AuditEntry::default()
    }
}

/// `push_subscription_set`: a device's Web Push subscription was stored.
pub(crate) fn push_subscription_set(user: &str, device_id: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        kind: "push_subscription_set",
        user: Some(user.to_owned()),
        device_id: Some(device_id.to_owned()),
        detail: Some(detail.to_owned()),
        ..AuditEntry::default()
    }
}

/// `push_subscription_removed`: a device's Web Push subscription was deleted.
pub(crate) fn push_subscription_removed(user: String, device_id: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        kind: "push_subscription_removed",
        user: Some(user),
        device_id: Some(device_id.to_owned()),
        detail: Some(detail.to_owned()),
        ..AuditEntry::default()
    }
}

/// `rp_created`: a relying party was added (`users`: its users, as stored).
pub(crate) fn rp_created(rp: &RelyingPartyRecord, users: &str) -> AuditEntry {
    AuditEntry {
        kind: "rp_created",
        detail: Some(format!(
            "id {}, name {:?}, users {users}, enroll {}, bootstrap {}",
            rp.id, rp.name, rp.enroll, rp.bootstrap
        )),
        ..AuditEntry::default()
    }
}

/// `rp_revoked`: a relying party was revoked.
pub(crate) fn rp_revoked(rp: &RelyingPartyRecord) -> AuditEntry {
    AuditEntry {
        kind: "rp_revoked",
        detail: Some(format!("id {}, name {:?}", rp.id, rp.name)),
        ..AuditEntry::default()
    }
}

/// `rp_rotated`: a relying party's key was replaced.
pub(crate) fn rp_rotated(rp: &RelyingPartyRecord) -> AuditEntry {
    AuditEntry {
        kind: "rp_rotated",
        detail: Some(format!("id {}, name {:?}", rp.id, rp.name)),
        ..AuditEntry::default()
    }
}

//! Enrollment tokens: the admin's links, relying parties' links (checked against the facts read
//! in the same transaction), and redeeming a token into a device.

use rusqlite::{params, OptionalExtension};

use super::audit::write_audit;
use super::challenges::select_challenge;
use super::connection::Db;
use super::relying_parties::select_rp;
use crate::clock::{self, Millis};
use crate::store::{
    ApprovalFacts, AuditEntry, DeviceRecord, EnrollFacts, EnrollmentRecord, NewDevice,
    NewRpEnrollment, Redeem, StoreResult,
};

/// [`Store::create_enrollment`](crate::store::Store::create_enrollment).
pub(super) fn create_enrollment<D: Db>(
    db: &D,
    user: &str,
    token_hash: &[u8; 32],
    now: Millis,
    expires_at: Millis,
) -> StoreResult<()> {
    db.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO users (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![user, now])?;
        tx.prepare_cached(
            "INSERT INTO enrollments (token_hash, user, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![&token_hash[..], user, now, expires_at])?;
        write_audit(
            tx,
            &AuditEntry {
                kind: "enrollment_created",
                user: Some(user.to_owned()),
                detail: Some(format!("expires {}", clock::rfc3339(expires_at))),
                ..AuditEntry::default()
            },
            now,
        )
    })
}

/// [`Store::get_enrollment`](crate::store::Store::get_enrollment).
pub(super) fn get_enrollment<D: Db>(
    db: &D,
    token_hash: &[u8; 32],
) -> StoreResult<Option<EnrollmentRecord>> {
    db.read(|conn| {
        conn.prepare_cached(
            "SELECT user, expires_at, used_at IS NOT NULL FROM enrollments WHERE token_hash = ?1",
        )?
        .query_row([&token_hash[..]], |row| {
            Ok(EnrollmentRecord {
                user: row.get(0)?,
                expires_at: row.get(1)?,
                used: row.get(2)?,
            })
        })
        .optional()
    })
}

/// [`Store::create_rp_enrollment`](crate::store::Store::create_rp_enrollment).
pub(super) fn create_rp_enrollment<D: Db>(
    db: &D,
    new: &NewRpEnrollment,
    check: &dyn Fn(&EnrollFacts) -> Result<(), crate::enrollment::Refusal>,
) -> StoreResult<Result<(), crate::enrollment::Refusal>> {
    let now = new.created_at;
    db.write(|tx| {
        let (active_devices, bound_devices): (i64, i64) = tx
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM devices WHERE user = ?1",
            )?
            .query_row([&new.user], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let approval = match &new.approval {
            None => None,
            Some(id) => match select_challenge(tx, id)? {
                None => None,
                Some(challenge) => {
                    let decided_at: Millis = tx
                        .prepare_cached("SELECT updated_at FROM challenges WHERE id = ?1")?
                        .query_row([id], |r| r.get(0))?;
                    let used = tx
                        .prepare_cached("SELECT 1 FROM enrollments WHERE approval = ?1")?
                        .exists([id])?;
                    let approver_active = match &challenge.device_id {
                        Some(device) => tx
                            .prepare_cached(
                                "SELECT 1 FROM devices WHERE id = ?1 AND user = ?2 AND revoked_at IS NULL",
                            )?
                            .exists(params![device, challenge.user])?,
                        None => false,
                    };
                    Some(ApprovalFacts {
                        challenge,
                        decided_at,
                        used,
                        approver_active,
                    })
                }
            },
        };
        let approved_by = approval
            .as_ref()
            .and_then(|a| a.challenge.device_id.clone());
        let facts = EnrollFacts {
            active_devices: usize::try_from(active_devices).unwrap_or(usize::MAX),
            bound_devices: usize::try_from(bound_devices).unwrap_or(usize::MAX),
            approval,
        };
        if let Err(refusal) = check(&facts) {
            write_audit(
                tx,
                &AuditEntry {
                    kind: "enrollment_refused",
                    user: Some(new.user.clone()),
                    challenge_id: new.approval.clone(),
                    detail: Some(format!("{} (rp {})", refusal.code().as_str(), new.rp_id)),
                    ..AuditEntry::default()
                },
                now,
            )?;
            return Ok(Err(refusal));
        }
        tx.prepare_cached(
            "INSERT INTO users (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![new.user, now])?;
        let via = format!("rp:{}", new.rp_id);
        tx.prepare_cached(
            "INSERT INTO enrollments (token_hash, user, created_at, expires_at, via, approval, approved_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            &new.token_hash[..],
            new.user,
            now,
            new.expires_at,
            via,
            new.approval,
            approved_by
        ])?;
        let approval_text = match (&new.approval, &approved_by) {
            (Some(c), Some(d)) => format!(", approved by device {d} (challenge {c})"),
            (Some(c), None) => format!(", approval challenge {c}"),
            _ => ", no device to approve (bootstrap)".to_owned(),
        };
        write_audit(
            tx,
            &AuditEntry {
                kind: "enrollment_created",
                user: Some(new.user.clone()),
                device_id: approved_by.clone(),
                challenge_id: new.approval.clone(),
                detail: Some(format!(
                    "expires {}, via {via}{approval_text}",
                    clock::rfc3339(new.expires_at)
                )),
            },
            now,
        )?;
        Ok(Ok(()))
    })
}

/// [`Store::redeem_enrollment`](crate::store::Store::redeem_enrollment).
pub(super) fn redeem_enrollment<D: Db>(
    db: &D,
    token_hash: &[u8; 32],
    device: &NewDevice,
    source: Option<&str>,
    now: Millis,
) -> StoreResult<Redeem> {
    db.write(|tx| {
        type Found = (String, Millis, bool, String, Option<String>);
        let found: Option<Found> = tx
            .prepare_cached(
                "SELECT user, expires_at, used_at IS NOT NULL, via, approved_by FROM enrollments WHERE token_hash = ?1",
            )?
            .query_row([&token_hash[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((user, expires_at, used, via, approved_by)) = found else {
            return Ok(Redeem::Unknown);
        };
        if used {
            return Ok(Redeem::Used);
        }
        if now >= expires_at {
            return Ok(Redeem::Expired);
        }
        // A relying party's link is only as good as what allowed it, checked again now
        // (the link lives up to a week): the relying party still holds the right, a
        // bootstrap link still finds the user without a device, the approving device is
        // still active.
        if let Some(rp_id) = via.strip_prefix("rp:") {
            use crate::enrollment::Refusal;
            // The admin token used as a relying party has every right and cannot be revoked.
            let (rp_ok, may_bootstrap) = if rp_id == crate::auth::ADMIN_RP {
                (true, true)
            } else {
                let rp = select_rp(tx, rp_id)?;
                let rp_ok = rp.as_ref().is_some_and(|rp| {
                    rp.revoked_at.is_none()
                        && rp.enroll
                        && crate::rights::user_in_scope(&rp.users, &user)
                });
                (rp_ok, rp.as_ref().is_some_and(|rp| rp.bootstrap))
            };
            let refusal = if !rp_ok {
                Some(Refusal::RelyingPartyRevoked)
            } else {
                match &approved_by {
                    None => {
                        let (active, bound): (i64, i64) = tx
                            .prepare_cached(
                                "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM devices WHERE user = ?1",
                            )?
                            .query_row([&user], |r| Ok((r.get(0)?, r.get(1)?)))?;
                        if active > 0 {
                            Some(Refusal::ApprovalRequired)
                        } else {
                            crate::enrollment::bootstrap_refusal(
                                usize::try_from(bound).unwrap_or(usize::MAX),
                                may_bootstrap,
                            )
                        }
                    }
                    Some(approver) => {
                        let active = tx
                            .prepare_cached(
                                "SELECT 1 FROM devices WHERE id = ?1 AND user = ?2 AND revoked_at IS NULL",
                            )?
                            .exists(params![approver, user])?;
                        (!active).then_some(Refusal::ApprovalInvalid)
                    }
                }
            };
            if let Some(refusal) = refusal {
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "enrollment_refused",
                        user: Some(user.clone()),
                        device_id: approved_by.clone(),
                        detail: Some(format!(
                            "{} at redemption (via {via})",
                            refusal.code().as_str()
                        )),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
                return Ok(Redeem::Refused(refusal));
            }
        }
        let changed = tx
            .prepare_cached(
                "UPDATE enrollments SET used_at = ?2, device_id = ?3 WHERE token_hash = ?1 AND used_at IS NULL",
            )?
            .execute(params![&token_hash[..], now, device.id])?;
        if changed == 0 {
            return Ok(Redeem::Used);
        }
        tx.prepare_cached(
            "INSERT INTO devices (id, user, name, alg, public_key, created_at, source, via, approved_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            device.id,
            user,
            device.name,
            device.alg,
            device.public_key,
            now,
            source,
            via,
            approved_by
        ])?;
        write_audit(
            tx,
            &AuditEntry {
                kind: "device_enrolled",
                user: Some(user.clone()),
                device_id: Some(device.id.clone()),
                detail: Some(format!(
                    "name {:?}, alg {}, source {}, via {via}, approved_by {}",
                    device.name,
                    device.alg,
                    source.unwrap_or("unknown"),
                    approved_by.as_deref().unwrap_or("none")
                )),
                ..AuditEntry::default()
            },
            now,
        )?;
        Ok(Redeem::Enrolled(Box::new(DeviceRecord {
            id: device.id.clone(),
            user,
            name: device.name.clone(),
            alg: device.alg.clone(),
            public_key: device.public_key.clone(),
            created_at: now,
            last_seen_at: None,
            revoked_at: None,
            source: source.map(str::to_owned),
            via: Some(via),
            approved_by,
        })))
    })
}

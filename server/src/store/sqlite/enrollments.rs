//! Enrollment tokens: the admin's links, relying parties' links (the facts the service decides
//! on, and the link it allowed), and redeeming a token into a device.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::write_audit;
use super::challenges::select_challenge;
use super::connection::Db;
use crate::clock::Millis;
use crate::store::{
    events, ApprovalFacts, DeviceRecord, EnrollFacts, EnrollmentRecord, NewDevice, NewRpEnrollment,
    Redeem, StoreResult,
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
            &events::enrollment_created(user, expires_at),
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
            "SELECT user, expires_at, used_at IS NOT NULL, via, approved_by FROM enrollments \
             WHERE token_hash = ?1",
        )?
        .query_row([&token_hash[..]], |row| {
            Ok(EnrollmentRecord {
                user: row.get(0)?,
                expires_at: row.get(1)?,
                used: row.get(2)?,
                via: row.get(3)?,
                approved_by: row.get(4)?,
            })
        })
        .optional()
    })
}

/// [`Store::enroll_facts`](crate::store::Store::enroll_facts).
pub(super) fn enroll_facts<D: Db>(
    db: &D,
    user: &str,
    approval: Option<&str>,
) -> StoreResult<EnrollFacts> {
    db.read(|tx| {
        let (active_devices, bound_devices) = device_counts(tx, user)?;
        let approval = match approval {
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
        Ok(EnrollFacts {
            active_devices,
            bound_devices,
            approval,
        })
    })
}

/// The user's active devices and every device ever bound to them (0 and 0 for an unknown user).
fn device_counts(tx: &Connection, user: &str) -> rusqlite::Result<(usize, usize)> {
    let (active, bound): (i64, i64) = tx
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM devices WHERE user = ?1",
        )?
        .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((
        usize::try_from(active).unwrap_or(usize::MAX),
        usize::try_from(bound).unwrap_or(usize::MAX),
    ))
}

/// [`Store::create_rp_enrollment`](crate::store::Store::create_rp_enrollment).
pub(super) fn create_rp_enrollment<D: Db>(
    db: &D,
    new: &NewRpEnrollment,
    approved_by: Option<&str>,
) -> StoreResult<()> {
    let now = new.created_at;
    db.write(|tx| {
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
        write_audit(
            tx,
            &events::rp_enrollment_created(new, &via, approved_by),
            now,
        )
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
            &events::device_enrolled(&user, device, source, &via, approved_by.as_deref()),
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

//! Enrollment tokens: the admin's links, relying parties' links (the facts the service decides
//! on, and the link it allowed), and redeeming a token into a device (compare-and-set on
//! `used_at IS NULL`, so a token enrolls one device even when replicas race).

use super::audit::later_audit;
use super::challenges::select_challenge;
use super::db::{Conn, Db};
use super::error::{get, PgError};
use super::notify;
use crate::clock::Millis;
use crate::store::{
    events, ApprovalFacts, DeviceRecord, EnrollFacts, EnrollmentRecord, NewDevice, NewRpEnrollment,
    Redeem, StoreResult,
};

fn add_user(c: &Conn<'_>, user: &str, now: Millis) -> Result<(), PgError> {
    c.exec(
        "INSERT INTO users (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&user, &now],
    )?;
    Ok(())
}

/// [`Store::create_enrollment`](crate::store::Store::create_enrollment).
pub(super) fn create_enrollment<D: Db>(
    db: &D,
    user: &str,
    token_hash: &[u8; 32],
    now: Millis,
    expires_at: Millis,
) -> StoreResult<()> {
    db.write(|c| {
        add_user(c, user, now)?;
        c.exec(
            "INSERT INTO enrollments (token_hash, user_name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
            &[&&token_hash[..], &user, &now, &expires_at],
        )?;
        later_audit(c, &events::enrollment_created(user, expires_at), now)?;
        Ok(())
    })
}

/// [`Store::get_enrollment`](crate::store::Store::get_enrollment).
pub(super) fn get_enrollment<D: Db>(
    db: &D,
    token_hash: &[u8; 32],
) -> StoreResult<Option<EnrollmentRecord>> {
    db.read(|c| {
        c.opt(
            "SELECT user_name, expires_at, used_at IS NOT NULL, via, approved_by FROM enrollments \
             WHERE token_hash = $1",
            &[&&token_hash[..]],
        )?
        .map(|r| {
            Ok(EnrollmentRecord {
                user: get(&r, 0)?,
                expires_at: get(&r, 1)?,
                used: get(&r, 2)?,
                via: get(&r, 3)?,
                approved_by: get(&r, 4)?,
            })
        })
        .transpose()
    })
}

/// [`Store::enroll_facts`](crate::store::Store::enroll_facts).
pub(super) fn enroll_facts<D: Db>(
    db: &D,
    user: &str,
    approval: Option<&str>,
) -> StoreResult<EnrollFacts> {
    db.read(|c| {
        let row = c.one(
            "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM devices \
             WHERE user_name = $1",
            &[&user],
        )?;
        let active: i64 = get(&row, 0)?;
        let bound: i64 = get(&row, 1)?;
        let approval = match approval {
            None => None,
            Some(id) => match select_challenge(c, id, false)? {
                None => None,
                Some(challenge) => {
                    let decided_at: Millis = get(
                        &c.one("SELECT updated_at FROM challenges WHERE id = $1", &[&id])?,
                        0,
                    )?;
                    let used = c.exists("SELECT 1 FROM enrollments WHERE approval = $1", &[&id])?;
                    let approver_active = match &challenge.device_id {
                        Some(device) => c.exists(
                            "SELECT 1 FROM devices WHERE id = $1 AND user_name = $2 \
                             AND revoked_at IS NULL",
                            &[device, &challenge.user],
                        )?,
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
            active_devices: usize::try_from(active).unwrap_or(usize::MAX),
            bound_devices: usize::try_from(bound).unwrap_or(usize::MAX),
            approval,
        })
    })
}

/// [`Store::create_rp_enrollment`](crate::store::Store::create_rp_enrollment).
pub(super) fn create_rp_enrollment<D: Db>(
    db: &D,
    new: &NewRpEnrollment,
    approved_by: Option<&str>,
) -> StoreResult<()> {
    let now = new.created_at;
    db.write(|c| {
        add_user(c, &new.user, now)?;
        let via = format!("rp:{}", new.rp_id);
        c.exec(
            "INSERT INTO enrollments (token_hash, user_name, created_at, expires_at, via, \
             approval, approved_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &&new.token_hash[..],
                &new.user,
                &now,
                &new.expires_at,
                &via,
                &new.approval,
                &approved_by,
            ],
        )?;
        later_audit(
            c,
            &events::rp_enrollment_created(new, &via, approved_by),
            now,
        )?;
        Ok(())
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
    db.write(|c| {
        let Some(found) = c.opt(
            "SELECT user_name, expires_at, used_at IS NOT NULL, via, approved_by \
             FROM enrollments WHERE token_hash = $1 FOR UPDATE",
            &[&&token_hash[..]],
        )?
        else {
            return Ok(Redeem::Unknown);
        };
        let user: String = get(&found, 0)?;
        let expires_at: Millis = get(&found, 1)?;
        let used: bool = get(&found, 2)?;
        let via: String = get(&found, 3)?;
        let approved_by: Option<String> = get(&found, 4)?;
        if used {
            return Ok(Redeem::Used);
        }
        if now >= expires_at {
            return Ok(Redeem::Expired);
        }
        let changed = c.exec(
            "UPDATE enrollments SET used_at = $2, device_id = $3 \
             WHERE token_hash = $1 AND used_at IS NULL",
            &[&&token_hash[..], &now, &device.id],
        )?;
        if changed == 0 {
            return Ok(Redeem::Used);
        }
        c.exec(
            "INSERT INTO devices (id, user_name, name, alg, public_key, created_at, source, via, \
             approved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &device.id,
                &user,
                &device.name,
                &device.alg,
                &device.public_key,
                &now,
                &source,
                &via,
                &approved_by,
            ],
        )?;
        later_audit(
            c,
            &events::device_enrolled(&user, device, source, &via, approved_by.as_deref()),
            now,
        )?;
        // The user's other devices hear of the new binding on every replica.
        notify::user_devices(c, &user, &device.id)?;
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

//! Devices: their records, the per-request nonces (a primary key: a nonce used on one replica
//! is refused on every other), and revocation. Devices are never deleted.

use super::audit::later_audit;
use super::db::Db;
use super::error::get;
use super::notify;
use super::rows::{all, device_from_row, storable, DEVICE_COLUMNS};
use crate::clock::Millis;
use crate::store::{events, DeviceRecord, StoreResult};

/// [`Store::user_devices`](crate::store::Store::user_devices).
pub(super) fn user_devices<D: Db>(db: &D, user: &str) -> StoreResult<Option<Vec<DeviceRecord>>> {
    if !storable(user) {
        return Ok(None);
    }
    db.read(|c| {
        if !c.exists("SELECT 1 FROM users WHERE name = $1", &[&user])? {
            return Ok(None);
        }
        let rows = c.query(
            &format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_name = $1 ORDER BY created_at, id"
            ),
            &[&user],
        )?;
        Ok(Some(all(rows, device_from_row)?))
    })
}

/// [`Store::get_device`](crate::store::Store::get_device).
pub(super) fn get_device<D: Db>(db: &D, id: &str) -> StoreResult<Option<DeviceRecord>> {
    if !storable(id) {
        return Ok(None);
    }
    db.read(|c| {
        c.opt(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"),
            &[&id],
        )?
        .map(|r| device_from_row(&r))
        .transpose()
    })
}

/// [`Store::use_device_nonce`](crate::store::Store::use_device_nonce).
pub(super) fn use_device_nonce<D: Db>(
    db: &D,
    device_id: &str,
    nonce: &str,
    now: Millis,
    valid_until: Millis,
) -> StoreResult<bool> {
    // Refused as seen: a nonce that cannot be stored cannot be proven unused.
    if !storable(device_id) || !storable(nonce) {
        return Ok(false);
    }
    // One statement, which commits by itself: the nonce, and when it is fresh the device's
    // last_seen_at (second granularity is plenty and spares a row write per request). No
    // atomic unit reads either, so it needs not take (nor wait for) their lock.
    let row = db.write_alone(
        "WITH fresh AS (INSERT INTO device_nonces (device_id, nonce, valid_until) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1), \
         seen AS (UPDATE devices SET last_seen_at = $4 WHERE id = $1 \
         AND EXISTS (SELECT 1 FROM fresh) \
         AND (last_seen_at IS NULL OR last_seen_at <= $4::bigint - 1000)) \
         SELECT count(*) FROM fresh",
        &[&device_id, &nonce, &valid_until, &now],
    )?;
    let fresh: i64 = get(&row, 0)?;
    Ok(fresh == 1)
}

/// [`Store::revoke_device`](crate::store::Store::revoke_device).
pub(super) fn revoke_device<D: Db>(
    db: &D,
    id: &str,
    actor: &str,
    now: Millis,
) -> StoreResult<Option<DeviceRecord>> {
    if !storable(id) {
        return Ok(None);
    }
    db.write(|c| {
        // The user's row first, as every answer holds it from its first statement: an answer
        // in flight commits before the revocation does, and one that waited for the revocation
        // checks the device in a snapshot that sees it revoked. Without it, an answer whose
        // check ran before this commit was kept after it (newcomer walk n2).
        c.exists(
            "SELECT 1 FROM users WHERE name = (SELECT user_name FROM devices WHERE id = $1) \
             FOR UPDATE",
            &[&id],
        )?;
        let changed = c.exec(
            "UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now],
        )?;
        let device = c
            .opt(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"),
                &[&id],
            )?
            .map(|r| device_from_row(&r))
            .transpose()?;
        if let (1, Some(device)) = (changed, &device) {
            // A revoked device can answer nothing, so its open challenges stop listing it.
            let dropped = c.query(
                "DELETE FROM open_challenge_devices WHERE device_id = $1 RETURNING challenge_id",
                &[&id],
            )?;
            for row in &dropped {
                let challenge: String = get(row, 0)?;
                notify::changed(c, Some(&challenge), &[])?;
            }
            notify::changed(c, None, &[id.to_owned()])?;
            // A revoked device gets no pushes, nor offline codes: their rows go with it.
            c.exec(
                "DELETE FROM push_subscriptions WHERE device_id = $1",
                &[&id],
            )?;
            c.exec("DELETE FROM offline_secrets WHERE device_id = $1", &[&id])?;
            later_audit(c, &events::revoked(device, actor), now)?;
        }
        Ok(device)
    })
}

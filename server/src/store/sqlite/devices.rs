//! Devices: their records, the per-request nonces that stop a signed request from being
//! replayed, and revocation. Devices are never deleted (the record of every binding).

use rusqlite::{params, OptionalExtension};

use super::audit::write_audit;
use super::connection::Db;
use super::rows::{device_from_row, DEVICE_COLUMNS};
use crate::clock::Millis;
use crate::store::{events, DeviceRecord, Spent, StoreResult};

/// [`Store::user_devices`](crate::store::Store::user_devices).
pub(super) fn user_devices<D: Db>(db: &D, user: &str) -> StoreResult<Option<Vec<DeviceRecord>>> {
    db.read(|conn| {
        let known = conn
            .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
            .exists([user])?;
        if !known {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user = ?1 ORDER BY created_at, id"
        ))?;
        let devices = stmt
            .query_map([user], device_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(devices))
    })
}

/// [`Store::get_device`](crate::store::Store::get_device).
pub(super) fn get_device<D: Db>(db: &D, id: &str) -> StoreResult<Option<DeviceRecord>> {
    db.read(|conn| {
        conn.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
        ))?
        .query_row([id], device_from_row)
        .optional()
    })
}

/// [`Store::spend_device_nonce`](crate::store::Store::spend_device_nonce).
pub(super) fn spend_device_nonce<D: Db>(
    db: &D,
    device_id: &str,
    nonce: &str,
    now: Millis,
    valid_until: Millis,
) -> StoreResult<Spent> {
    db.write(|tx| {
        let device = tx
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([device_id], device_from_row)
            .optional()?;
        let Some(device) = device else {
            return Ok(Spent::Unknown);
        };
        if !device.is_active() {
            return Ok(Spent::Revoked);
        }
        let fresh = tx
            .prepare_cached(
                "INSERT INTO device_nonces (device_id, nonce, valid_until) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![device_id, nonce, valid_until])?
            == 1;
        if !fresh {
            return Ok(Spent::Replayed);
        }
        // Second granularity is plenty and spares a page write per request.
        tx.prepare_cached(
            "UPDATE devices SET last_seen_at = ?2 \
             WHERE id = ?1 AND (last_seen_at IS NULL OR last_seen_at <= ?2 - 1000)",
        )?
        .execute(params![device_id, now])?;
        Ok(Spent::Fresh(Box::new(device)))
    })
}

/// [`Store::revoke_device`](crate::store::Store::revoke_device).
pub(super) fn revoke_device<D: Db>(
    db: &D,
    id: &str,
    actor: &str,
    now: Millis,
) -> StoreResult<Option<DeviceRecord>> {
    db.write(|tx| {
        let changed = tx
            .prepare_cached(
                "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, now])?;
        let device = tx
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([id], device_from_row)
            .optional()?;
        if let (1, Some(device)) = (changed, &device) {
            // A revoked device can answer nothing, so its open challenges stop listing it.
            tx.prepare_cached("DELETE FROM open_challenge_devices WHERE device_id = ?1")?
                .execute([id])?;
            // A revoked device gets no pushes: its subscription goes with it.
            tx.prepare_cached("DELETE FROM push_subscriptions WHERE device_id = ?1")?
                .execute([id])?;
            // Nor offline codes (issue 12): its secret goes with it.
            tx.prepare_cached("DELETE FROM offline_secrets WHERE device_id = ?1")?
                .execute([id])?;
            write_audit(tx, &events::revoked(device, actor), now)?;
        }
        Ok(device)
    })
}

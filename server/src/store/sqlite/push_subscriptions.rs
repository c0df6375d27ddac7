//! Web Push subscriptions: one per device, replaced by a new one, deleted with an audit event
//! when the device removes it, when the push service says it is gone, or (in `devices`) when
//! the device is revoked.

use rusqlite::{params, OptionalExtension, Row};

use super::audit::write_audit;
use super::connection::Db;
use crate::clock::Millis;
use crate::store::{events, PushSubscriptionRecord, StoreResult};

const COLUMNS: &str = "s.device_id, s.endpoint, s.p256dh, s.auth, s.created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<PushSubscriptionRecord> {
    Ok(PushSubscriptionRecord {
        device_id: row.get(0)?,
        endpoint: row.get(1)?,
        p256dh: row.get(2)?,
        auth: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// [`Store::set_push_subscription`](crate::store::Store::set_push_subscription).
pub(super) fn set<D: Db>(
    db: &D,
    sub: &PushSubscriptionRecord,
    user: &str,
    detail: &str,
) -> StoreResult<bool> {
    db.write(|tx| {
        let replaced = tx
            .prepare_cached("SELECT 1 FROM push_subscriptions WHERE device_id = ?1")?
            .query_row([&sub.device_id], |_| Ok(()))
            .optional()?
            .is_some();
        tx.prepare_cached(
            "INSERT INTO push_subscriptions (device_id, endpoint, p256dh, auth, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (device_id) DO UPDATE SET endpoint = excluded.endpoint, \
             p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
        )?
        .execute(params![
            sub.device_id,
            sub.endpoint,
            sub.p256dh,
            sub.auth,
            sub.created_at
        ])?;
        write_audit(
            tx,
            &events::push_subscription_set(user, &sub.device_id, detail),
            sub.created_at,
        )?;
        Ok(replaced)
    })
}

/// [`Store::delete_push_subscription`](crate::store::Store::delete_push_subscription).
pub(super) fn delete<D: Db>(
    db: &D,
    device_id: &str,
    endpoint: Option<&str>,
    detail: &str,
    now: Millis,
) -> StoreResult<bool> {
    db.write(|tx| {
        let deleted = tx
            .prepare_cached(
                "DELETE FROM push_subscriptions WHERE device_id = ?1 \
                 AND (?2 IS NULL OR endpoint = ?2)",
            )?
            .execute(params![device_id, endpoint])?;
        let user: Option<String> = if deleted == 0 {
            None
        } else {
            tx.prepare_cached("SELECT user FROM devices WHERE id = ?1")?
                .query_row([device_id], |r| r.get(0))
                .optional()?
        };
        let Some(user) = user else {
            return Ok(false);
        };
        write_audit(
            tx,
            &events::push_subscription_removed(user, device_id, detail),
            now,
        )?;
        Ok(true)
    })
}

/// [`Store::push_subscriptions`](crate::store::Store::push_subscriptions).
pub(super) fn of_devices<D: Db>(
    db: &D,
    device_ids: &[String],
) -> StoreResult<Vec<PushSubscriptionRecord>> {
    db.read(|conn| of_devices_in(conn, device_ids))
}

/// [`of_devices`] on a connection already in use (a creation's transaction).
pub(super) fn of_devices_in(
    conn: &rusqlite::Connection,
    device_ids: &[String],
) -> rusqlite::Result<Vec<PushSubscriptionRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM push_subscriptions AS s JOIN devices AS d ON d.id = s.device_id \
         WHERE s.device_id = ?1 AND d.revoked_at IS NULL"
    ))?;
    let mut out = Vec::new();
    for id in device_ids {
        if let Some(sub) = stmt.query_row([id], from_row).optional()? {
            out.push(sub);
        }
    }
    Ok(out)
}

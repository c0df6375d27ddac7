//! Web Push subscriptions: one per device, replaced by a new one, deleted with an audit event.

use tokio_postgres::Row;

use super::audit::later_audit;
use super::db::Db;
use super::error::{get, PgError};
use crate::clock::Millis;
use crate::store::{events, PushSubscriptionRecord, StoreResult};

fn from_row(row: &Row) -> Result<PushSubscriptionRecord, PgError> {
    Ok(PushSubscriptionRecord {
        device_id: get(row, 0)?,
        endpoint: get(row, 1)?,
        p256dh: get(row, 2)?,
        auth: get(row, 3)?,
        created_at: get(row, 4)?,
    })
}

/// [`Store::set_push_subscription`](crate::store::Store::set_push_subscription).
pub(super) fn set<D: Db>(
    db: &D,
    sub: &PushSubscriptionRecord,
    user: &str,
    detail: &str,
) -> StoreResult<bool> {
    db.write(|c| {
        let replaced = c.exists(
            "SELECT 1 FROM push_subscriptions WHERE device_id = $1 FOR UPDATE",
            &[&sub.device_id],
        )?;
        c.exec(
            "INSERT INTO push_subscriptions (device_id, endpoint, p256dh, auth, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (device_id) DO UPDATE SET endpoint = excluded.endpoint, \
             p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
            &[
                &sub.device_id,
                &sub.endpoint,
                &sub.p256dh,
                &sub.auth,
                &sub.created_at,
            ],
        )?;
        later_audit(
            c,
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
    db.write(|c| {
        let deleted = c.exec(
            "DELETE FROM push_subscriptions WHERE device_id = $1 \
             AND ($2::text IS NULL OR endpoint = $2)",
            &[&device_id, &endpoint],
        )?;
        let user: Option<String> = if deleted == 0 {
            None
        } else {
            c.opt("SELECT user_name FROM devices WHERE id = $1", &[&device_id])?
                .map(|r| get(&r, 0))
                .transpose()?
        };
        let Some(user) = user else {
            return Ok(false);
        };
        later_audit(
            c,
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
    db.read(|c| {
        // In the order of `device_ids`, as SQLite's look-up one by one gives them.
        let rows = c.query(
            "SELECT s.device_id, s.endpoint, s.p256dh, s.auth, s.created_at \
             FROM unnest($1::text[]) WITH ORDINALITY AS w(id, n) \
             JOIN push_subscriptions s ON s.device_id = w.id \
             JOIN devices d ON d.id = s.device_id \
             WHERE d.revoked_at IS NULL ORDER BY w.n",
            &[&device_ids],
        )?;
        rows.iter().map(from_row).collect()
    })
}

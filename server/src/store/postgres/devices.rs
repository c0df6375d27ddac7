//! Devices: their records, the per-request nonces (a primary key: a nonce used on one replica
//! is refused on every other), and revocation. Devices are never deleted.

use super::audit::later_audit;
use super::db::Db;
use super::error::{get, PgError};
use super::kept::Kept;
use super::notify;
use super::rows::{all, device_from_row, storable, DEVICE_COLUMNS, DEVICE_COLUMN_COUNT};
use crate::clock::Millis;
use crate::store::{
    events, DeviceRecord, NonceRefused, RequestNonce, Spent, StoreError, StoreResult,
};

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

/// Active devices by id, as enrolled, for [`device_key`] (see [`Kept`]): whether the device
/// may act is read afresh by [`spend_device_nonce`], which also drops a revoked or unknown
/// one.
pub(super) type DeviceKeys = Kept<DeviceRecord>;

/// Devices a store keeps ([`DeviceKeys`]), a few hundred bytes each.
pub(super) const DEVICE_KEYS_MAX: usize = 4096;

/// [`Store::device_key`](crate::store::Store::device_key): from the store's [`DeviceKeys`]
/// when it has the device, else read (and kept when active).
pub(super) fn device_key<D: Db>(db: &D, id: &str) -> StoreResult<Option<DeviceRecord>> {
    let cache = db.device_keys();
    if let Some(device) = cache.and_then(|c| c.get(id)) {
        return Ok(Some(device));
    }
    let device = get_device(db, id)?;
    if let (Some(cache), Some(device)) = (cache, &device) {
        if device.is_active() {
            cache.keep(id, device.clone());
        }
    }
    Ok(device)
}

/// [`Store::spend_device_nonce`](crate::store::Store::spend_device_nonce).
pub(super) fn spend_device_nonce<D: Db>(
    db: &D,
    device_id: &str,
    nonce: &str,
    now: Millis,
    valid_until: Millis,
) -> StoreResult<Spent> {
    if !storable(device_id) {
        return Ok(Spent::Unknown);
    }
    // Refused as seen: a nonce that cannot be stored cannot be proven unused.
    if !storable(nonce) {
        return Ok(Spent::Replayed);
    }
    // One statement, which commits by itself: the device as it is, the nonce when the device
    // is active, and when the nonce is fresh the device's last_seen_at. No atomic unit decides
    // on nonces or last_seen_at, so it needs not take their lock; the device's row is locked
    // for last_seen_at only when free, never waited for ([`nonce_ctes`]). Always one row: the
    // device's columns are NULL for an unknown id.
    let rows = db.write_alone(
        &format!(
            "WITH {} SELECT d.*, {NONCE_VERDICT} FROM (SELECT 1) AS one LEFT JOIN d ON true",
            nonce_ctes(1, false)
        ),
        &[&device_id, &nonce, &valid_until, &now],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::from(PgError::Data("no row from a nonce's statement".into())))?;
    let spent = match nonce_verdict(row, DEVICE_COLUMN_COUNT)? {
        None => Spent::Fresh(Box::new(device_from_row(row)?)),
        Some(NonceRefused::Replayed) => Spent::Replayed,
        Some(NonceRefused::Revoked) => Spent::Revoked,
        Some(NonceRefused::Unknown) => Spent::Unknown,
    };
    if let Some(cache) = db.device_keys() {
        match &spent {
            Spent::Revoked | Spent::Unknown => cache.forget(device_id),
            // As it is now: should the row ever differ from what was kept (a restore), the
            // next request is checked against the row, not a copy that would refuse it.
            Spent::Fresh(device) => cache.keep(device_id, (**device).clone()),
            Spent::Replayed => {}
        }
    }
    Ok(spent)
}

/// The common table expressions that spend a request's nonce inside the statement that acts
/// on the request (parameters from `$first`: the device id, the nonce, until when to keep it
/// and now; with `signer`, then the signer's algorithm and key, which the device must still
/// have):
/// - `d`: the device (its [`DEVICE_COLUMNS`]), if it exists (and has the signer's key);
/// - `fresh`: one row when the nonce was new and the device active, and is now stored;
/// - `seen`: the device's `last_seen_at` when the nonce was fresh (second granularity is
///   plenty and spares a row write per request), skipped while another transaction holds the
///   row (`SKIP LOCKED`): a transaction left open on a stopped replica (until PostgreSQL's
///   idle timeout ends it) would otherwise hold each of the device's requests for
///   `lock_timeout`, each with a job thread and a connection, and a few of them stall the
///   replica; a missed `last_seen_at` is only a second's news.
///
/// [`NONCE_VERDICT`] reads what they did; the statement's own work must require
/// `EXISTS (SELECT 1 FROM fresh)`.
pub(super) fn nonce_ctes(first: usize, signer: bool) -> String {
    let [id, nonce, until, now, alg, key] = [0, 1, 2, 3, 4, 5].map(|i| first + i);
    let signer = if signer {
        format!(" AND alg = ${alg}::text AND public_key = ${key}::text")
    } else {
        String::new()
    };
    format!(
        "d AS (SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ${id}::text{signer}), \
         fresh AS (INSERT INTO device_nonces (device_id, nonce, valid_until) \
         SELECT ${id}::text, ${nonce}::text, ${until}::bigint \
         WHERE EXISTS (SELECT 1 FROM d WHERE revoked_at IS NULL) \
         ON CONFLICT DO NOTHING RETURNING 1), \
         seen AS (UPDATE devices SET last_seen_at = ${now}::bigint WHERE id = \
         (SELECT id FROM devices WHERE id = ${id}::text AND EXISTS (SELECT 1 FROM fresh) \
         AND (last_seen_at IS NULL OR last_seen_at <= ${now}::bigint - 1000) \
         FOR NO KEY UPDATE SKIP LOCKED))"
    )
}

/// Three columns that say what [`nonce_ctes`] did: whether the device was found, whether it
/// is active, whether the nonce was fresh; [`nonce_verdict`] reads them.
pub(super) const NONCE_VERDICT: &str = "(SELECT count(*) FROM d), \
     (SELECT count(*) FROM d WHERE revoked_at IS NULL), (SELECT count(*) FROM fresh)";

/// Reads [`NONCE_VERDICT`]'s columns from `first`: `None` when the nonce was spent.
pub(super) fn nonce_verdict(
    row: &tokio_postgres::Row,
    first: usize,
) -> Result<Option<NonceRefused>, PgError> {
    let found: i64 = get(row, first)?;
    let active: i64 = get(row, first + 1)?;
    let fresh: i64 = get(row, first + 2)?;
    Ok(match (found, active, fresh) {
        (_, _, 1) => None,
        (0, _, _) => Some(NonceRefused::Unknown),
        (_, 0, _) => Some(NonceRefused::Revoked),
        _ => Some(NonceRefused::Replayed),
    })
}

/// Drops a device found revoked or unknown where a nonce was refused from the store's key
/// cache (as [`spend_device_nonce`] does), and passes the verdict on.
pub(super) fn forget_refused<D: Db, T>(
    db: &D,
    device_id: &str,
    verdict: Result<T, NonceRefused>,
) -> Result<T, NonceRefused> {
    if let (Err(NonceRefused::Revoked | NonceRefused::Unknown), Some(cache)) =
        (&verdict, db.device_keys())
    {
        cache.forget(device_id);
    }
    verdict
}

/// Whether a request's nonce and device id can be stored at all: a nonce that cannot be
/// stored cannot be proven unused, and no device has an id that cannot be.
pub(super) fn nonce_storable(nonce: &RequestNonce) -> Option<NonceRefused> {
    if !storable(&nonce.device_id) {
        Some(NonceRefused::Unknown)
    } else if !storable(&nonce.nonce) {
        Some(NonceRefused::Replayed)
    } else {
        None
    }
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
             FOR NO KEY UPDATE",
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

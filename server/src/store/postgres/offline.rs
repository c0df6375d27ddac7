//! The offline-code part of the store (issue 12) on PostgreSQL: the `offline_secrets` table.

use super::db::Db;
use super::error::{get, PgError};
use crate::clock::Millis;
use crate::store::{OfflineAdvance, OfflineSecretRecord, StoreResult};

/// Counters are u64 on the wire and BIGINT here; they never come near 2^63.
fn to_sql(counter: u64) -> i64 {
    i64::try_from(counter).unwrap_or(i64::MAX)
}

fn from_sql(counter: i64) -> u64 {
    u64::try_from(counter).unwrap_or(0)
}

/// [`OfflineStore::set_offline_secret`](crate::store::OfflineStore::set_offline_secret).
pub(super) fn set_secret<D: Db>(
    db: &D,
    record: &OfflineSecretRecord,
    now: Millis,
) -> StoreResult<()> {
    let digits = i64::from(record.digits);
    db.write(|c| {
        c.exec(
            "INSERT INTO offline_secrets (device_id, sealed, algorithm, digits, last_used, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5) \
             ON CONFLICT (device_id) DO UPDATE SET sealed = excluded.sealed, \
             algorithm = excluded.algorithm, digits = excluded.digits, last_used = 0, \
             served_to = 0, created_at = excluded.created_at",
            &[&record.device_id, &record.sealed, &record.algorithm, &digits, &now],
        )?;
        Ok(())
    })
}

/// [`OfflineStore::offline_secrets`](crate::store::OfflineStore::offline_secrets).
pub(super) fn secrets<D: Db>(db: &D, user: &str) -> StoreResult<Vec<OfflineSecretRecord>> {
    if !super::rows::storable(user) {
        return Ok(Vec::new());
    }
    db.read(|c| {
        let rows = c.query(
            "SELECT o.device_id, o.sealed, o.algorithm, o.digits, o.last_used, o.served_to \
             FROM offline_secrets o JOIN devices d ON d.id = o.device_id \
             WHERE d.user_name = $1 AND d.revoked_at IS NULL ORDER BY d.created_at, d.id",
            &[&user],
        )?;
        rows.iter()
            .map(|r| {
                let digits: i64 = get(r, 3)?;
                Ok(OfflineSecretRecord {
                    device_id: get(r, 0)?,
                    sealed: get(r, 1)?,
                    algorithm: get(r, 2)?,
                    digits: u32::try_from(digits)
                        .map_err(|e| PgError::Data(format!("digits: {e}")))?,
                    last_used: from_sql(get(r, 4)?),
                    served_to: from_sql(get(r, 5)?),
                })
            })
            .collect()
    })
}

/// [`OfflineStore::advance_offline_counter`](crate::store::OfflineStore::advance_offline_counter).
pub(super) fn advance<D: Db>(
    db: &D,
    device_id: &str,
    counter: u64,
) -> StoreResult<Option<OfflineAdvance>> {
    db.write(|c| {
        // The row locked: two replicas taking the same code both see the other's use.
        let before: Option<i64> = c
            .opt(
                "SELECT o.last_used FROM offline_secrets o JOIN devices d ON d.id = o.device_id \
                 WHERE o.device_id = $1 AND d.revoked_at IS NULL FOR UPDATE OF o",
                &[&device_id],
            )?
            .map(|r| get(&r, 0))
            .transpose()?;
        let Some(before) = before else {
            return Ok(None);
        };
        let after = before.max(to_sql(counter));
        if after != before {
            c.exec(
                "UPDATE offline_secrets SET last_used = $2 WHERE device_id = $1",
                &[&device_id, &after],
            )?;
        }
        Ok(Some(OfflineAdvance {
            before: from_sql(before),
            after: from_sql(after),
        }))
    })
}

/// [`OfflineStore::offline_served_to`](crate::store::OfflineStore::offline_served_to).
pub(super) fn served_to<D: Db>(db: &D, device_id: &str, counter: u64) -> StoreResult<()> {
    db.write(|c| {
        c.exec(
            "UPDATE offline_secrets SET served_to = GREATEST(served_to, $2) WHERE device_id = $1",
            &[&device_id, &to_sql(counter)],
        )?;
        Ok(())
    })
}

/// [`OfflineStore::any_offline_secret`](crate::store::OfflineStore::any_offline_secret).
pub(super) fn any<D: Db>(db: &D) -> StoreResult<bool> {
    db.read(|c| c.exists("SELECT 1 FROM offline_secrets LIMIT 1", &[]))
}

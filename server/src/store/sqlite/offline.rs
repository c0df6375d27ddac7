//! [`OfflineStore`] on SQLite: the `offline_secrets` table (migration 6).

use rusqlite::{params, OptionalExtension};

use super::connection::Db;
use crate::clock::Millis;
use crate::store::{OfflineAdvance, OfflineSecretRecord, OfflineStore, StoreResult};

/// Counters are u64 on the wire and i64 in SQLite; they never come near 2^63.
fn to_sql(counter: u64) -> i64 {
    i64::try_from(counter).unwrap_or(i64::MAX)
}

fn from_sql(counter: i64) -> u64 {
    u64::try_from(counter).unwrap_or(0)
}

impl<D: Db> OfflineStore for D {
    fn set_offline_secret(&self, record: &OfflineSecretRecord, now: Millis) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO offline_secrets (device_id, sealed, algorithm, digits, last_used, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5) \
                 ON CONFLICT (device_id) DO UPDATE SET sealed = excluded.sealed, \
                 algorithm = excluded.algorithm, digits = excluded.digits, last_used = 0, \
                 served_to = 0, created_at = excluded.created_at",
            )?
            .execute(params![
                record.device_id,
                record.sealed,
                record.algorithm,
                record.digits,
                now
            ])?;
            Ok(())
        })
    }

    fn offline_secrets(&self, user: &str) -> StoreResult<Vec<OfflineSecretRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT o.device_id, o.sealed, o.algorithm, o.digits, o.last_used, o.served_to \
                 FROM offline_secrets o JOIN devices d ON d.id = o.device_id \
                 WHERE d.user = ?1 AND d.revoked_at IS NULL ORDER BY d.created_at, d.id",
            )?;
            let rows = stmt.query_map([user], |r| {
                Ok(OfflineSecretRecord {
                    device_id: r.get(0)?,
                    sealed: r.get(1)?,
                    algorithm: r.get(2)?,
                    digits: r.get(3)?,
                    last_used: from_sql(r.get(4)?),
                    served_to: from_sql(r.get(5)?),
                })
            })?;
            rows.collect()
        })
    }

    fn advance_offline_counter(
        &self,
        device_id: &str,
        counter: u64,
    ) -> StoreResult<Option<OfflineAdvance>> {
        self.write(|tx| {
            let before: Option<i64> = tx
                .prepare_cached(
                    "SELECT o.last_used FROM offline_secrets o JOIN devices d ON d.id = o.device_id \
                     WHERE o.device_id = ?1 AND d.revoked_at IS NULL",
                )?
                .query_row([device_id], |r| r.get(0))
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            let after = before.max(to_sql(counter));
            if after != before {
                tx.prepare_cached("UPDATE offline_secrets SET last_used = ?2 WHERE device_id = ?1")?
                    .execute(params![device_id, after])?;
            }
            Ok(Some(OfflineAdvance {
                before: from_sql(before),
                after: from_sql(after),
            }))
        })
    }

    fn offline_served_to(&self, device_id: &str, counter: u64) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE offline_secrets SET served_to = max(served_to, ?2) WHERE device_id = ?1",
            )?
            .execute(params![device_id, to_sql(counter)])?;
            Ok(())
        })
    }

    fn any_offline_secret(&self) -> StoreResult<bool> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM offline_secrets LIMIT 1")?
                .exists([])
        })
    }
}

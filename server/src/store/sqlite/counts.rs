//! [`CountStore`] on SQLite: the tables of migration 10 (`offline_batches`, `offline_reports`,
//! `offline_checks`, `push_changes`).

use rusqlite::params;

use super::connection::Db;
use crate::clock::Millis;
use crate::store::{CountStore, StoreResult};

/// Counters are u64 in the API and i64 in SQLite; they never come near 2^63.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl<D: Db> CountStore for D {
    fn claim_offline_batch(&self, challenge_id: &str, keep_until: Millis) -> StoreResult<bool> {
        self.write(|tx| {
            let claimed = tx
                .prepare_cached(
                    "INSERT INTO offline_batches (challenge_id, keep_until) VALUES (?1, ?2) \
                     ON CONFLICT (challenge_id) DO NOTHING",
                )?
                .execute(params![challenge_id, keep_until])?;
            Ok(claimed == 1)
        })
    }

    fn release_offline_batch(&self, challenge_id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM offline_batches WHERE challenge_id = ?1")?
                .execute([challenge_id])?;
            Ok(())
        })
    }

    fn record_offline_report(
        &self,
        device_id: &str,
        rp_id: &str,
        counter: u64,
        now: Millis,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let first = tx
                .prepare_cached(
                    "INSERT INTO offline_reports (device_id, rp_id, counter, at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id, rp_id, counter) DO NOTHING",
                )?
                .execute(params![device_id, rp_id, to_sql(counter), now])?;
            Ok(first == 1)
        })
    }

    fn count_offline_check(&self, device_id: &str, rp_id: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let n: i64 = tx
                .prepare_cached(
                    "INSERT INTO offline_checks (device_id, rp_id, count) VALUES (?1, ?2, 1) \
                     ON CONFLICT (device_id, rp_id) DO UPDATE SET count = count + 1 \
                     RETURNING count",
                )?
                .query_row(params![device_id, rp_id], |r| r.get(0))?;
            Ok(from_sql(n))
        })
    }

    fn uncount_offline_check(&self, device_id: &str, rp_id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE offline_checks SET count = max(count - 1, 0) \
                 WHERE device_id = ?1 AND rp_id = ?2",
            )?
            .execute(params![device_id, rp_id])?;
            Ok(())
        })
    }

    fn count_push_change(
        &self,
        device_id: &str,
        now: Millis,
        window_ms: Millis,
    ) -> StoreResult<u64> {
        let ends = now.saturating_add(window_ms);
        self.write(|tx| {
            // Every SET expression reads the row as it was, so `until` decides both.
            let n: i64 = tx
                .prepare_cached(
                    "INSERT INTO push_changes (device_id, until, count) VALUES (?1, ?3, 1) \
                     ON CONFLICT (device_id) DO UPDATE SET \
                     count = CASE WHEN until <= ?2 THEN 1 ELSE count + 1 END, \
                     until = CASE WHEN until <= ?2 THEN ?3 ELSE until END \
                     RETURNING count",
                )?
                .query_row(params![device_id, now, ends], |r| r.get(0))?;
            Ok(from_sql(n))
        })
    }
}

//! [`CountStore`](crate::store::CountStore) on PostgreSQL: the tables of migration 10
//! (`offline_batches`, `offline_reports`, `offline_checks`, `push_changes`). Each operation is
//! one statement (an `INSERT … ON CONFLICT`), so concurrent replicas cannot both claim or both
//! read a count below a limit.

use super::db::Db;
use super::error::get;
use crate::clock::Millis;
use crate::store::StoreResult;

/// Counters are u64 in the API and BIGINT here; they never come near 2^63.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// [`CountStore::claim_offline_batch`](crate::store::CountStore::claim_offline_batch).
pub(super) fn claim_batch<D: Db>(
    db: &D,
    challenge_id: &str,
    keep_until: Millis,
) -> StoreResult<bool> {
    db.write(|c| {
        let claimed = c.exec(
            "INSERT INTO offline_batches (challenge_id, keep_until) VALUES ($1, $2) \
             ON CONFLICT (challenge_id) DO NOTHING",
            &[&challenge_id, &keep_until],
        )?;
        Ok(claimed == 1)
    })
}

/// [`CountStore::release_offline_batch`](crate::store::CountStore::release_offline_batch).
pub(super) fn release_batch<D: Db>(db: &D, challenge_id: &str) -> StoreResult<()> {
    db.write(|c| {
        c.exec(
            "DELETE FROM offline_batches WHERE challenge_id = $1",
            &[&challenge_id],
        )?;
        Ok(())
    })
}

/// [`CountStore::record_offline_report`](crate::store::CountStore::record_offline_report).
pub(super) fn record_report<D: Db>(
    db: &D,
    device_id: &str,
    rp_id: &str,
    counter: u64,
    now: Millis,
) -> StoreResult<bool> {
    db.write(|c| {
        let first = c.exec(
            "INSERT INTO offline_reports (device_id, rp_id, counter, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (device_id, rp_id, counter) DO NOTHING",
            &[&device_id, &rp_id, &to_sql(counter), &now],
        )?;
        Ok(first == 1)
    })
}

/// [`CountStore::count_offline_check`](crate::store::CountStore::count_offline_check).
pub(super) fn count_check<D: Db>(db: &D, device_id: &str, rp_id: &str) -> StoreResult<u64> {
    db.write(|c| {
        let row = c.one(
            "INSERT INTO offline_checks (device_id, rp_id, count) VALUES ($1, $2, 1) \
             ON CONFLICT (device_id, rp_id) DO UPDATE SET count = offline_checks.count + 1 \
             RETURNING count",
            &[&device_id, &rp_id],
        )?;
        Ok(from_sql(get(&row, 0)?))
    })
}

/// [`CountStore::uncount_offline_check`](crate::store::CountStore::uncount_offline_check).
pub(super) fn uncount_check<D: Db>(db: &D, device_id: &str, rp_id: &str) -> StoreResult<()> {
    db.write(|c| {
        c.exec(
            "UPDATE offline_checks SET count = GREATEST(count - 1, 0) \
             WHERE device_id = $1 AND rp_id = $2",
            &[&device_id, &rp_id],
        )?;
        Ok(())
    })
}

/// [`CountStore::count_push_change`](crate::store::CountStore::count_push_change).
pub(super) fn count_push_change<D: Db>(
    db: &D,
    device_id: &str,
    now: Millis,
    window_ms: Millis,
) -> StoreResult<u64> {
    let ends = now.saturating_add(window_ms);
    db.write(|c| {
        // Every SET expression reads the row as it was, so `until` decides both.
        let row = c.one(
            "INSERT INTO push_changes (device_id, until, count) VALUES ($1, $3, 1) \
             ON CONFLICT (device_id) DO UPDATE SET \
             count = CASE WHEN push_changes.until <= $2 THEN 1 ELSE push_changes.count + 1 END, \
             until = CASE WHEN push_changes.until <= $2 THEN $3 ELSE push_changes.until END \
             RETURNING count",
            &[&device_id, &now, &ends],
        )?;
        Ok(from_sql(get(&row, 0)?))
    })
}

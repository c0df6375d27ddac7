//! Retention: expiring due challenges and forgetting stale nonces and locks (sweep), deleting
//! old finished challenges and audit events (prune), and the database's size. Every step is
//! bounded, so a backlog is worked off between other operations.

use rusqlite::params;

use super::challenges::{expire_if_due, OPEN};
use super::connection::Db;
use super::rows::string_list;
use crate::clock::Millis;
use crate::store::{Expired, Pruned, StoreResult, Swept};

/// The terminal states, listed so the `(state, expires_at)` index serves the retention query.
const FINISHED: &str = "('approved','denied','expired','cancelled')";

/// [`Store::sweep`](crate::store::Store::sweep).
pub(super) fn sweep<D: Db>(db: &D, now: Millis, max: usize) -> StoreResult<Swept> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let due = db.read(|conn| {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, user, devices FROM challenges WHERE state IN {OPEN} AND expires_at <= ?1 \
             LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![now, limit], |r| {
                let devices = string_list(r, 2)?;
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, devices))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    let more_due = due.len() >= max;
    db.write(|tx| {
        let mut expired = Vec::new();
        for (id, user, devices) in due {
            if expire_if_due(tx, &id, &user, now)? {
                expired.push(Expired { id, devices });
            }
        }
        let forgotten = tx
            .prepare_cached(
                "DELETE FROM device_nonces WHERE (device_id, nonce) IN \
                 (SELECT device_id, nonce FROM device_nonces WHERE valid_until < ?1 LIMIT ?2)",
            )?
            .execute(params![now, limit])?;
        tx.prepare_cached("DELETE FROM push_locks WHERE until <= ?1")?
            .execute([now])?;
        // Issue 13 review: claims and windows (`store::counts`) that have ended.
        tx.prepare_cached("DELETE FROM offline_batches WHERE keep_until <= ?1")?
            .execute([now])?;
        tx.prepare_cached("DELETE FROM push_changes WHERE until <= ?1")?
            .execute([now])?;
        Ok(Swept {
            expired,
            more: more_due || forgotten >= max,
        })
    })
}

/// [`Store::prune`](crate::store::Store::prune).
pub(super) fn prune<D: Db>(
    db: &D,
    challenges_before: Option<Millis>,
    audit_before: Option<Millis>,
    max: usize,
) -> StoreResult<Pruned> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    db.write(|tx| {
        let challenges = match challenges_before {
            Some(cutoff) => tx
                .prepare_cached(&format!(
                    "DELETE FROM challenges WHERE rowid IN (SELECT rowid FROM challenges \
                     WHERE state IN {FINISHED} AND expires_at < ?1 LIMIT ?2)"
                ))?
                .execute(params![cutoff, limit])?,
            None => 0,
        };
        // Ids grow with time, so the oldest `max` events are the only candidates; a step
        // never scans the whole log.
        let audit_events = match audit_before {
            Some(cutoff) => tx
                .prepare_cached(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM \
                     (SELECT id, at FROM audit ORDER BY id LIMIT ?2) WHERE at < ?1)",
                )?
                .execute(params![cutoff, limit])?,
            None => 0,
        };
        // The records of offline-code reports go with the audit events of their time: a copy
        // of one that old is recorded (and audited) again.
        if let Some(cutoff) = audit_before {
            tx.prepare_cached(
                "DELETE FROM offline_reports WHERE (device_id, rp_id, counter) IN \
                 (SELECT device_id, rp_id, counter FROM offline_reports WHERE at < ?1 LIMIT ?2)",
            )?
            .execute(params![cutoff, limit])?;
        }
        Ok(Pruned {
            challenges,
            audit_events,
            more: challenges >= max || audit_events >= max,
        })
    })
}

/// [`Store::used_bytes`](crate::store::Store::used_bytes).
pub(super) fn used_bytes<D: Db>(db: &D) -> StoreResult<u64> {
    db.read(|conn| {
        let pragma = |name: &str| -> rusqlite::Result<i64> {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        };
        let pages = pragma("page_count")?.saturating_sub(pragma("freelist_count")?);
        let bytes = pages.saturating_mul(pragma("page_size")?);
        Ok(u64::try_from(bytes).unwrap_or(0))
    })
}

//! Retention: expiring due challenges and forgetting stale nonces and locks (sweep), deleting
//! old finished challenges and audit events (prune), and the database's size. Each step is
//! bounded, and runs on one replica at a time: it takes a transaction-level advisory lock with
//! `pg_try_advisory_xact_lock`, and a replica that finds it taken does nothing (the holder is
//! doing the work).

use super::challenges::{expire_if_due, OPEN};
use super::db::{Conn, Db, PRUNE_LOCK, SWEEP_LOCK};
use super::error::{get, PgError};
use super::rows::string_list;
use crate::clock::Millis;
use crate::store::{DbErrorKind, Expired, Pruned, StoreError, StoreResult, Swept};

/// The terminal states.
const FINISHED: &str = "('approved','denied','expired','cancelled')";

fn try_lock(c: &Conn<'_>, key: i64) -> Result<bool, PgError> {
    get(&c.one("SELECT pg_try_advisory_xact_lock($1)", &[&key])?, 0)
}

/// [`Store::sweep`](crate::store::Store::sweep).
pub(super) fn sweep<D: Db>(db: &D, now: Millis, max: usize) -> StoreResult<Swept> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    db.write(|c| {
        if !try_lock(c, SWEEP_LOCK)? {
            return Ok(Swept::default());
        }
        let due = c.query(
            &format!(
                "SELECT id, user_name, devices FROM challenges \
                 WHERE state IN {OPEN} AND expires_at <= $1 LIMIT $2"
            ),
            &[&now, &limit],
        )?;
        let more_due = due.len() >= max;
        let mut expired = Vec::new();
        for row in &due {
            let id: String = get(row, 0)?;
            let user: String = get(row, 1)?;
            if expire_if_due(c, &id, &user, now)? {
                expired.push(Expired {
                    id,
                    devices: string_list(row, 2)?,
                });
            }
        }
        let forgotten = c.exec(
            "DELETE FROM device_nonces WHERE (device_id, nonce) IN \
             (SELECT device_id, nonce FROM device_nonces WHERE valid_until < $1 LIMIT $2)",
            &[&now, &limit],
        )?;
        c.exec("DELETE FROM push_locks WHERE until <= $1", &[&now])?;
        // Issue 13 review: claims and windows (`store::counts`) that have ended.
        c.exec(
            "DELETE FROM offline_batches WHERE keep_until <= $1",
            &[&now],
        )?;
        c.exec("DELETE FROM push_changes WHERE until <= $1", &[&now])?;
        Ok(Swept {
            expired,
            more: more_due || forgotten >= u64::try_from(max).unwrap_or(u64::MAX),
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
    db.write(|c| {
        if (challenges_before.is_some() || audit_before.is_some()) && !try_lock(c, PRUNE_LOCK)? {
            return Ok(Pruned::default());
        }
        let challenges = match challenges_before {
            Some(cutoff) => c.exec(
                &format!(
                    "DELETE FROM challenges WHERE id IN (SELECT id FROM challenges \
                     WHERE state IN {FINISHED} AND expires_at < $1 LIMIT $2)"
                ),
                &[&cutoff, &limit],
            )?,
            None => 0,
        };
        // Ids grow with time: the oldest `max` events are the only candidates.
        let audit_events = match audit_before {
            Some(cutoff) => c.exec(
                "DELETE FROM audit WHERE id IN (SELECT id FROM \
                 (SELECT id, at FROM audit ORDER BY id LIMIT $2) AS oldest WHERE at < $1)",
                &[&cutoff, &limit],
            )?,
            None => 0,
        };
        // The records of offline-code reports go with the audit events of their time: a copy
        // of one that old is recorded (and audited) again.
        if let Some(cutoff) = audit_before {
            c.exec(
                "DELETE FROM offline_reports WHERE (device_id, rp_id, counter) IN \
                 (SELECT device_id, rp_id, counter FROM offline_reports WHERE at < $1 LIMIT $2)",
                &[&cutoff, &limit],
            )?;
        }
        let challenges = usize::try_from(challenges).unwrap_or(usize::MAX);
        let audit_events = usize::try_from(audit_events).unwrap_or(usize::MAX);
        Ok(Pruned {
            challenges,
            audit_events,
            more: challenges >= max || audit_events >= max,
        })
    })
}

/// [`Store::used_bytes`](crate::store::Store::used_bytes): what pushauthd's tables take on
/// disk (with their indexes and TOAST; not PostgreSQL's catalog, some 7 MB in any database).
/// Space freed by deletes counts until VACUUM makes it reusable (autovacuum does).
pub(super) fn used_bytes<D: Db>(db: &D) -> StoreResult<u64> {
    db.read(|c| {
        let bytes: i64 = get(
            &c.one(
                "SELECT coalesce(sum(pg_total_relation_size(t.oid)), 0)::bigint                  FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace                  WHERE n.nspname = current_schema() AND t.relkind = 'r'",
                &[],
            )?,
            0,
        )?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    })
}

/// The health probe's write: a transactional logical-decoding message (a log record and
/// nothing in any table; nobody decodes it), so that its commit is flushed and replicated
/// like a login's.
const HEALTH_COMMIT_SQL: &str = "SELECT pg_logical_emit_message(true, 'pushauthd-health', '')";

/// [`Store::health`](crate::store::Store::health): the database answers and takes writes. A
/// standby (or a database made read-only) answers reads but would refuse every login's
/// writes, so a replica on it is not ready ([`DbErrorKind::Unavailable`]); a commit must also
/// come back, with `commit` (one empty transaction that gets a transaction id: `GET /healthz`
/// asks for it at most once a second, see `api::ops::healthz`).
pub(super) fn health<D: Db>(db: &D, commit: bool) -> StoreResult<()> {
    let read_only: bool = db.read(|c| {
        get(
            &c.one(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool",
                &[],
            )?,
            0,
        )
    })?;
    if read_only {
        return Err(StoreError::db(
            DbErrorKind::Unavailable,
            "the database takes no writes (a standby, or read-only)",
        ));
    }
    // A commit that comes back: a transaction that wrote to the log waits for a synchronous
    // standby like every login's writes do (one that only took a transaction id does not).
    // A primary promoted with a synchronous_standby_names it cannot satisfy answers reads
    // but never finishes a commit; then this waits and the probe says not ready.
    if commit {
        db.write(|c| c.exec(HEALTH_COMMIT_SQL, &[]).map(drop))?;
    }
    Ok(())
}

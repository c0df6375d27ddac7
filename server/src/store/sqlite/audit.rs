//! The audit log: writing events (inside the operation's own transaction, so an event exists
//! exactly when what it records happened) and reading them back.

use pushauth_proto::wire::AuditEvent;
use rusqlite::{params, Connection};

use super::connection::Db;
use crate::clock::{self, Millis};
use crate::store::{AuditEntry, StoreResult};

/// Writes `entry` at `now` in the caller's transaction.
pub(super) fn write_audit(
    tx: &Connection,
    entry: &AuditEntry,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (at, kind, user, device_id, challenge_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now,
        entry.kind,
        entry.user,
        entry.device_id,
        entry.challenge_id,
        entry.detail
    ])?;
    Ok(())
}

/// [`Store::audit`](crate::store::Store::audit).
pub(super) fn audit<D: Db>(db: &D, entry: &AuditEntry, now: Millis) -> StoreResult<()> {
    db.write(|tx| write_audit(tx, entry, now))
}

/// [`Store::audit_returning_id`](crate::store::Store::audit_returning_id).
pub(super) fn audit_returning_id<D: Db>(
    db: &D,
    entry: &AuditEntry,
    now: Millis,
) -> StoreResult<i64> {
    db.write(|tx| {
        write_audit(tx, entry, now)?;
        Ok(tx.last_insert_rowid())
    })
}

/// [`Store::set_audit_count`](crate::store::Store::set_audit_count).
pub(super) fn set_audit_count<D: Db>(db: &D, id: i64, count: u64) -> StoreResult<()> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    db.write(|tx| {
        tx.prepare_cached("UPDATE audit SET count = max(count, ?2) WHERE id = ?1")?
            .execute(params![id, count])?;
        Ok(())
    })
}

/// [`Store::list_audit`](crate::store::Store::list_audit).
pub(super) fn list_audit<D: Db>(
    db: &D,
    limit: u32,
    user: Option<&str>,
) -> StoreResult<Vec<AuditEvent>> {
    db.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, kind, user, device_id, challenge_id, detail, count FROM audit \
             WHERE ?1 IS NULL OR user = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![user, limit], |r| {
                Ok(AuditEvent {
                    id: r.get(0)?,
                    at: clock::rfc3339(r.get(1)?),
                    kind: r.get(2)?,
                    user: r.get(3)?,
                    device_id: r.get(4)?,
                    challenge_id: r.get(5)?,
                    detail: r.get(6)?,
                    count: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
}

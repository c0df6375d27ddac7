//! The audit log: written inside the operation's own transaction, read back newest first.

use pushauth_proto::wire::AuditEvent;

use super::db::{Conn, Db, Owned};
use super::error::{get, PgError};
use crate::clock::{self, Millis};
use crate::store::{AuditEntry, StoreResult};

/// Writes `entry` at `now` in the caller's transaction; returns its id.
pub(super) fn write_audit(
    conn: &Conn<'_>,
    entry: &AuditEntry,
    now: Millis,
) -> Result<i64, PgError> {
    let row = conn.one(
        "INSERT INTO audit (at, kind, user_name, device_id, challenge_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            &now,
            &entry.kind,
            &entry.user,
            &entry.device_id,
            &entry.challenge_id,
            &entry.detail,
        ],
    )?;
    get(&row, 0)
}

/// [`write_audit`] when its id is not needed: in a pipelined transaction the row goes with the
/// next statement or the `COMMIT` ([`Conn::later`]), without a round trip of its own.
pub(super) fn later_audit(conn: &Conn<'_>, entry: &AuditEntry, now: Millis) -> Result<(), PgError> {
    conn.later(
        "INSERT INTO audit (at, kind, user_name, device_id, challenge_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        audit_params(entry, now),
    )
}

/// An audit row's columns as parameters `$1`–`$6`: `at`, `kind`, `user_name`, `device_id`,
/// `challenge_id`, `detail`.
pub(super) fn audit_params(entry: &AuditEntry, now: Millis) -> Vec<Owned> {
    vec![
        Box::new(now),
        Box::new(entry.kind),
        Box::new(entry.user.clone()),
        Box::new(entry.device_id.clone()),
        Box::new(entry.challenge_id.clone()),
        Box::new(entry.detail.clone()),
    ]
}

/// [`Store::audit`](crate::store::Store::audit).
pub(super) fn audit<D: Db>(db: &D, entry: &AuditEntry, now: Millis) -> StoreResult<()> {
    db.write(|c| later_audit(c, entry, now))
}

/// [`Store::audit_returning_id`](crate::store::Store::audit_returning_id).
pub(super) fn audit_returning_id<D: Db>(
    db: &D,
    entry: &AuditEntry,
    now: Millis,
) -> StoreResult<i64> {
    db.write(|c| write_audit(c, entry, now))
}

/// [`Store::set_audit_count`](crate::store::Store::set_audit_count).
pub(super) fn set_audit_count<D: Db>(db: &D, id: i64, count: u64) -> StoreResult<()> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    db.write(|c| {
        c.exec(
            "UPDATE audit SET count = GREATEST(count, $2) WHERE id = $1",
            &[&id, &count],
        )?;
        Ok(())
    })
}

/// [`Store::list_audit`](crate::store::Store::list_audit).
pub(super) fn list_audit<D: Db>(
    db: &D,
    limit: u32,
    user: Option<&str>,
) -> StoreResult<Vec<AuditEvent>> {
    let limit = i64::from(limit);
    if user.is_some_and(|u| !super::rows::storable(u)) {
        return Ok(Vec::new());
    }
    db.read(|c| {
        let rows = c.query(
            "SELECT id, at, kind, user_name, device_id, challenge_id, detail, count FROM audit \
             WHERE $1::text IS NULL OR user_name = $1 ORDER BY id DESC LIMIT $2",
            &[&user, &limit],
        )?;
        rows.iter()
            .map(|r| {
                let count: i64 = get(r, 7)?;
                Ok(AuditEvent {
                    id: get(r, 0)?,
                    at: clock::rfc3339(get(r, 1)?),
                    kind: get(r, 2)?,
                    user: get(r, 3)?,
                    device_id: get(r, 4)?,
                    challenge_id: get(r, 5)?,
                    detail: get(r, 6)?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
    })
}

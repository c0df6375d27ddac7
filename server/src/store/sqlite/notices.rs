//! Stored device notices: written in the unit of the event they announce, read back for the
//! user's devices, and forgotten after the notice window.

use rusqlite::{params, Connection, Row};

use super::connection::Db;
use super::rows::conversion_error;
use crate::clock::Millis;
use crate::store::{NoticeRecord, StoreResult};

fn from_row(row: &Row<'_>) -> rusqlite::Result<NoticeRecord> {
    let context: String = row.get(5)?;
    let context = serde_json::from_str(&context).map_err(|e| conversion_error(5, e.to_string()))?;
    let count: Option<i64> = row.get(6)?;
    Ok(NoticeRecord {
        user: row.get(0)?,
        kind: row.get(1)?,
        at: row.get(2)?,
        source: row.get(3)?,
        via: row.get(4)?,
        context,
        count: count.and_then(|c| u32::try_from(c).ok()),
    })
}

/// Writes `notice` in the caller's transaction and forgets the user's notices older than
/// `keep_since` (bounded by the user's own notices, so it costs little).
pub(super) fn write_notice(
    tx: &Connection,
    notice: &NoticeRecord,
    keep_since: Millis,
) -> rusqlite::Result<()> {
    let context =
        serde_json::to_string(&notice.context).map_err(|e| conversion_error(5, e.to_string()))?;
    tx.prepare_cached("DELETE FROM notices WHERE user = ?1 AND at < ?2")?
        .execute(params![notice.user, keep_since])?;
    tx.prepare_cached(
        "INSERT INTO notices (user, kind, at, source, via, context, count) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        notice.user,
        notice.kind,
        notice.at,
        notice.source,
        notice.via,
        context,
        notice.count
    ])?;
    Ok(())
}

/// [`Store::add_notice`](crate::store::Store::add_notice).
pub(super) fn add_notice<D: Db>(
    db: &D,
    notice: &NoticeRecord,
    keep_since: Millis,
) -> StoreResult<()> {
    db.write(|tx| write_notice(tx, notice, keep_since))
}

/// [`Store::user_notices`](crate::store::Store::user_notices).
pub(super) fn user_notices<D: Db>(
    db: &D,
    user: &str,
    since: Millis,
) -> StoreResult<Vec<NoticeRecord>> {
    db.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT user, kind, at, source, via, context, count FROM notices \
             WHERE user = ?1 AND at >= ?2 ORDER BY at DESC, id DESC LIMIT 200",
        )?;
        let rows = stmt.query_map(params![user, since], from_row)?;
        rows.collect()
    })
}

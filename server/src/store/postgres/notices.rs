//! Stored device notices: written in the unit of the event they announce, read back for the
//! user's devices, and forgotten after the notice window.

use tokio_postgres::Row;

use super::db::{Conn, Db};
use super::error::{get, PgError};
use super::rows::data_error;
use crate::clock::Millis;
use crate::store::{NoticeRecord, StoreResult};

fn from_row(row: &Row) -> Result<NoticeRecord, PgError> {
    let context: String = get(row, 5)?;
    let context = serde_json::from_str(&context).map_err(|e| data_error(5, e))?;
    let count: Option<i64> = get(row, 6)?;
    Ok(NoticeRecord {
        user: get(row, 0)?,
        kind: get(row, 1)?,
        at: get(row, 2)?,
        source: get(row, 3)?,
        via: get(row, 4)?,
        context,
        count: count.and_then(|c| u32::try_from(c).ok()),
    })
}

/// Writes `notice` in the caller's transaction and forgets the user's notices older than
/// `keep_since`.
pub(super) fn write_notice(
    c: &Conn<'_>,
    notice: &NoticeRecord,
    keep_since: Millis,
) -> Result<(), PgError> {
    let context = serde_json::to_string(&notice.context).map_err(|e| data_error(5, e))?;
    c.exec(
        "DELETE FROM notices WHERE user_name = $1 AND at < $2",
        &[&notice.user, &keep_since],
    )?;
    let count = notice.count.map(i64::from);
    c.exec(
        "INSERT INTO notices (user_name, kind, at, source, via, context, count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &notice.user,
            &notice.kind,
            &notice.at,
            &notice.source,
            &notice.via,
            &context,
            &count,
        ],
    )?;
    Ok(())
}

/// [`Store::add_notice`](crate::store::Store::add_notice).
pub(super) fn add_notice<D: Db>(
    db: &D,
    notice: &NoticeRecord,
    keep_since: Millis,
) -> StoreResult<()> {
    db.write(|c| {
        write_notice(c, notice, keep_since)?;
        super::notify::user_devices(c, &notice.user, "")
    })
}

/// [`Store::user_notices`](crate::store::Store::user_notices).
pub(super) fn user_notices<D: Db>(
    db: &D,
    user: &str,
    since: Millis,
) -> StoreResult<Vec<NoticeRecord>> {
    if !super::rows::storable(user) {
        return Ok(Vec::new());
    }
    db.read(|c| {
        let rows = c.query(
            "SELECT user_name, kind, at, source, via, context, count FROM notices \
             WHERE user_name = $1 AND at >= $2 ORDER BY at DESC, id DESC LIMIT 200",
            &[&user, &since],
        )?;
        rows.iter().map(from_row).collect()
    })
}

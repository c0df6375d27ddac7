//! Whether another replica listens: a login's NOTIFYs are sent only when one does (issue 13).
//!
//! A replica's own waiters learn of its own changes from its handlers (`AppState::settle`, or
//! the store job's fallback when the caller left), never from its NOTIFY. The NOTIFYs of a
//! challenge's creation and answer exist for the other replicas alone, and on a site with one
//! replica they cost every login two deliveries to its own listener: a wake-up of the listening
//! server process and of the replica's listener task each, and a transaction each in
//! PostgreSQL's count (about a sixth of a login's CPU in the bench).
//!
//! So each listener registers ([`register`]):
//! 1. it takes a session-level advisory lock on a random key of its own, new for each
//!    connection (held until its connection ends, whichever way);
//! 2. it writes its replica's row in `replicas` (its replica id and that key) and deletes the
//!    rows whose key nobody holds (replicas gone);
//! 3. it runs `LISTEN`;
//! 4. it notes the write transactions that hold the write lock every write shares
//!    (`ATOMIC_LOCK`, [`under_way`]);
//! 5. it starts hearing notices, and every local waiter reads again (as after any reconnect);
//! 6. each time some of the transactions of step 4 have ended ([`still_under_way`]), every
//!    local waiter reads again.
//!
//! A creation's and an answer's statement notify only when [`others_listen`] holds: a row of
//! another replica whose key is held (a shared try-lock on it fails), or the stand-in below.
//! Why no change is missed:
//! - a statement that saw the row saw the lock held (step 1 precedes step 2), so it notifies;
//!   if it commits before step 3, the reads of step 5 see the change;
//! - a statement that did not see the row ran in a write transaction that took the shared
//!   write lock before step 2 committed (READ COMMITTED: the statement's snapshot is younger
//!   than the lock). Had that transaction ended by step 4 (a transaction is visible before
//!   its locks go), the reads of step 5 see its change; else step 4 found it, and the reads
//!   of step 6 after it ended do;
//! - a listener whose connection ends lets its key go: the others stop notifying it, and it
//!   registers anew (with a new key) before it listens again;
//! - a process without a registered listener (`pushauthd` admin commands, a group or an atomic
//!   unit, whose id is not passed) notifies whenever any replica listens, or always.
//!
//! Replicas of a release before schema version 11 listen without registering. A database
//! migrated to 11 from an older version therefore gets a stand-in row without a key, which
//! counts as a listener for [`OLDER_RELEASES_FOR`] after the migration: the documented rolling
//! upgrade (migrate, then restart the replicas one at a time) loses no wake-up. A new database
//! has none.
//!
//! A device's acknowledgement with its nonce (`acknowledge_spending`, as the phone app makes
//! one before every answer) notifies as an answer does. Every other change (cancel, a plain
//! acknowledgement, expiry, revocation, relying parties, notices) notifies always: those are
//! rare, and some have waiters on this replica that no handler wakes.

use tokio_postgres::Client;

use super::db::ATOMIC_LOCK;
use super::error::PgError;
use crate::store::{DbErrorKind, StoreError};

/// How long registering and `LISTEN` may take.
pub const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long after a migration from an older schema its replicas count as listening (they
/// cannot register): a day, for a rolling restart. Once every replica runs this release,
/// `DELETE FROM replicas WHERE lock_key IS NULL` ends it early.
pub const OLDER_RELEASES_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// PostgreSQL's wall clock in milliseconds since the Unix epoch, in SQL.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// A replica's identity in `replicas`: random, one per store (so per process), never reused.
/// Cheap to clone: clones are the same id.
#[derive(Clone, Debug)]
pub struct ReplicaId(std::sync::Arc<str>);

impl ReplicaId {
    /// A new random id (22 base64url characters; should the system's randomness fail, the
    /// process id and the time in nanoseconds, which only another host could repeat).
    #[must_use]
    pub fn new() -> ReplicaId {
        let id = pushauth_proto::random::id().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("p{}-{nanos}", std::process::id())
        });
        ReplicaId(id.into())
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ReplicaId {
    fn default() -> Self {
        ReplicaId::new()
    }
}

/// The SQL condition "another replica's listener hears notices", `$N` being the text
/// parameter with this replica's id, or NULL for "notify whenever any replica listens" (see
/// the module notes). The `CASE` keeps the try-lock off this replica's own row (its own
/// listener holds that key) whatever order the planner picks; a lock it takes on the key of a
/// replica gone is shared and ends with the transaction.
#[must_use]
pub(super) fn others_listen(me: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM replicas r WHERE CASE WHEN r.id = ${me}::text THEN false \
         WHEN r.lock_key IS NULL THEN r.until_ms > {NOW_MS} \
         ELSE NOT pg_try_advisory_xact_lock_shared(r.lock_key) END)"
    )
}

/// Writes the stand-in for the replicas of releases before schema version 11 (see the module
/// notes), in the migrating transaction.
pub(super) fn stand_in_for_older_releases(conn: &super::db::Conn<'_>) -> Result<(), PgError> {
    let for_ms = i64::try_from(OLDER_RELEASES_FOR.as_millis()).unwrap_or(i64::MAX);
    conn.exec(
        &format!(
            "INSERT INTO replicas (id, lock_key, registered_at, until_ms) \
             VALUES ('older releases', NULL, {NOW_MS}, {NOW_MS} + $1) \
             ON CONFLICT (id) DO NOTHING"
        ),
        &[&for_ms],
    )
    .map(|_| ())
}

/// A random advisory key; should the system's randomness fail, one made of the time and the
/// process (a key another session holds only fails the registration, which is retried).
fn new_key() -> i64 {
    pushauth_proto::random::bytes::<8>().map_or_else(
        |_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            i64::from_le_bytes(nanos.to_le_bytes()[..8].try_into().unwrap_or([0; 8]))
                ^ i64::from(std::process::id())
        },
        i64::from_le_bytes,
    )
}

/// Registers `client`'s session as the listener of replica `me` (steps 1 and 2 of the module
/// notes): run `LISTEN` after it, then [`under_way`], then have every waiter read.
///
/// # Errors
/// The driver's, as [`StoreError::Db`] (unavailable), and so if the new key is taken (never
/// waited for: the caller retries with another); a database without the `replicas` table
/// (an older schema) fails here.
pub async fn register(client: &Client, me: &ReplicaId) -> Result<(), StoreError> {
    let key = new_key();
    let id = me.as_str();
    let held: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(failed)?;
    if !held {
        return Err(StoreError::db(
            DbErrorKind::Unavailable,
            "cannot register the listener: its new advisory key is taken",
        ));
    }
    // One statement: its own transaction. A row whose key a live replica holds (exclusively)
    // survives the shared try-lock, which the shared try-locks of writes looking at a gone
    // replica's key do not stop; the stand-in for older releases goes once its time is up.
    client
        .execute(
            &format!(
                "WITH gone AS (DELETE FROM replicas WHERE id <> $1 AND CASE \
                 WHEN lock_key IS NULL THEN until_ms <= {NOW_MS} \
                 ELSE pg_try_advisory_xact_lock_shared(lock_key) END) \
                 INSERT INTO replicas (id, lock_key, registered_at) \
                 VALUES ($1, $2, {NOW_MS}) \
                 ON CONFLICT (id) DO UPDATE SET lock_key = excluded.lock_key, \
                 registered_at = excluded.registered_at"
            ),
            &[&id, &key],
        )
        .await
        .map_err(failed)?;
    Ok(())
}

/// The write transactions that hold the write lock every write shares, by virtual transaction
/// id (step 4 of the module notes), read before the waiters are told to read (step 5): each
/// time [`still_under_way`] finds fewer, every local waiter reads again. Read from `pg_locks`
/// rather than waited for with an exclusive request for the lock, which would hold back every
/// new write of every replica behind it for as long as a hung transaction holds the lock.
///
/// # Errors
/// The driver's, as [`StoreError::Db`] (unavailable).
pub async fn under_way(client: &Client) -> Result<Vec<String>, StoreError> {
    write_lock_holders(client).await.map_err(failed)
}

/// The virtual transaction ids of the transactions that hold [`ATOMIC_LOCK`] now (shared or
/// exclusive), from `pg_locks`.
///
/// # Errors
/// The driver's.
pub(super) async fn write_lock_holders(
    client: &Client,
) -> Result<Vec<String>, tokio_postgres::Error> {
    // A bigint advisory key shows as its high and low halves (PostgreSQL's docs, "pg_locks").
    let bits = u64::from_ne_bytes(ATOMIC_LOCK.to_ne_bytes());
    let (high, low) = ((bits >> 32) as u32, (bits & 0xFFFF_FFFF) as u32);
    first_texts(
        client,
        "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted",
        &[&high, &low],
    )
    .await
}

/// The transactions of `holders` ([`under_way`]) that have not ended yet: each holds its own
/// virtual transaction id until it ends.
///
/// # Errors
/// The driver's, as [`StoreError::Db`] (unavailable).
pub async fn still_under_way(
    client: &Client,
    holders: &[String],
) -> Result<Vec<String>, StoreError> {
    if holders.is_empty() {
        return Ok(Vec::new());
    }
    first_texts(
        client,
        "SELECT virtualxid FROM pg_locks WHERE locktype = 'virtualxid' \
         AND virtualxid = ANY($1)",
        &[&holders],
    )
    .await
    .map_err(failed)
}

/// The first column of every row of `sql`, as text.
async fn first_texts(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<String>, tokio_postgres::Error> {
    client
        .query(sql, params)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect()
}

fn failed(e: tokio_postgres::Error) -> StoreError {
    StoreError::db(
        DbErrorKind::Unavailable,
        format!(
            "cannot register the listener: {}",
            super::error::message(&e)
        ),
    )
}

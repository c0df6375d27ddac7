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
//! 1. it takes a session-level advisory lock on a key of its own, new for each connection
//!    (held until its connection ends, whichever way);
//! 2. it writes its replica's row in `replicas` (its replica id and that key) and deletes the
//!    rows whose key nobody holds (replicas gone);
//! 3. it runs `LISTEN`;
//! 4. it waits until every write transaction that held the write lock every write shares
//!    (`ATOMIC_LOCK`) has ended;
//! 5. then every local waiter reads again (as after any reconnect).
//!
//! A creation's and an answer's statement notify only when [`OTHERS_LISTEN`] holds: a row of
//! another replica whose key is held (a shared try-lock on it fails). Why no change is missed:
//! - a statement that saw the row saw the lock held (step 1 precedes step 2), so it notifies;
//!   if it commits before step 3, the read of step 5 (after step 4) sees the change;
//! - a statement that did not see the row ran in a write transaction that took the shared
//!   write lock before step 2 committed, so step 4 waits for it to end, and step 5 reads
//!   after it;
//! - a listener whose connection ends lets its key go: the others stop notifying it, and it
//!   registers anew (with a new key) before it listens again, followed by step 5;
//! - a process without a registered listener (`pushauthd` admin commands, a group or an atomic
//!   unit, whose id is not passed) notifies whenever any replica listens, or always.
//!
//! Every other change (cancel, acknowledge, expiry, revocation, relying parties, notices)
//! notifies always: those are rare, and some have waiters on this replica that no handler
//! wakes.

use tokio_postgres::Client;

use super::db::ATOMIC_LOCK;
use crate::store::{DbErrorKind, StoreError};

/// How long registering may take, the wait for write transactions under way included.
pub const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
         ELSE NOT pg_try_advisory_xact_lock_shared(r.lock_key) END)"
    )
}

/// Registers `client`'s session as the listener of replica `me` (steps 1 and 2 of the module
/// notes): run `LISTEN` after it, then [`settle`].
///
/// # Errors
/// The driver's, as [`StoreError::Db`] (unavailable); a database without the `replicas` table
/// (an older schema) fails here.
pub async fn register(client: &Client, me: &ReplicaId) -> Result<(), StoreError> {
    let key = i64::from_le_bytes(
        pushauth_proto::random::bytes::<8>()
            .map_err(|e| StoreError::db(DbErrorKind::Unavailable, e.to_string()))?,
    );
    let id = me.as_str();
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .map_err(failed)?;
    // One statement: its own transaction. A row whose key a live replica holds survives the
    // exclusive try-lock; so does one a write has just looked at (it goes next time).
    client
        .execute(
            "WITH gone AS (DELETE FROM replicas WHERE id <> $1 \
             AND pg_try_advisory_xact_lock(lock_key)) \
             INSERT INTO replicas (id, lock_key, registered_at) \
             VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) \
             ON CONFLICT (id) DO UPDATE SET lock_key = excluded.lock_key, \
             registered_at = excluded.registered_at",
            &[&id, &key],
        )
        .await
        .map_err(failed)?;
    Ok(())
}

/// How often [`settle`] looks whether the writes it waits for have ended.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Waits until every write transaction under way has ended (step 4 of the module notes): run
/// it after `LISTEN`, and have every waiter read again after it. It reads which transactions
/// hold the write lock (`pg_locks`) and waits for those to end, instead of queueing for the
/// lock exclusively: such a request would hold back every new write of every replica behind
/// it for as long as a hung transaction holds the lock.
///
/// # Errors
/// The driver's, as [`StoreError::Db`] (unavailable).
pub async fn settle(client: &Client) -> Result<(), StoreError> {
    // A bigint advisory key shows as its high and low halves (PostgreSQL's docs, "pg_locks").
    let bits = u64::from_ne_bytes(ATOMIC_LOCK.to_ne_bytes());
    let (high, low) = ((bits >> 32) as u32, (bits & 0xFFFF_FFFF) as u32);
    let holders: Vec<String> = client
        .query(
            "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'advisory' \
             AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted",
            &[&high, &low],
        )
        .await
        .map_err(failed)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    if holders.is_empty() {
        return Ok(());
    }
    // Every transaction holds its own virtual transaction id until it ends.
    loop {
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'virtualxid' \
                 AND virtualxid = ANY($1)",
                &[&holders],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(failed)?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
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

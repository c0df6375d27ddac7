//! The NOTIFY contract with the replicas' listeners (issue 13): inside the transaction of every
//! change, so a listener hears of it exactly when it is committed (and never of one rolled
//! back).
//!
//! - [`CHALLENGE_CHANNEL`], payload a challenge id: its state changed (acknowledged,
//!   answered, cancelled, expired, or a revoked device dropped from it) or a grace login was
//!   stored;
//! - [`DEVICE_CHANNEL`], payload a device id: what its long-poll returns changed (a challenge
//!   was created for it, one of its challenges ended, another device was bound to its user, or
//!   a notice for its user was stored).
//!
//! A notification names the server process that sent it. [`OwnBackends`] knows this
//! replica's own, so that its listener can tell a change it made itself (whose waiters its
//! handler hands the committed record, a read saved) from another replica's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use super::db::Conn;
use super::error::PgError;

/// Channel of challenge changes; the payload is the challenge's id.
pub const CHALLENGE_CHANNEL: &str = "pushauth_challenge";
/// Channel of device changes; the payload is the device's id.
pub const DEVICE_CHANNEL: &str = "pushauth_device";

/// Server processes remembered at most (a few per pooled connection over the process's life;
/// the oldest is forgotten first).
const MAX_OWN_BACKENDS: usize = 256;

/// The server processes (`pg_backend_pid()`) of this replica's pooled connections, recorded as
/// each connection is made: a notification whose
/// [`process_id`](tokio_postgres::Notification::process_id) is one of them tells of a change
/// this replica made. Cheap to clone: every clone is the same set.
///
/// Only ever a hint for when to read: a process id reused by another replica's connection
/// after this one's closed makes that replica's notices count as this one's, which delays
/// (never skips) its waiters' read (see `wake.rs`).
#[derive(Clone, Default)]
pub struct OwnBackends {
    pids: Arc<Mutex<VecDeque<i32>>>,
}

impl std::fmt::Debug for OwnBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnBackends")
            .field("known", &self.lock().len())
            .finish()
    }
}

impl OwnBackends {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<i32>> {
        self.pids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `pid` as the process of one of this replica's connections (the store does so
    /// for each connection it makes).
    pub fn add(&self, pid: i32) {
        let mut pids = self.lock();
        if pids.contains(&pid) {
            return;
        }
        if pids.len() >= MAX_OWN_BACKENDS {
            pids.pop_front();
        }
        pids.push_back(pid);
    }

    /// Whether `pid` is the process of one of this replica's connections.
    pub fn contains(&self, pid: i32) -> bool {
        self.lock().contains(&pid)
    }
}

/// Notifies a change of challenge `id` (if given) and of each of `devices`, in one statement.
pub(super) fn changed(
    conn: &Conn<'_>,
    id: Option<&str>,
    devices: &[String],
) -> Result<(), PgError> {
    conn.later(
        "SELECT pg_notify('pushauth_challenge', $1::text) WHERE $1::text IS NOT NULL \
         UNION ALL SELECT pg_notify('pushauth_device', d) FROM unnest($2::text[]) AS d",
        vec![Box::new(id.map(str::to_owned)), Box::new(devices.to_vec())],
    )
}

/// [`changed`] for challenge `id`, after `delete` (a `DELETE` whose one parameter is `$1`, the
/// challenge id) in the same statement: one round trip for both.
pub(super) fn changed_after(
    conn: &Conn<'_>,
    delete: &str,
    id: &str,
    devices: &[String],
) -> Result<(), PgError> {
    conn.later(
        &format!(
            "WITH gone AS ({delete}) \
             SELECT pg_notify('pushauth_challenge', $1::text) \
             UNION ALL SELECT pg_notify('pushauth_device', d) FROM unnest($2::text[]) AS d"
        ),
        vec![Box::new(id.to_owned()), Box::new(devices.to_vec())],
    )
}

/// Notifies every active device of `user` but `except` (their long-polls return: a new binding
/// or a notice to fetch).
pub(super) fn user_devices(conn: &Conn<'_>, user: &str, except: &str) -> Result<(), PgError> {
    conn.later(
        "SELECT pg_notify('pushauth_device', id) FROM devices \
         WHERE user_name = $1 AND revoked_at IS NULL AND id <> $2",
        vec![Box::new(user.to_owned()), Box::new(except.to_owned())],
    )
}

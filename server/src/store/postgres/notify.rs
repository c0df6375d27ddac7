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

use super::db::Conn;
use super::error::PgError;

/// Channel of challenge changes; the payload is the challenge's id.
pub const CHALLENGE_CHANNEL: &str = "pushauth_challenge";
/// Channel of device changes; the payload is the device's id.
pub const DEVICE_CHANNEL: &str = "pushauth_device";

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

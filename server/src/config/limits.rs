//! `[limits]` (push fatigue, connections, slow clients) and `[retention]` (how long records are
//! kept, how large the database may grow).

use serde::Deserialize;

/// Push-fatigue limits and connection limits (`[limits]`).
///
/// Push limits count only challenges that did not end in an approval (still open, expired,
/// cancelled, denied or reported): a person who approves their own logins never meets them.
/// They are kept per *source*: the user, the relying party and the login's source address (the
/// context value `rhost`, `remote_addr` or `ip`, whichever the relying party sent; a login
/// without one is a source of its own). So pushes an attacker starts from one address cannot
/// stop the owner's logins from another; the per-user ceilings, far higher, still stop a spray
/// from many addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open (pending or acknowledged, unexpired) challenges one source may have for a user.
    pub max_open_per_source: u32,
    /// Open challenges a user may have at once, over all sources (the ceiling).
    pub max_open_per_user: u32,
    /// New unapproved challenges one source may start for a user within `window_secs`.
    pub max_new_per_window: u32,
    /// New unapproved challenges a user may get within `window_secs`, over all sources.
    pub max_new_per_user_window: u32,
    /// The rate window, in seconds.
    pub window_secs: u64,
    /// How long a "this was not me" report stops new pushes to the user from that source
    /// (same user, relying party and source address), in seconds.
    pub report_lockout_secs: u64,
    /// Consecutive wrong codes (number-matching mismatches) a user may have, counted across
    /// challenges (a new challenge does not reset the count; NIST SP 800-63B-4). At this count
    /// new pushes to the user are refused with `user_locked` until an administrator unlocks
    /// (`pushauthd unlock USER`); below the lock an approval with the right code resets the
    /// count. At the lock an approval of a number-matching challenge still open is refused
    /// too (right code or wrong, alike), so no further guess is taken. Default 10; at least 1.
    pub max_code_failures: u32,
    /// Consecutive wrong backup codes a user may have (issue 12; NIST SP 800-63B-4 throttling).
    /// At this count every backup code of the user is refused with `user_locked`, the right one
    /// too, until an administrator unlocks (`pushauthd unlock USER`, which also lifts the push
    /// lock); a right code below the lock resets the count. Issuing a new set does not.
    /// Default 10; at least 1.
    pub max_backup_code_failures: u32,
    /// Connections served at once; more are closed as soon as they are accepted, unread.
    pub max_connections: u32,
    /// Connections one client address (for IPv6, its /64) may hold at once; more are closed
    /// unread. Raise it for a relying party that waits on many logins at once (an IdP sidecar).
    pub max_connections_per_address: u32,
    /// Seconds a client has to send a whole request head: from the moment it connects (after
    /// the TLS handshake, which has the same bound) and, on a kept-alive connection, from the
    /// end of the previous response (so it is also the idle keep-alive timeout).
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its head arrived (bodies are at
    /// most 64 KiB); a slower one gets 400 and the connection ends.
    pub body_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_per_source: 3,
            max_open_per_user: 30,
            max_new_per_window: 10,
            max_new_per_user_window: 100,
            window_secs: 600,
            report_lockout_secs: 900,
            max_code_failures: 10,
            max_backup_code_failures: 10,
            max_connections: 16_384,
            max_connections_per_address: 4096,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
        }
    }
}

/// How long finished records are kept, and how large the database may grow (`[retention]`).
/// A 0 in a `*_days` key keeps those records for ever; `max_db_mb = 0` sets no bound. Devices
/// are never deleted: they are the record of every device ever bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days after its expiry that a finished challenge (with the device's signed answer) is
    /// deleted. Open challenges are never deleted. Default 90.
    pub challenges_days: u64,
    /// Days after which audit events are deleted. Default 400.
    pub audit_days: u64,
    /// Size bound of the database (its file and write-ahead log), in MiB: above it new
    /// challenges are refused with 507 `storage_full` until retention or the admin makes room.
    /// Default 1024.
    pub max_db_mb: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            challenges_days: 90,
            audit_days: 400,
            max_db_mb: 1024,
        }
    }
}

/// One day, in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;

impl Retention {
    /// The cutoffs at `now`: records older than these go; `None` keeps them.
    pub fn cutoffs(&self, now: crate::clock::Millis) -> (Option<i64>, Option<i64>) {
        let cutoff = |days: u64| {
            (days > 0).then(|| {
                let age = i64::try_from(days).map_or(i64::MAX, |d| d.saturating_mul(DAY_MS));
                now.saturating_sub(age)
            })
        };
        (cutoff(self.challenges_days), cutoff(self.audit_days))
    }

    /// The size bound in bytes; `None` without one.
    pub fn max_db_bytes(&self) -> Option<u64> {
        (self.max_db_mb > 0).then(|| self.max_db_mb.saturating_mul(1024 * 1024))
    }
}

//! Push limits in the store: the counts the limit check reads (for the times the service
//! gives; the check itself is [`crate::limits::check`]), the
//! aggregated `rate_limited` audit rows, report lock-outs per user, relying party and source,
//! and `pushauthd unlock`.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::write_audit;
use super::challenges::OPEN;
use super::connection::Db;
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{events, ChallengeRecord, CodeTally, NewChallenge, StoreResult};

/// What the limits need to decide on `new`, read in the caller's transaction: the lock-out for
/// its user, relying party and source, and the counts of open and recent challenges (none from
/// before the user's last unlock).
pub(super) fn push_state(tx: &Connection, new: &NewChallenge) -> rusqlite::Result<PushState> {
    let now = new.created_at;
    let locked_until: Option<Millis> = tx
        .prepare_cached(
            "SELECT until FROM push_locks WHERE user = ?1 AND rp_id = ?2 AND source = ?3",
        )?
        .query_row(params![new.user, new.rp_id, new.source], |r| r.get(0))
        .optional()?;
    // Challenges from before an unlock no longer count.
    let reset_at: Millis = tx
        .prepare_cached("SELECT at FROM push_resets WHERE user = ?1")?
        .query_row([&new.user], |r| r.get(0))
        .optional()?
        .unwrap_or(Millis::MIN);
    let since = new.window_start.max(reset_at);
    // Open ones (few: read through the state index), and in the window every one that
    // was not approved.
    let open_source: u32 = tx
        .prepare_cached(&format!(
            "SELECT count(*) FROM challenges INDEXED BY challenges_by_user_state \
             WHERE user = ?1 AND state IN {OPEN} AND expires_at > ?4 AND created_at > ?5 \
             AND rp_id = ?2 AND source = ?3"
        ))?
        .query_row(
            params![new.user, new.rp_id, new.source, now, reset_at],
            |r| r.get(0),
        )?;
    let open_user: u32 = tx
        .prepare_cached(&format!(
            "SELECT count(*) FROM challenges INDEXED BY challenges_by_user_state \
             WHERE user = ?1 AND state IN {OPEN} AND expires_at > ?2 AND created_at > ?3"
        ))?
        .query_row(params![new.user, now, reset_at], |r| r.get(0))?;
    let recent_source: u32 = tx
        .prepare_cached(
            "SELECT count(*) FROM challenges INDEXED BY challenges_unapproved_by_source \
             WHERE user = ?1 AND rp_id = ?2 AND source = ?3 AND created_at > ?4 \
             AND state != 'approved'",
        )?
        .query_row(params![new.user, new.rp_id, new.source, since], |r| {
            r.get(0)
        })?;
    let recent_user: u32 = tx
        .prepare_cached(
            "SELECT count(*) FROM challenges INDEXED BY challenges_unapproved_by_user \
             WHERE user = ?1 AND created_at > ?2 AND state != 'approved'",
        )?
        .query_row(params![new.user, since], |r| r.get(0))?;
    // Whether the user approved a login from this source since `known_since` (the service
    // exempts such a source from the per-user ceilings).
    let known_source = tx
        .prepare_cached(
            "SELECT 1 FROM challenges INDEXED BY challenges_approved_by_source \
             WHERE user = ?1 AND rp_id = ?2 AND source = ?3 AND created_at > ?4 \
             AND state = 'approved' LIMIT 1",
        )?
        .exists(params![new.user, new.rp_id, new.source, new.known_since])?;
    let code_failures: u32 = tx
        .prepare_cached("SELECT count FROM code_failures WHERE user = ?1")?
        .query_row([&new.user], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok(PushState {
        code_failures,
        locked_until,
        open_source,
        open_user,
        recent_source,
        recent_user,
        known_source,
    })
}

/// Audits a refused challenge: one `rate_limited` row a minute per user, relying party and
/// refusal, whose count grows with each further refusal.
pub(super) fn record_refusal(
    tx: &Connection,
    new: &NewChallenge,
    refusal: &Refusal,
) -> rusqlite::Result<()> {
    let now = new.created_at;
    // One row a minute per user, relying party and refusal, counting the rest in it (issue 9
    // item 12): the refusals of a flood must not grow the store. Only the user's
    // last rows are looked at (through audit_by_user), so the look-up is bounded.
    let recent: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM (SELECT id, kind, detail, at FROM audit WHERE user = ?1 \
             ORDER BY id DESC LIMIT 64) \
             WHERE kind = 'rate_limited' AND at > ?2 AND substr(detail, 1, length(?3)) = ?3 LIMIT 1",
        )?
        .query_row(
            params![
                new.user,
                now.saturating_sub(60_000),
                events::rate_limited_prefix(new, refusal)
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = recent {
        tx.prepare_cached("UPDATE audit SET count = count + 1 WHERE id = ?1")?
            .execute([id])?;
        return Ok(());
    }
    write_audit(tx, &events::rate_limited(new, refusal), now)?;
    Ok(())
}

/// Pauses pushes from the relying party and source of the reported challenge `id` until
/// `until`; audits `user_locked` naming the reporting device.
pub(super) fn lock_source(
    tx: &Connection,
    id: &str,
    current: &ChallengeRecord,
    device_id: &str,
    until: Millis,
    now: Millis,
) -> rusqlite::Result<()> {
    // The lock-out is for the source the reported login came from, not the user's
    // every login: an attacker's pushes cannot lock the owner out.
    let source: String = tx
        .prepare_cached("SELECT source FROM challenges WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO push_locks (user, rp_id, source, until) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user, rp_id, source) DO UPDATE SET until = max(until, excluded.until)",
    )?
    .execute(params![current.user, current.rp_id, source, until])?;
    write_audit(
        tx,
        &events::user_locked_reported(current, id, device_id, &source, until),
        now,
    )?;
    Ok(())
}

/// Whether an answer with this [`CodeTally`] must be refused: it approves a number-matching
/// challenge (right code or wrong) while the user's count is at the lock.
pub(super) fn code_locked(tx: &Connection, user: &str, tally: CodeTally) -> rusqlite::Result<bool> {
    let Some(lock_at) = tally.lock_at() else {
        return Ok(false);
    };
    let count: u32 = tx
        .prepare_cached("SELECT count FROM code_failures WHERE user = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok(count >= lock_at)
}

/// Applies an answer's [`CodeTally`] to its user's count of consecutive wrong codes; the
/// mismatch that reaches `lock_at` audits `user_locked`.
pub(super) fn tally_code(
    tx: &Connection,
    current: &ChallengeRecord,
    device_id: &str,
    tally: CodeTally,
    now: Millis,
) -> rusqlite::Result<()> {
    match tally {
        CodeTally::Keep => Ok(()),
        CodeTally::Reset { .. } => {
            tx.prepare_cached("DELETE FROM code_failures WHERE user = ?1")?
                .execute([&current.user])?;
            Ok(())
        }
        CodeTally::Failed { lock_at } => {
            let count: u32 = tx
                .prepare_cached(
                    "INSERT INTO code_failures (user, count) VALUES (?1, 1) \
                     ON CONFLICT (user) DO UPDATE SET count = count + 1 RETURNING count",
                )?
                .query_row([&current.user], |r| r.get(0))?;
            if count == lock_at {
                write_audit(
                    tx,
                    &events::user_locked_wrong_codes(current, device_id, count),
                    now,
                )?;
            }
            Ok(())
        }
    }
}

/// [`Store::unlock_user`](crate::store::Store::unlock_user).
pub(super) fn unlock_user<D: Db>(db: &D, user: &str, by: &str, now: Millis) -> StoreResult<bool> {
    db.write(|tx| {
        let known = tx
            .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
            .exists([user])?;
        if !known {
            return Ok(false);
        }
        let locks = tx
            .prepare_cached("DELETE FROM push_locks WHERE user = ?1")?
            .execute([user])?;
        let wrong_codes: u32 = tx
            .prepare_cached("DELETE FROM code_failures WHERE user = ?1 RETURNING count")?
            .query_row([user], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        // Issue 12: the backup-code lock is lifted by the same unlock.
        let wrong_backup: u32 = tx
            .prepare_cached("DELETE FROM backup_code_failures WHERE user = ?1 RETURNING count")?
            .query_row([user], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        // Issue 13 review: so are a host's wrong offline-code reports for the user's devices.
        tx.prepare_cached(
            "DELETE FROM offline_checks WHERE device_id IN (SELECT id FROM devices WHERE user = ?1)",
        )?
        .execute([user])?;
        tx.prepare_cached(
            "INSERT INTO push_resets (user, at) VALUES (?1, ?2) \
             ON CONFLICT (user) DO UPDATE SET at = max(at, excluded.at)",
        )?
        .execute(params![user, now])?;
        write_audit(
            tx,
            &events::user_unlocked(user, by, locks as u64, wrong_codes, wrong_backup),
            now,
        )?;
        Ok(true)
    })
}

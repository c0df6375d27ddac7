//! Grace windows in the store (issue 12): finding an open window for a new login and letting
//! it in, recording a challenge's grace key, and ending a user's windows. The window rules are
//! one query, so every way a window ends (expiry, a revoked device, a report, an end asked by
//! the device or an administrator) is checked in the transaction that lets a login in.

use pushauth_proto::ChallengeState;
use rusqlite::{params, Connection, OptionalExtension};

use super::audit::write_audit;
use super::connection::Db;
use super::limits;
use super::rows::conversion_error;
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{events, ChallengeRecord, GraceFind, GraceLogin, NewChallenge, StoreResult};

/// The newest approval that opens a window for `new`: same relying party, user and key,
/// answered by a device (grace logins open none) at or after `since`, that device still active,
/// no end of the user's windows and no report by the user since.
fn open_window(
    tx: &Connection,
    new: &NewChallenge,
    find: &GraceFind,
) -> rusqlite::Result<Option<(String, String, Millis)>> {
    tx.prepare_cached(
        "SELECT c.id, c.device_id, c.updated_at FROM challenges c \
         JOIN devices d ON d.id = c.device_id \
         WHERE c.rp_id = ?1 AND c.user = ?2 AND c.grace_key = ?3 AND c.grace_key IS NOT NULL \
         AND c.grace_of IS NULL AND c.state = 'approved' AND c.updated_at >= ?4 \
         AND d.revoked_at IS NULL \
         AND c.updated_at > coalesce((SELECT e.at FROM grace_ends e WHERE e.user = ?2), ?4 - 1) \
         AND NOT EXISTS (SELECT 1 FROM challenges r WHERE r.user = ?2 AND r.state = 'denied' \
                         AND r.reason = 'reported' AND r.updated_at >= c.updated_at) \
         ORDER BY c.updated_at DESC LIMIT 1",
    )?
    .query_row(
        params![new.rp_id, new.user, &find.key[..], find.since],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
}

/// [`Store::grace_login`](crate::store::Store::grace_login).
pub(super) fn grace_login<D: Db>(
    db: &D,
    new: &NewChallenge,
    find: &GraceFind,
    check: &dyn Fn(&PushState) -> Result<(), Refusal>,
) -> StoreResult<Option<GraceLogin>> {
    let now = new.created_at;
    db.write(|tx| {
        let Some((of, device_id, approved_at)) = open_window(tx, new, find)? else {
            return Ok(None);
        };
        // A user the limits lock (a report from this source, too many wrong codes) gets no
        // grace either; the push that follows is refused and audited as such.
        if check(&limits::push_state(tx, new)?).is_err() {
            return Ok(None);
        }
        let context =
            serde_json::to_string(&new.context).map_err(|e| conversion_error(4, e.to_string()))?;
        tx.prepare_cached(
            "INSERT INTO challenges (id, user, rp_id, state, context, context_digest, rp_nonce, \
             code, devices, created_at, expires_at, updated_at, source, grace_key, grace_of) \
             VALUES (?1, ?2, ?3, 'approved', ?4, ?5, ?6, NULL, '[]', ?7, ?8, ?7, ?9, ?10, ?11)",
        )?
        .execute(params![
            new.id,
            new.user,
            new.rp_id,
            context,
            &new.context_digest[..],
            new.rp_nonce,
            now,
            new.expires_at,
            new.source,
            &find.key[..],
            of
        ])?;
        write_audit(
            tx,
            &events::grace_login(new, &device_id, &of, approved_at),
            now,
        )?;
        Ok(Some(GraceLogin {
            challenge: ChallengeRecord {
                state: ChallengeState::Approved,
                code: None,
                ..new.pending(Vec::new())
            },
            of,
            device_id,
            approved_at,
        }))
    })
}

/// [`Store::set_grace_key`](crate::store::Store::set_grace_key).
pub(super) fn set_grace_key<D: Db>(db: &D, challenge_id: &str, key: &[u8; 32]) -> StoreResult<()> {
    db.write(|tx| {
        tx.prepare_cached("UPDATE challenges SET grace_key = ?2 WHERE id = ?1")?
            .execute(params![challenge_id, &key[..]])?;
        Ok(())
    })
}

/// [`Store::end_grace`](crate::store::Store::end_grace).
pub(super) fn end_grace<D: Db>(
    db: &D,
    user: &str,
    by: &str,
    device_id: Option<&str>,
    now: Millis,
) -> StoreResult<bool> {
    db.write(|tx| {
        let known = tx
            .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
            .exists([user])?;
        if !known {
            return Ok(false);
        }
        tx.prepare_cached(
            "INSERT INTO grace_ends (user, at) VALUES (?1, ?2) \
             ON CONFLICT (user) DO UPDATE SET at = max(at, excluded.at)",
        )?
        .execute(params![user, now])?;
        write_audit(tx, &events::grace_ended(user, device_id, by), now)?;
        Ok(true)
    })
}

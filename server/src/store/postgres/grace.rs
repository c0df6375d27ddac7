//! Grace windows in the store (issue 12): finding an open window for a new login and letting
//! it in (with the user's row locked, like any challenge creation), recording a challenge's
//! grace key, and ending a user's windows.

use pushauth_proto::ChallengeState;

use super::audit::later_audit;
use super::challenges::lock_user;
use super::db::{Conn, Db};
use super::error::{get, PgError};
use super::rows::data_error;
use super::{limits, notify};
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{events, ChallengeRecord, GraceFind, GraceLogin, NewChallenge, StoreResult};

/// The newest approval that opens a window for `new` (see SQLite's `grace::open_window`).
fn open_window(
    c: &Conn<'_>,
    new: &NewChallenge,
    find: &GraceFind,
) -> Result<Option<(String, String, Millis)>, PgError> {
    c.opt(
        "SELECT c.id, c.device_id, c.updated_at FROM challenges c \
         JOIN devices d ON d.id = c.device_id \
         WHERE c.rp_id = $1 AND c.user_name = $2 AND c.grace_key = $3 AND c.grace_key IS NOT NULL \
         AND c.grace_of IS NULL AND c.state = 'approved' AND c.updated_at >= $4 \
         AND d.revoked_at IS NULL \
         AND c.updated_at > coalesce((SELECT e.at FROM grace_ends e WHERE e.user_name = $2), \
                                     $4::bigint - 1) \
         AND NOT EXISTS (SELECT 1 FROM challenges r WHERE r.user_name = $2 AND r.state = 'denied' \
                         AND r.reason = 'reported' AND r.updated_at >= c.updated_at) \
         ORDER BY c.updated_at DESC LIMIT 1",
        &[&new.rp_id, &new.user, &&find.key[..], &find.since],
    )?
    .map(|r| Ok((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?)))
    .transpose()
}

/// [`Store::grace_login`](crate::store::Store::grace_login).
pub(super) fn grace_login<D: Db>(
    db: &D,
    new: &NewChallenge,
    find: &GraceFind,
    check: &dyn Fn(&PushState) -> Result<(), Refusal>,
) -> StoreResult<Option<GraceLogin>> {
    let now = new.created_at;
    let context = serde_json::to_string(&new.context).map_err(|e| data_error(4, e))?;
    if !super::rows::storable(&new.user) {
        return Ok(None);
    }
    db.write(|c| {
        if !lock_user(c, &new.user)? {
            return Ok(None);
        }
        let Some((of, device_id, approved_at)) = open_window(c, new, find)? else {
            return Ok(None);
        };
        // A user the limits lock gets no grace either.
        if check(&limits::push_state(c, new)?).is_err() {
            return Ok(None);
        }
        c.exec(
            "INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, \
             rp_nonce, code, devices, created_at, expires_at, updated_at, source, grace_key, \
             grace_of) \
             VALUES ($1, $2, $3, 'approved', $4, $5, $6, NULL, '[]', $7, $8, $7, $9, $10, $11)",
            &[
                &new.id,
                &new.user,
                &new.rp_id,
                &context,
                &&new.context_digest[..],
                &new.rp_nonce,
                &now,
                &new.expires_at,
                &new.source,
                &&find.key[..],
                &of,
            ],
        )?;
        later_audit(
            c,
            &events::grace_login(new, &device_id, &of, approved_at),
            now,
        )?;
        notify::changed(c, Some(&new.id), &[])?;
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
    db.write(|c| {
        c.exec(
            "UPDATE challenges SET grace_key = $2 WHERE id = $1",
            &[&challenge_id, &&key[..]],
        )?;
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
    if !super::rows::storable(user) {
        return Ok(false);
    }
    db.write(|c| {
        if !lock_user(c, user)? {
            return Ok(false);
        }
        c.exec(
            "INSERT INTO grace_ends (user_name, at) VALUES ($1, $2) \
             ON CONFLICT (user_name) DO UPDATE SET at = GREATEST(grace_ends.at, excluded.at)",
            &[&user, &now],
        )?;
        later_audit(c, &events::grace_ended(user, device_id, by), now)?;
        Ok(true)
    })
}

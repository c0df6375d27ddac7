//! Challenges: creating one (after the limits allow it, with the user's row locked so that
//! replicas count one after the other), reading it, and its compare-and-set transitions (the
//! challenge's row locked, then `UPDATE … WHERE state …`); every read or write first moves a
//! due challenge to `expired`. Each change notifies its challenge and devices.

use pushauth_proto::ChallengeState;

use super::audit::later_audit;
use super::db::{Conn, Db};
use super::error::{get, PgError};
use super::rows::{
    all, challenge_from_row, data_error, storable, string_list, CHALLENGE_COLUMNS,
    C_CHALLENGE_COLUMNS,
};
use super::{limits, notify};
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{
    AnswerRecord, AuditEntry, Cas, ChallengeRecord, Create, Expired, NewChallenge, StoreResult,
};

/// The open states, as an SQL list.
pub(super) const OPEN: &str = "('pending','acknowledged')";

/// A challenge by id, as stored (no expiry applied); `lock` takes its row for the transaction.
pub(super) fn select_challenge(
    conn: &Conn<'_>,
    id: &str,
    lock: bool,
) -> Result<Option<ChallengeRecord>, PgError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1{lock}");
    conn.opt(&sql, &[&id])?
        .map(|r| challenge_from_row(&r))
        .transpose()
}

/// Locks the user's row for the transaction: whatever counts or changes the user's limits
/// (creating a challenge, answering one, unlocking) runs one at a time per user, across
/// replicas. `false` for a user never seen.
pub(super) fn lock_user(conn: &Conn<'_>, user: &str) -> Result<bool, PgError> {
    conn.exists("SELECT 1 FROM users WHERE name = $1 FOR UPDATE", &[&user])
}

/// Drops the open-challenge index rows of a challenge that just ended and notifies it and its
/// devices (one statement).
pub(super) fn finish(conn: &Conn<'_>, id: &str, devices: &[String]) -> Result<(), PgError> {
    notify::changed_after(
        conn,
        "DELETE FROM open_challenge_devices WHERE challenge_id = $1",
        id,
        devices,
    )
}

/// Moves one challenge to `expired` if it is open and due; audits and notifies it. True if it
/// did.
pub(super) fn expire_if_due(
    conn: &Conn<'_>,
    id: &str,
    user: &str,
    now: Millis,
) -> Result<bool, PgError> {
    let row = conn.opt(
        &format!(
            "UPDATE challenges SET state = 'expired', updated_at = $2 \
             WHERE id = $1 AND state IN {OPEN} AND expires_at <= $2 RETURNING devices"
        ),
        &[&id, &now],
    )?;
    let Some(row) = row else {
        return Ok(false);
    };
    finish(conn, id, &string_list(&row, 0)?)?;
    later_audit(
        conn,
        &AuditEntry {
            kind: "challenge_expired",
            user: Some(user.to_owned()),
            challenge_id: Some(id.to_owned()),
            ..AuditEntry::default()
        },
        now,
    )?;
    Ok(true)
}

/// Runs a challenge `UPDATE` (`sql`, without its `RETURNING`) and returns the row it changed,
/// if any: the transition's answer without another read.
fn updated(
    conn: &Conn<'_>,
    sql: &str,
    params: &[super::conn::P<'_>],
) -> Result<Option<Box<ChallengeRecord>>, PgError> {
    conn.opt(&format!("{sql} RETURNING {CHALLENGE_COLUMNS}"), params)?
        .map(|r| challenge_from_row(&r).map(Box::new))
        .transpose()
}

/// What a transition's `UPDATE` did.
enum Applied {
    /// The challenge as the `UPDATE … RETURNING` left it (no read after it).
    Changed(Box<ChallengeRecord>),
    /// Nothing: the challenge was in a state the transition does not start from.
    Unchanged,
    /// Refused by the user's wrong-code lock; nothing written.
    CodeLocked,
}

/// Which rows a transition locks before it applies.
#[derive(Clone, Copy, PartialEq)]
enum Locks {
    /// The challenge's row.
    Challenge,
    /// The challenge's row, then its user's (in the same statement).
    ChallengeAndUser,
}

/// Applies a compare-and-set `UPDATE` (whose WHERE clause holds the allowed states and
/// `expires_at > now`) after locking the challenge's row (and with
/// [`Locks::ChallengeAndUser`] its user's) and expiring it if it is due.
fn transition<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
    locks: Locks,
    apply: impl FnOnce(&Conn<'_>, &ChallengeRecord) -> Result<Applied, PgError>,
) -> StoreResult<Cas> {
    if !storable(id) {
        return Ok(Cas::Missing);
    }
    db.write(|c| {
        let found = if locks == Locks::ChallengeAndUser {
            // The user's row too, in the same round trip (a row-locking sub-select; a user
            // never seen locks nothing, as before).
            c.opt(
                &format!(
                    "SELECT {C_CHALLENGE_COLUMNS}, \
                     (SELECT 1 FROM users u WHERE u.name = c.user_name FOR UPDATE) \
                     FROM challenges c WHERE c.id = $1 FOR UPDATE"
                ),
                &[&id],
            )?
            .map(|r| challenge_from_row(&r))
            .transpose()?
        } else {
            select_challenge(c, id, true)?
        };
        let Some(current) = found else {
            return Ok(Cas::Missing);
        };
        // The row is locked and fresh: only a due one needs the expiring UPDATE.
        if current.is_due(now) && expire_if_due(c, id, &current.user, now)? {
            let after = select_challenge(c, id, false)?;
            return Ok(after.map_or(Cas::Missing, |c| Cas::Expired(Box::new(c))));
        }
        Ok(match apply(c, &current)? {
            Applied::CodeLocked => Cas::CodeLocked(Box::new(current)),
            Applied::Unchanged => Cas::WrongState(Box::new(current)),
            Applied::Changed(after) => Cas::Changed(after),
        })
    })
}

/// [`Store::create_challenge`](crate::store::Store::create_challenge).
pub(super) fn create_challenge<D: Db>(
    db: &D,
    new: &NewChallenge,
    check: &dyn Fn(&PushState) -> Result<(), Refusal>,
) -> StoreResult<Create> {
    let now = new.created_at;
    let context = serde_json::to_string(&new.context).map_err(|e| data_error(4, e))?;
    if !storable(&new.user) {
        return Ok(Create::UnknownUser);
    }
    db.write(|c| {
        if !lock_user(c, &new.user)? {
            return Ok(Create::UnknownUser);
        }
        // After the lock, in a statement of its own: it sees what the lock's last holder
        // committed (another replica's challenge for this user, a device just revoked).
        let (state, mut devices) = limits::push_state_and_devices(c, new)?;
        if let Some(wanted) = &new.requested_devices {
            devices.retain(|d| wanted.contains(&d.id));
        }
        if devices.is_empty() {
            return Ok(Create::NoDevice);
        }
        if let Err(refusal) = check(&state) {
            limits::record_refusal(c, new, &refusal)?;
            return Ok(Create::Refused(refusal));
        }
        let device_ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
        let devices_json = serde_json::to_string(&device_ids).map_err(|e| data_error(8, e))?;
        // Nothing here answers anything the operation needs: these go with the COMMIT.
        c.later(
            "INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, \
             rp_nonce, code, devices, created_at, expires_at, updated_at, source) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $9, $11)",
            vec![
                Box::new(new.id.clone()),
                Box::new(new.user.clone()),
                Box::new(new.rp_id.clone()),
                Box::new(context),
                Box::new(new.context_digest.to_vec()),
                Box::new(new.rp_nonce.clone()),
                Box::new(new.code.clone()),
                Box::new(devices_json),
                Box::new(now),
                Box::new(new.expires_at),
                Box::new(new.source.clone()),
            ],
        )?;
        c.later(
            "INSERT INTO open_challenge_devices (device_id, challenge_id) \
             SELECT d, $2 FROM unnest($1::text[]) AS d",
            vec![Box::new(device_ids.clone()), Box::new(new.id.clone())],
        )?;
        later_audit(
            c,
            &AuditEntry {
                kind: "challenge_created",
                user: Some(new.user.clone()),
                challenge_id: Some(new.id.clone()),
                detail: Some(format!(
                    "rp {}, {} device(s), code {}",
                    new.rp_id,
                    device_ids.len(),
                    if new.code.is_some() { "on" } else { "off" }
                )),
                ..AuditEntry::default()
            },
            now,
        )?;
        notify::changed(c, None, &device_ids)?;
        Ok(Create::Created {
            challenge: Box::new(ChallengeRecord {
                id: new.id.clone(),
                user: new.user.clone(),
                rp_id: new.rp_id.clone(),
                state: ChallengeState::Pending,
                context: new.context.clone(),
                context_digest: new.context_digest,
                rp_nonce: new.rp_nonce.clone(),
                code: new.code.clone(),
                devices: device_ids,
                created_at: now,
                expires_at: new.expires_at,
                device_id: None,
                decision: None,
                reason: None,
                typed_code: None,
                responded_at: None,
                signature: None,
            }),
            devices,
        })
    })
}

/// [`Store::get_challenge`](crate::store::Store::get_challenge).
pub(super) fn get_challenge<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
) -> StoreResult<Option<(ChallengeRecord, bool)>> {
    if !storable(id) {
        return Ok(None);
    }
    let Some(found) = db.read(|c| select_challenge(c, id, false))? else {
        return Ok(None);
    };
    if !found.is_due(now) {
        return Ok(Some((found, false)));
    }
    db.write(|c| {
        let expired = expire_if_due(c, id, &found.user, now)?;
        Ok(select_challenge(c, id, false)?.map(|c| (c, expired)))
    })
}

/// [`Store::acknowledge`](crate::store::Store::acknowledge).
pub(super) fn acknowledge<D: Db>(db: &D, id: &str, now: Millis) -> StoreResult<Cas> {
    transition(db, id, now, Locks::Challenge, |c, _| {
        let Some(after) = updated(
            c,
            "UPDATE challenges SET state = 'acknowledged', updated_at = $2 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $2",
            &[&id, &now],
        )?
        else {
            return Ok(Applied::Unchanged);
        };
        notify::changed(c, Some(id), &[])?;
        Ok(Applied::Changed(after))
    })
}

/// [`Store::answer`](crate::store::Store::answer).
pub(super) fn answer<D: Db>(
    db: &D,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
) -> StoreResult<Cas> {
    transition(db, id, now, Locks::ChallengeAndUser, |c, current| {
        // The user's row is locked (parallel answers, on any replica, cannot pass the
        // wrong-code lock), and this statement's snapshot is younger than that lock: its count
        // of wrong codes is the last holder's. Refused at the lock, it changes nothing.
        let lock_at = answer.code_tally.lock_at().map(i64::from);
        let changed = updated(
            c,
            &format!(
                "UPDATE challenges SET state = $2, updated_at = $3, device_id = $4, \
                 decision = $5, reason = $6, typed_code = $7, responded_at = $8, signature = $9 \
                 WHERE id = $1 AND state IN {OPEN} AND expires_at > $3 AND ($11::bigint IS NULL \
                 OR coalesce((SELECT count FROM code_failures WHERE user_name = $10), 0) < $11)"
            ),
            &[
                &id,
                &answer.state.as_str(),
                &now,
                &answer.device_id,
                &answer.decision.as_str(),
                &answer.reason.map(|r| r.as_str()),
                &answer.typed_code,
                &answer.responded_at,
                &answer.signature,
                &current.user,
                &lock_at,
            ],
        )?;
        let Some(after) = changed else {
            // The row is locked: its state cannot have moved since it was read.
            return Ok(
                if limits::code_locked(c, &current.user, answer.code_tally)? {
                    Applied::CodeLocked
                } else {
                    Applied::Unchanged
                },
            );
        };
        finish(c, id, &current.devices)?;
        let detail = match answer.reason {
            Some(reason) => format!("{} ({reason})", answer.decision),
            None => answer.decision.to_string(),
        };
        later_audit(
            c,
            &AuditEntry {
                kind: "challenge_answered",
                user: Some(current.user.clone()),
                device_id: Some(answer.device_id.clone()),
                challenge_id: Some(id.to_owned()),
                detail: Some(detail),
            },
            now,
        )?;
        if let Some(until) = answer.lock_user_until {
            limits::lock_source(c, id, current, &answer.device_id, until, now)?;
        }
        limits::tally_code(c, current, &answer.device_id, answer.code_tally, now)?;
        Ok(Applied::Changed(after))
    })
}

/// [`Store::cancel`](crate::store::Store::cancel).
pub(super) fn cancel<D: Db>(db: &D, id: &str, now: Millis) -> StoreResult<Cas> {
    transition(db, id, now, Locks::Challenge, |c, current| {
        let changed = updated(
            c,
            &format!(
                "UPDATE challenges SET state = 'cancelled', updated_at = $2 \
                 WHERE id = $1 AND state IN {OPEN} AND expires_at > $2"
            ),
            &[&id, &now],
        )?;
        if changed.is_some() {
            finish(c, id, &current.devices)?;
            later_audit(
                c,
                &AuditEntry {
                    kind: "challenge_cancelled",
                    user: Some(current.user.clone()),
                    challenge_id: Some(id.to_owned()),
                    detail: Some(format!("rp {}", current.rp_id)),
                    ..AuditEntry::default()
                },
                now,
            )?;
        }
        Ok(changed.map_or(Applied::Unchanged, Applied::Changed))
    })
}

/// [`Store::device_challenges`](crate::store::Store::device_challenges).
pub(super) fn device_challenges<D: Db>(
    db: &D,
    device_id: &str,
    now: Millis,
) -> StoreResult<(Vec<ChallengeRecord>, Vec<Expired>)> {
    if !storable(device_id) {
        return Ok((Vec::new(), Vec::new()));
    }
    let open = db.read(|c| {
        all(
            c.query(
                &format!(
                    "SELECT {C_CHALLENGE_COLUMNS} FROM open_challenge_devices o \
                     JOIN challenges c ON c.id = o.challenge_id \
                     WHERE o.device_id = $1 AND c.state IN {OPEN} ORDER BY c.created_at, c.id"
                ),
                &[&device_id],
            )?,
            challenge_from_row,
        )
    })?;
    let (due, live): (Vec<_>, Vec<_>) = open.into_iter().partition(|c| c.is_due(now));
    if due.is_empty() {
        return Ok((live, Vec::new()));
    }
    let expired = db.write(|c| {
        let mut expired = Vec::new();
        for ch in &due {
            if expire_if_due(c, &ch.id, &ch.user, now)? {
                expired.push(Expired {
                    id: ch.id.clone(),
                    devices: ch.devices.clone(),
                });
            }
        }
        Ok(expired)
    })?;
    Ok((live, expired))
}

/// [`Store::open_challenges`](crate::store::Store::open_challenges).
pub(super) fn open_challenges<D: Db>(db: &D, now: Millis) -> StoreResult<u64> {
    db.read(|c| {
        let row = c.one(
            &format!("SELECT count(*) FROM challenges WHERE state IN {OPEN} AND expires_at > $1"),
            &[&now],
        )?;
        let n: i64 = get(&row, 0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    })
}

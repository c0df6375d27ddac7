//! Challenges: creating one (after the limits allow it), reading it, and its compare-and-set
//! transitions; every read or write first moves a due challenge to `expired`.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::write_audit;
use super::connection::Db;
use super::limits;
use super::rows::{
    challenge_from_row, conversion_error, device_from_row, CHALLENGE_COLUMNS, DEVICE_COLUMNS,
};
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{
    events, AnswerRecord, Cas, ChallengeRecord, Create, DeviceChallenges, Expired, NewChallenge,
    StoreResult,
};

/// The open states, as an SQL list.
pub(super) const OPEN: &str = "('pending','acknowledged')";

/// A challenge by id, as stored (no expiry applied).
pub(super) fn select_challenge(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<ChallengeRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = ?1"
    ))?
    .query_row([id], challenge_from_row)
    .optional()
}

/// Drops the open-challenge index rows of a challenge that just ended.
pub(super) fn finish(tx: &Connection, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM open_challenge_devices WHERE challenge_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Moves one challenge to `expired` if it is open and due; audits it. True if it did.
pub(super) fn expire_if_due(
    tx: &Connection,
    id: &str,
    user: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let changed = tx
        .prepare_cached(&format!(
            "UPDATE challenges SET state = 'expired', updated_at = ?2 \
             WHERE id = ?1 AND state IN {OPEN} AND expires_at <= ?2"
        ))?
        .execute(params![id, now])?;
    if changed == 0 {
        return Ok(false);
    }
    finish(tx, id)?;
    write_audit(tx, &events::challenge_expired(user, id), now)?;
    Ok(true)
}

/// What a transition's `UPDATE` did.
enum Applied {
    /// Rows changed (0: the challenge was in a state the transition does not start from).
    Rows(usize),
    /// Refused by the user's wrong-code lock; nothing written.
    CodeLocked,
    /// Refused: the answering device is revoked (or gone); nothing written.
    DeviceRevoked,
    /// Refused: the relying party's key no longer holds ([`Cas::KeyRevoked`]).
    KeyRevoked,
}

/// Applies a compare-and-set `UPDATE` (whose WHERE clause holds the allowed states and
/// `expires_at > now`) after expiring the challenge if it is due.
fn transition<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
    apply: impl FnOnce(&Connection, &ChallengeRecord) -> rusqlite::Result<Applied>,
) -> StoreResult<Cas> {
    db.write(|tx| {
        let Some(current) = select_challenge(tx, id)? else {
            return Ok(Cas::Missing);
        };
        if expire_if_due(tx, id, &current.user, now)? {
            let after = select_challenge(tx, id)?;
            return Ok(after.map_or(Cas::Missing, |c| Cas::Expired(Box::new(c))));
        }
        match apply(tx, &current)? {
            Applied::CodeLocked => return Ok(Cas::CodeLocked(Box::new(current))),
            Applied::DeviceRevoked => return Ok(Cas::DeviceRevoked(Box::new(current))),
            Applied::KeyRevoked => return Ok(Cas::KeyRevoked(Box::new(current))),
            Applied::Rows(0) => return Ok(Cas::WrongState(Box::new(current))),
            Applied::Rows(_) => {}
        }
        Ok(select_challenge(tx, id)?.map_or(Cas::Missing, |c| Cas::Changed(Box::new(c))))
    })
}

/// Whether relying party `rp_id` still has the key whose stored hash is `key` and is not
/// revoked (`None`: nothing to check), read in the caller's write transaction: the one
/// writer, so a revocation commits before this reads (and it refuses) or after the caller
/// commits ([`NewChallenge::rp_key`]).
fn key_holds(tx: &Connection, rp_id: &str, key: Option<&[u8; 32]>) -> rusqlite::Result<bool> {
    let Some(key) = key else {
        return Ok(true);
    };
    tx.prepare_cached(
        "SELECT 1 FROM relying_parties WHERE id = ?1 AND key_hash = ?2 AND revoked_at IS NULL",
    )?
    .exists(params![rp_id, &key[..]])
}

/// [`Store::create_challenge`](crate::store::Store::create_challenge).
pub(super) fn create_challenge<D: Db>(
    db: &D,
    new: &NewChallenge,
    check: &dyn Fn(&PushState) -> Result<(), Refusal>,
) -> StoreResult<Create> {
    let now = new.created_at;
    db.write(|tx| {
        if !key_holds(tx, &new.rp_id, new.rp_key.as_ref())? {
            return Ok(Create::KeyRevoked);
        }
        let known = tx
            .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
            .exists([&new.user])?;
        if !known {
            return Ok(Create::UnknownUser);
        }
        let mut devices = tx
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE user = ?1 AND revoked_at IS NULL \
                 ORDER BY created_at, id"
            ))?
            .query_map([&new.user], device_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if let Some(wanted) = &new.requested_devices {
            devices.retain(|d| wanted.contains(&d.id));
        }
        if devices.is_empty() {
            return Ok(Create::NoDevice);
        }
        let state = limits::push_state(tx, new)?;
        if let Err(refusal) = check(&state) {
            limits::record_refusal(tx, new, &refusal)?;
            return Ok(Create::Refused(refusal));
        }
        let device_ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
        let context = serde_json::to_string(&new.context)
            .map_err(|e| conversion_error(4, e.to_string()))?;
        let devices_json = serde_json::to_string(&device_ids)
            .map_err(|e| conversion_error(8, e.to_string()))?;
        tx.prepare_cached(
            "INSERT INTO challenges (id, user, rp_id, state, context, context_digest, rp_nonce, code, \
             devices, created_at, expires_at, updated_at, source) \
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11)",
        )?
        .execute(params![
            new.id,
            new.user,
            new.rp_id,
            context,
            &new.context_digest[..],
            new.rp_nonce,
            new.code,
            devices_json,
            now,
            new.expires_at,
            new.source
        ])?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO open_challenge_devices (device_id, challenge_id) VALUES (?1, ?2)",
            )?;
            for id in &device_ids {
                stmt.execute(params![id, new.id])?;
            }
        }
        write_audit(
            tx,
            &events::challenge_created(new, device_ids.len()),
            now,
        )?;
        let subscriptions = super::push_subscriptions::of_devices_in(tx, &device_ids)?;
        Ok(Create::Created {
            challenge: Box::new(new.pending(device_ids)),
            devices,
            subscriptions,
        })
    })
}

/// [`Store::get_challenge`](crate::store::Store::get_challenge).
pub(super) fn get_challenge<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
) -> StoreResult<Option<(ChallengeRecord, bool)>> {
    let Some(found) = db.read(|conn| select_challenge(conn, id))? else {
        return Ok(None);
    };
    if !found.is_due(now) {
        return Ok(Some((found, false)));
    }
    db.write(|tx| {
        let expired = expire_if_due(tx, id, &found.user, now)?;
        Ok(select_challenge(tx, id)?.map(|c| (c, expired)))
    })
}

/// [`Store::acknowledge`](crate::store::Store::acknowledge).
pub(super) fn acknowledge<D: Db>(db: &D, id: &str, now: Millis) -> StoreResult<Cas> {
    transition(db, id, now, |tx, _| {
        tx.prepare_cached(
            "UPDATE challenges SET state = 'acknowledged', updated_at = ?2 \
             WHERE id = ?1 AND state = 'pending' AND expires_at > ?2",
        )?
        .execute(params![id, now])
        .map(Applied::Rows)
    })
}

/// [`Store::answer`](crate::store::Store::answer).
pub(super) fn answer<D: Db>(
    db: &D,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
) -> StoreResult<Cas> {
    transition(db, id, now, |tx, current| {
        // In the same transaction as the tally, so parallel answers cannot pass the lock.
        if limits::code_locked(tx, &current.user, answer.code_tally)? {
            return Ok(Applied::CodeLocked);
        }
        let changed = tx
            .prepare_cached(&format!(
                "UPDATE challenges SET state = ?2, updated_at = ?3, device_id = ?4, decision = ?5, \
                 reason = ?6, typed_code = ?7, responded_at = ?8, signature = ?9 \
                 WHERE id = ?1 AND state IN {OPEN} AND expires_at > ?3 \
                 AND EXISTS (SELECT 1 FROM devices WHERE id = ?4 AND revoked_at IS NULL)"
            ))?
            .execute(params![
                id,
                answer.state.as_str(),
                now,
                answer.device_id,
                answer.decision.as_str(),
                answer.reason.map(|r| r.as_str()),
                answer.typed_code,
                answer.responded_at,
                answer.signature
            ])?;
        if changed == 0 {
            // An open challenge refused it because the device was revoked after its request
            // was authenticated: say so rather than blame the challenge's state.
            let active = tx
                .prepare_cached("SELECT 1 FROM devices WHERE id = ?1 AND revoked_at IS NULL")?
                .exists([&answer.device_id])?;
            return Ok(if active || current.state.is_terminal() {
                Applied::Rows(0)
            } else {
                Applied::DeviceRevoked
            });
        }
        finish(tx, id)?;
        write_audit(
            tx,
            &events::challenge_answered(&current.user, id, answer),
            now,
        )?;
        if let Some(until) = answer.lock_user_until {
            limits::lock_source(tx, id, current, &answer.device_id, until, now)?;
        }
        limits::tally_code(tx, current, &answer.device_id, answer.code_tally, now)?;
        Ok(Applied::Rows(changed))
    })
}

/// [`Store::cancel`](crate::store::Store::cancel).
pub(super) fn cancel<D: Db>(
    db: &D,
    id: &str,
    rp_key: Option<&[u8; 32]>,
    now: Millis,
) -> StoreResult<Cas> {
    transition(db, id, now, |tx, current| {
        if !key_holds(tx, &current.rp_id, rp_key)? {
            return Ok(Applied::KeyRevoked);
        }
        let changed = tx
            .prepare_cached(&format!(
                "UPDATE challenges SET state = 'cancelled', updated_at = ?2 \
                 WHERE id = ?1 AND state IN {OPEN} AND expires_at > ?2"
            ))?
            .execute(params![id, now])?;
        if changed == 1 {
            finish(tx, id)?;
            write_audit(tx, &events::challenge_cancelled(current, id), now)?;
        }
        Ok(Applied::Rows(changed))
    })
}

/// [`Store::device_challenges`](crate::store::Store::device_challenges).
pub(super) fn device_challenges<D: Db>(
    db: &D,
    device_id: &str,
    now: Millis,
) -> StoreResult<DeviceChallenges> {
    let columns: Vec<String> = CHALLENGE_COLUMNS
        .split(", ")
        .map(|col| format!("c.{col}"))
        .collect();
    let open = db.read(|conn| {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {}, r.name FROM open_challenge_devices o \
             JOIN challenges c ON c.id = o.challenge_id \
             LEFT JOIN relying_parties r ON r.id = c.rp_id \
             WHERE o.device_id = ?1 AND c.state IN {OPEN} ORDER BY c.created_at, c.id",
            columns.join(", ")
        ))?;
        let rows = stmt
            .query_map([device_id], |row| {
                Ok((challenge_from_row(row)?, row.get(columns.len())?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    let (due, live): (Vec<_>, Vec<_>) = open.into_iter().partition(|(c, _)| c.is_due(now));
    if due.is_empty() {
        return Ok((live, Vec::new()));
    }
    let expired = db.write(|tx| {
        let mut expired = Vec::new();
        for (c, _) in due {
            if expire_if_due(tx, &c.id, &c.user, now)? {
                expired.push(Expired {
                    id: c.id,
                    devices: c.devices,
                });
            }
        }
        Ok(expired)
    })?;
    Ok((live, expired))
}

/// [`Store::open_challenges`](crate::store::Store::open_challenges).
pub(super) fn open_challenges<D: Db>(db: &D, now: Millis) -> StoreResult<u64> {
    db.read(|conn| {
        conn.prepare_cached(&format!(
            "SELECT count(*) FROM challenges WHERE state IN {OPEN} AND expires_at > ?1"
        ))?
        .query_row([now], |r| r.get(0))
    })
}

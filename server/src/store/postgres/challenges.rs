//! Challenges: creating one (after the limits allow it, with the user's row locked so that
//! replicas count one after the other), reading it, and its compare-and-set transitions (the
//! challenge's row locked, then `UPDATE … WHERE state …`); every read or write first moves a
//! due challenge to `expired`. Each change notifies its challenge and devices.

use super::audit::later_audit;
use super::combine::{Combiner, Keyed};
use super::db::{Conn, Db, P};
use super::error::{get, PgError};
use super::kept::Kept;
use super::relying_parties::key_holds;
use super::rows::{
    all, challenge_from_row, data_error, storable, string_list, CHALLENGE_COLUMNS,
    CHALLENGE_COLUMN_COUNT, C_CHALLENGE_COLUMNS,
};
use super::{devices, limits, notify, replicas};
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{
    events, AnswerRecord, Cas, ChallengeRecord, CodeTally, Create, DbError, DbErrorKind,
    DeviceChallenges, Expired, NewChallenge, NonceRefused, PushCheck, RequestNonce, StoreError,
    StoreResult,
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
    conn.exists(LOCK_USER, &[&user])
}

/// [`lock_user`]'s statement (`$1` the user). `NO KEY UPDATE`, as every user-row lock of the
/// store: the holders exclude each other, but the foreign-key checks of rows that name the
/// user (`FOR KEY SHARE`: an admin's enrollment link) do not wait for them. No statement
/// changes or deletes a user's row, so nothing needs the stronger lock.
pub(super) const LOCK_USER: &str = "SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE";

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
    later_audit(conn, &events::challenge_expired(user, id), now)?;
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
    /// Nothing: the relying party's key no longer holds ([`Cas::KeyRevoked`]).
    KeyRevoked,
}

/// Applies a compare-and-set `UPDATE` (whose WHERE clause holds the allowed states and
/// `expires_at > now`) after locking the challenge's row and expiring it if it is due.
fn transition<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
    apply: impl FnOnce(&Conn<'_>, &ChallengeRecord) -> Result<Applied, PgError>,
) -> StoreResult<Cas> {
    if !storable(id) {
        return Ok(Cas::Missing);
    }
    db.write(|c| {
        let found = select_challenge(c, id, true)?;
        let Some(current) = found else {
            return Ok(Cas::Missing);
        };
        // The row is locked and fresh: only a due one needs the expiring UPDATE.
        if current.is_due(now) && expire_if_due(c, id, &current.user, now)? {
            let after = select_challenge(c, id, false)?;
            return Ok(after.map_or(Cas::Missing, |c| Cas::Expired(Box::new(c))));
        }
        Ok(match apply(c, &current)? {
            Applied::Unchanged => Cas::WrongState(Box::new(current)),
            Applied::KeyRevoked => Cas::KeyRevoked(Box::new(current)),
            Applied::Changed(after) => Cas::Changed(after),
        })
    })
}

/// A creation waiting for its batch ([`Creations`]).
pub(super) struct Creation {
    new: NewChallenge,
    check: PushCheck,
}

#[cfg(test)]
impl Creation {
    pub(super) fn new(new: NewChallenge, check: PushCheck) -> Creation {
        Creation { new, check }
    }
}

impl Keyed for Creation {
    fn key(&self) -> &str {
        &self.new.user
    }
}

/// What a batch gives each of its creations: a result, or "run alone" (the batch could not
/// decide it: its user's row was held, or the transaction failed before its `COMMIT`).
pub(super) enum Batched {
    /// Decided (and, if created, committed), or failed where running it again could repeat it.
    Done(StoreResult<Create>),
    /// Not decided, nothing written: the caller runs it on its own ([`create_one`]).
    Alone,
}

/// The store's concurrent creations, decided in batches ([`Combiner`]).
pub(super) type Creations = Combiner<Creation, Batched>;

/// Most creations in one batch: 2 statements each in its first round trip.
pub(super) const CREATIONS_MAX: usize = 16;

/// [`Store::create_challenge`](crate::store::Store::create_challenge). On the store itself
/// (not in a group or an atomic unit), creations made at the same time on its job threads
/// share one transaction ([`Creations`], [`create_batch`]); one the batch could not decide
/// runs on its own, on its caller's thread.
pub(super) fn create_challenge<D: Db>(
    db: &D,
    new: &NewChallenge,
    check: PushCheck,
) -> StoreResult<Create> {
    if !storable(&new.user) {
        return Ok(Create::UnknownUser);
    }
    let Some(creations) = db.creations() else {
        return create_one(db, new, &*check);
    };
    let batched = creations.run(
        Creation {
            new: new.clone(),
            check: std::sync::Arc::clone(&check),
        },
        |batch| create_batch(db, &batch),
        || {
            Batched::Done(Err(StoreError::Corrupt(
                "a batch of challenge creations ended without a result".into(),
            )))
        },
    );
    match batched {
        Batched::Done(result) => result,
        Batched::Alone => create_one(db, new, &*check),
    }
}

/// One creation in a transaction of its own, waiting for its user's row lock if need be.
fn create_one<D: Db>(
    db: &D,
    new: &NewChallenge,
    check: &dyn Fn(&PushState) -> Result<(), Refusal>,
) -> StoreResult<Create> {
    let context = context_json(new)?;
    let created = db.write(|c| {
        // The user's row lock, then the limits' counts and the devices in a statement of its
        // own (in the same round trip): it sees what the lock's last holder committed
        // (another replica's challenge for this user, a device just revoked).
        let (user, read) = limits::lock_user_then_push_state(c, new)?;
        decide(c, new, context, check, user, read, db.replica())
    })?;
    keep_terms(db, &created);
    Ok(created)
}

/// Creations of different users in one transaction: one round trip locks every user's row
/// (in name order, so two replicas' batches cannot deadlock) and reads each one's limits and
/// devices; each is decided as [`create_one`] decides; their writes go with the `COMMIT`.
/// One result per creation, in the order given:
/// - one whose user's row another transaction holds is skipped, not waited for
///   ([`limits::Locked::Busy`]): it is [`Batched::Alone`] and waits on its own, so that it
///   holds up neither the batch nor the replica's other creations;
/// - a failure before the `COMMIT` (a bad item) writes nothing: every creation is
///   [`Batched::Alone`], so that one fails only itself;
/// - so is a failure of the round trip that carried the `COMMIT` when the server refused it
///   ([`rolled_back`]: a write sent with it broke a constraint);
/// - an unreachable store, or any other failure of that round trip (the `COMMIT` may have
///   gone through), is every creation's failure: running them again could repeat them.
pub(super) fn create_batch<D: Db>(db: &D, batch: &[Creation]) -> Vec<Batched> {
    let mut results: Vec<Option<Batched>> = batch.iter().map(|_| None).collect();
    // Those whose context cannot be stored fail alone, before the transaction.
    let mut ready: Vec<(usize, String)> = Vec::with_capacity(batch.len());
    for (i, item) in batch.iter().enumerate() {
        match context_json(&item.new) {
            Ok(context) => ready.push((i, context)),
            Err(e) => results[i] = Some(Batched::Done(Err(e))),
        }
    }
    ready.sort_by(|a, b| batch[a.0].new.user.cmp(&batch[b.0].new.user));
    let ids: Vec<usize> = ready.iter().map(|(i, _)| *i).collect();
    let news: Vec<&NewChallenge> = ids.iter().map(|&i| &batch[i].new).collect();
    let decided = std::cell::Cell::new(false);
    let outcome = if news.is_empty() {
        Ok(Vec::new())
    } else {
        db.write(|c| {
            let reads = limits::lock_users_then_push_states(c, &news)?;
            let created = ready
                .into_iter()
                .zip(reads)
                .map(|((i, context), read)| match read {
                    limits::Locked::Read(user, read) => {
                        let item = &batch[i];
                        decide(
                            c,
                            &item.new,
                            context,
                            &*item.check,
                            user,
                            read,
                            db.replica(),
                        )
                        .map(Some)
                    }
                    // Its user's row was held: not decided.
                    limits::Locked::Busy => Ok(None),
                })
                .collect::<Result<Vec<_>, PgError>>()?;
            decided.set(true);
            Ok(created)
        })
    };
    match outcome {
        Ok(created) => {
            for (i, created) in ids.into_iter().zip(created) {
                results[i] = Some(match created {
                    Some(created) => {
                        keep_terms(db, &created);
                        Batched::Done(Ok(created))
                    }
                    None => Batched::Alone,
                });
            }
        }
        Err(e) if e.is_unavailable() || (decided.get() && !rolled_back(&e)) => {
            for i in ids {
                results[i] = Some(Batched::Done(Err(e.copy())));
            }
        }
        Err(_) => {
            for i in ids {
                results[i] = Some(Batched::Alone);
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Batched::Alone))
        .collect()
}

/// Whether the server refused the round trip that carried the `COMMIT` (a write sent with it
/// broke a constraint, a lock or serialization failure): it then rolled the transaction back,
/// and nothing of it was kept. Any other failure there leaves the outcome unknown.
fn rolled_back(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Db(DbError {
            kind: DbErrorKind::Constraint | DbErrorKind::Busy | DbErrorKind::InvalidData,
            ..
        })
    )
}

/// The challenge's context as stored.
fn context_json(new: &NewChallenge) -> StoreResult<String> {
    Ok(serde_json::to_string(&new.context).map_err(|e| data_error(4, e))?)
}

/// After a creation committed: its terms are what every replica reads from now on.
fn keep_terms<D: Db>(db: &D, created: &Create) {
    if let (Some(kept), Create::Created { challenge, .. }) = (db.challenge_terms(), created) {
        kept.keep(&challenge.id, (**challenge).clone());
    }
}

/// Decides a creation in transaction `c`, which holds its user's row lock (`user`: the user
/// exists) and read its limits' counts and devices (`read`, `None`: the relying party's key
/// no longer holds); queues its writes for the `COMMIT` (`me`: this replica, see
/// [`Db::replica`]).
fn decide(
    c: &Conn<'_>,
    new: &NewChallenge,
    context: String,
    check: &dyn Fn(&PushState) -> Result<(), Refusal>,
    user: bool,
    read: Option<limits::StateAndDevices>,
    me: Option<&str>,
) -> Result<Create, PgError> {
    let now = new.created_at;
    let Some((state, mut devices, mut subscriptions)) = read else {
        return Ok(Create::KeyRevoked);
    };
    if !user {
        return Ok(Create::UnknownUser);
    }
    if let Some(wanted) = &new.requested_devices {
        devices.retain(|d| wanted.contains(&d.id));
        subscriptions.retain(|s| wanted.contains(&s.device_id));
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
    // Nothing here answers anything the operation needs: one statement, sent with the
    // COMMIT, writes the challenge, its devices' index rows and its audit row, and wakes
    // the devices (no part reads another's rows).
    let detail = events::challenge_created_detail(new, device_ids.len());
    // The devices' wake-ups only when another replica listens (`replicas.rs`): this
    // one's long-polls are woken by its handler.
    c.later(
        &format!(
            "WITH ch AS (INSERT INTO challenges (id, user_name, rp_id, state, context, \
         context_digest, rp_nonce, code, devices, created_at, expires_at, updated_at, \
         source) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $9, $11)), \
         idx AS (INSERT INTO open_challenge_devices (device_id, challenge_id) \
         SELECT d, $1 FROM unnest($12::text[]) AS d), \
         aud AS (INSERT INTO audit (at, kind, user_name, challenge_id, detail) \
         VALUES ($9, 'challenge_created', $2, $1, $13)) \
         SELECT pg_notify('pushauth_device', d) FROM unnest($12::text[]) AS d \
         WHERE {}",
            replicas::others_listen(14)
        ),
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
            Box::new(device_ids.clone()),
            Box::new(detail),
            Box::new(me.map(str::to_owned)),
        ],
    )?;
    Ok(Create::Created {
        challenge: Box::new(new.pending(device_ids)),
        devices,
        subscriptions,
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

/// Challenges a store created, for [`challenge_terms`] (see [`Kept`]): their terms never
/// change, and their state is decided by the compare-and-set, never read from here.
pub(super) type ChallengeTerms = Kept<ChallengeRecord>;

/// Challenges a store keeps ([`ChallengeTerms`]): a few open ones per user at most live long
/// enough to be answered, and each holds its context (up to a few kilobytes).
pub(super) const CHALLENGE_TERMS_MAX: usize = 1024;

/// [`Store::challenge_terms`](crate::store::Store::challenge_terms): the challenge as this
/// store created it, else read.
pub(super) fn challenge_terms<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
) -> StoreResult<Option<(ChallengeRecord, bool)>> {
    if let Some(kept) = db.challenge_terms().and_then(|k| k.get(id)) {
        return Ok(Some((kept, false)));
    }
    get_challenge(db, id, now)
}

/// [`Store::acknowledge`](crate::store::Store::acknowledge).
pub(super) fn acknowledge<D: Db>(db: &D, id: &str, now: Millis) -> StoreResult<Cas> {
    transition(db, id, now, |c, _| {
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

/// What a device's change with its request's nonce comes to before its statement, if that
/// is already settled: a nonce no row can hold is refused, and an id no challenge can have
/// spends the nonce all the same and is [`Cas::Missing`].
fn settled_before_statement<D: Db>(
    db: &D,
    nonce: &RequestNonce,
    id: &str,
    now: Millis,
) -> StoreResult<Option<Result<Cas, NonceRefused>>> {
    if let Some(refused) = devices::nonce_storable(nonce) {
        return Ok(Some(Err(refused)));
    }
    if storable(id) {
        return Ok(None);
    }
    let spent =
        devices::spend_device_nonce(db, &nonce.device_id, &nonce.nonce, now, nonce.valid_until)?;
    Ok(Some(spent.by_signer(nonce).map(|_| Cas::Missing)))
}

/// [`Store::acknowledge_spending`](crate::store::Store::acknowledge_spending): one statement
/// spends the request's nonce ([`devices::nonce_ctes`]) and, when it was fresh, moves the
/// challenge from `pending` to `acknowledged` while it has not expired; the `COMMIT` goes in
/// the same round trip (the phone app acknowledges every challenge before it answers: three
/// transactions were a login's largest cost after the answer's). When the nonce was fresh but
/// nothing changed, [`acknowledge`] tells why in a transaction of its own (expiring a due
/// challenge). A refused nonce changes nothing. Notices only when another replica listens
/// (`replicas.rs`): this one's waiters hear of the change from its handler.
pub(super) fn acknowledge_spending<D: Db>(
    db: &D,
    nonce: &RequestNonce,
    id: &str,
    now: Millis,
) -> StoreResult<Result<Cas, NonceRefused>> {
    if let Some(ended) = settled_before_statement(db, nonce, id, now)? {
        return Ok(ended);
    }
    let me = db.replica();
    let acknowledged = db.write(|c| {
        let mut params: Vec<P<'_>> = vec![&id, &now];
        let spend = devices::nonce_ctes(params.len() + 1, true);
        params.extend([
            &nonce.device_id as P<'_>,
            &nonce.nonce,
            &nonce.valid_until,
            &now,
            &nonce.alg,
            &nonce.public_key,
        ]);
        let heard = replicas::others_listen(params.len() + 1);
        params.push(&me);
        let sql = format!(
            "WITH {spend}, \
             up AS (UPDATE challenges SET state = 'acknowledged', updated_at = $2 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $2 \
             AND EXISTS (SELECT 1 FROM fresh) RETURNING {CHALLENGE_COLUMNS}), \
             told AS (SELECT pg_notify('pushauth_challenge', id) FROM up WHERE {heard}) \
             SELECT up.*, {}, (SELECT count(*) FROM told) \
             FROM (SELECT 1) AS one LEFT JOIN up ON true",
            devices::NONCE_VERDICT
        );
        let (rows, _) = c.one_then_commit(&sql, &params)?;
        // Always one row, the challenge's columns NULL when nothing changed.
        let Some(row) = rows.first() else {
            return Err(PgError::Data(
                "no row from an acknowledgement's statement".into(),
            ));
        };
        if let Some(refused) = devices::nonce_verdict(row, CHALLENGE_COLUMN_COUNT)? {
            if has_challenge(row) {
                // The statement requires a fresh nonce: never keep a change without one.
                return Err(PgError::Data(format!(
                    "challenge {id} was acknowledged with a refused nonce"
                )));
            }
            return Ok(Err(refused));
        }
        Ok(Ok(match has_challenge(row) {
            true => Some(challenge_from_row(row)?),
            false => None,
        }))
    })?;
    match devices::forget_refused(db, &nonce.device_id, acknowledged) {
        Ok(Some(after)) => Ok(Ok(Cas::Changed(Box::new(after)))),
        // The nonce was spent: why nothing changed, in a transaction of its own.
        Ok(None) => Ok(Ok(acknowledge(db, id, now)?)),
        Err(refused) => Ok(Err(refused)),
    }
}

/// [`Store::answer`](crate::store::Store::answer): one round trip locks the challenge's row
/// and its user's, then tries the compare-and-set in a statement of its own (its snapshot is
/// younger than both locks, so its count of wrong codes is the last lock holder's: parallel
/// answers, on any replica, cannot pass the wrong-code lock). An answer whose change needs
/// nothing decided afterwards (no wrong code to count, no source to lock) writes what follows
/// in that statement and carries the `COMMIT` in the same round trip; the others take a second
/// round trip for what follows and the `COMMIT`.
pub(super) fn answer<D: Db>(
    db: &D,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
) -> StoreResult<Cas> {
    if !storable(id) {
        return Ok(Cas::Missing);
    }
    let me = db.replica();
    let answered = db.write(|c| answer_in(c, me, None, id, answer, now))?;
    match answered {
        Ok(answered) => refused_after_commit(db, id, answer, now, answered),
        Err(_) => Ok(Cas::Missing),
    }
}

/// [`Store::answer_spending`](crate::store::Store::answer_spending): [`answer`] whose
/// compare-and-set statement spends the request's nonce first ([`devices::nonce_ctes`]) and
/// applies only when it was fresh: one round trip and one commit fewer than spending it on its
/// own. A refused nonce changes nothing.
pub(super) fn answer_spending<D: Db>(
    db: &D,
    nonce: &RequestNonce,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
) -> StoreResult<Result<Cas, NonceRefused>> {
    if let Some(ended) = settled_before_statement(db, nonce, id, now)? {
        return Ok(ended);
    }
    let me = db.replica();
    let answered = db.write(|c| answer_in(c, me, Some(nonce), id, answer, now))?;
    match devices::forget_refused(db, &nonce.device_id, answered) {
        Ok(answered) => Ok(Ok(refused_after_commit(db, id, answer, now, answered)?)),
        Err(refused) => Ok(Err(refused)),
    }
}

/// What an answer's transaction decided.
enum Answered {
    /// Its outcome.
    Decided(Cas),
    /// The compare-and-set refused the answer after its transaction committed in the same
    /// round trip: why (the locked challenge, `current`) is read in a transaction of its own
    /// ([`refused_after_commit`]).
    Refused(Box<ChallengeRecord>),
}

/// The outcome of an answer whose transaction ended: [`Answered::Refused`] is told apart
/// (expired now, the wrong-code lock, a revoked device, or the challenge's state) in a
/// transaction of its own, as [`decided`] does inside the answer's.
fn refused_after_commit<D: Db>(
    db: &D,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
    answered: Answered,
) -> StoreResult<Cas> {
    match answered {
        Answered::Decided(cas) => Ok(cas),
        // Its nonce is spent whatever this says: a failure here is a 503 to a request that
        // was refused anyway.
        Answered::Refused(current) => db.write(|c| refusal(c, id, answer, now, current)),
    }
}

/// [`answer`] in transaction `c`; with `nonce`, spending it in the compare-and-set statement.
fn answer_in(
    c: &Conn<'_>,
    me: Option<&str>,
    nonce: Option<&RequestNonce>,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
) -> Result<Result<Answered, NonceRefused>, PgError> {
    let lock_at = answer.code_tally.lock_at().map(i64::from);
    let reason = answer.reason.map(|r| r.as_str());
    // Nothing to decide after an applied change: what follows it goes in the compare-and-set
    // statement, and the COMMIT with it.
    let at_once =
        answer.lock_user_until.is_none() && !matches!(answer.code_tally, CodeTally::Failed { .. });
    let (state, decision) = (answer.state.as_str(), answer.decision.as_str());
    let detail = events::challenge_answered_detail(answer);
    let reset = matches!(answer.code_tally, CodeTally::Reset { .. });
    let mut params: Vec<P<'_>> = vec![
        &id,
        &state,
        &now,
        &answer.device_id,
        &decision,
        &reason,
        &answer.typed_code,
        &answer.responded_at,
        &answer.signature,
        &lock_at,
    ];
    let mut ctes = Vec::new();
    if let Some(n) = nonce {
        ctes.push(devices::nonce_ctes(params.len() + 1, true));
        params.extend([
            &n.device_id as P<'_>,
            &n.nonce,
            &n.valid_until,
            &now,
            &n.alg,
            &n.public_key,
        ]);
    }
    let spent = if nonce.is_some() {
        " AND EXISTS (SELECT 1 FROM fresh)"
    } else {
        ""
    };
    ctes.push(format!(
        "up AS (UPDATE challenges SET state = $2, updated_at = $3, device_id = $4, \
         decision = $5, reason = $6, typed_code = $7, responded_at = $8, signature = $9 \
         WHERE id = $1 AND state IN {OPEN} AND expires_at > $3 \
         AND EXISTS (SELECT 1 FROM devices WHERE id = $4 AND revoked_at IS NULL) \
         AND ($10::bigint IS NULL OR coalesce((SELECT f.count FROM code_failures f \
         WHERE f.user_name = (SELECT user_name FROM challenges WHERE id = $1)), 0) \
         < $10){spent} \
         RETURNING {CHALLENGE_COLUMNS})"
    ));
    let mut columns = vec!["up.*".to_owned()];
    if nonce.is_some() {
        columns.push(devices::NONCE_VERDICT.to_owned());
    }
    // What follows an applied change, on the row the change returned: the challenge leaves
    // its devices' index, its audit row, a right code's reset of the wrong-code count, and the
    // wake-ups of the challenge and its devices (a wrong code's count and a source lock
    // follow in `decided`).
    // The wake-ups only when another replica listens (`replicas.rs`): this one's waiters
    // hear of the change from its handler.
    let (detail_at, reset_at, me_at) = (params.len() + 1, params.len() + 2, params.len() + 3);
    params.extend([&detail as P<'_>, &reset, &me]);
    let heard = replicas::others_listen(me_at);
    ctes.push(format!(
        "gone AS (DELETE FROM open_challenge_devices \
         WHERE challenge_id IN (SELECT id FROM up)), \
         aud AS (INSERT INTO audit (at, kind, user_name, device_id, challenge_id, detail) \
         SELECT $3, 'challenge_answered', user_name, $4, id, ${detail_at}::text FROM up), \
         reset AS (DELETE FROM code_failures \
         WHERE ${reset_at}::boolean AND user_name IN (SELECT user_name FROM up)), \
         told AS (SELECT pg_notify('pushauth_challenge', id) FROM up WHERE {heard} \
         UNION ALL SELECT pg_notify('pushauth_device', d) \
         FROM up, jsonb_array_elements_text(up.devices::jsonb) AS d WHERE {heard})"
    ));
    columns.push("(SELECT count(*) FROM told)".to_owned());
    let cas = format!(
        "WITH {} SELECT {} FROM (SELECT 1) AS one LEFT JOIN up ON true",
        ctes.join(", "),
        columns.join(", ")
    );
    // With a nonce, a replay (its nonce already committed) locks nothing: the locks are taken
    // only while the nonce is unseen, and the second statement's insert decides (attack review
    // of session 13: replays of a captured answer took the user's row lock and a transaction
    // id each, for the request's whole timestamp window).
    let (unseen, lock_params): (&str, Vec<P<'_>>) = match nonce {
        Some(n) => (
            " AND NOT EXISTS (SELECT 1 FROM device_nonces n \
             WHERE n.device_id = $2::text AND n.nonce = $3::text)",
            vec![&id, &n.device_id, &n.nonce],
        ),
        None => ("", vec![&id]),
    };
    let lock = format!(
        "SELECT {C_CHALLENGE_COLUMNS}, \
         (SELECT 1 FROM users u WHERE u.name = c.user_name FOR NO KEY UPDATE) \
         FROM challenges c WHERE c.id = $1{unseen} FOR UPDATE"
    );
    let (found, changed, committed) = if at_once {
        c.two_then_commit((&lock, &lock_params), (&cas, &params))?
    } else {
        let (found, changed) = c.two((&lock, &lock_params), (&cas, &params))?;
        (found, changed, false)
    };
    // The statement always gives one row, the challenge's columns NULL when nothing changed.
    let Some(row) = changed.first() else {
        return Err(PgError::Data("no row from an answer's statement".into()));
    };
    if nonce.is_some() {
        if let Some(refused) = devices::nonce_verdict(row, CHALLENGE_COLUMN_COUNT)? {
            if has_challenge(row) {
                // The statement requires a fresh nonce: never keep an answer without one.
                return Err(PgError::Data(format!(
                    "challenge {id} was answered with a refused nonce"
                )));
            }
            return Ok(Err(refused));
        }
    }
    let changed: Vec<_> = changed.into_iter().filter(has_challenge).collect();
    if !committed {
        return decided(c, id, answer, now, &found, &changed).map(|cas| Ok(Answered::Decided(cas)));
    }
    // Committed: what the two statements decided is all there is. An error from here on (a
    // row that does not decode; above, a change beside a refused nonce, which the statement's
    // own `EXISTS (SELECT 1 FROM fresh)` rules out) reaches the device as a failure while the
    // change stands; its NOTIFY (when another replica listens) and, on this replica, the
    // handler's read again after a server failure wake the relying party all the same
    // (attack reviews of sessions 14 and 15).
    if let Some(after) = changed.first() {
        // Applied by the compare-and-set's own conditions (state, expiry, device, wrong-code
        // lock, fresh nonce), whatever the lock statement saw.
        return Ok(Ok(Answered::Decided(Cas::Changed(Box::new(
            challenge_from_row(after)?,
        )))));
    }
    Ok(Ok(
        match found.first().map(challenge_from_row).transpose()? {
            Some(current) => Answered::Refused(Box::new(current)),
            None => Answered::Decided(Cas::Missing),
        },
    ))
}

/// Whether a row of a statement that always answers (a `LEFT JOIN` on one row, as a nonce's
/// verdict needs) carries a challenge: its first column, the id, is not NULL.
fn has_challenge(row: &tokio_postgres::Row) -> bool {
    matches!(row.try_get::<_, Option<String>>(0), Ok(Some(_)))
}

/// What the answer's two statements decided (`found`: the locked challenge, `changed`: the
/// row the compare-and-set changed, if any), and what follows an applied answer beyond the
/// compare-and-set statement's own (a wrong code counted, a source locked), in the answer's
/// transaction.
fn decided(
    c: &Conn<'_>,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
    found: &[tokio_postgres::Row],
    changed: &[tokio_postgres::Row],
) -> Result<Cas, PgError> {
    let Some(current) = found.first().map(challenge_from_row).transpose()? else {
        if !changed.is_empty() {
            // Committed between the two statements' snapshots: neither locked nor seen
            // by the first. Roll the second's change back rather than keep half an answer.
            return Err(PgError::Data(format!(
                "challenge {id} appeared while it was being answered"
            )));
        }
        return Ok(Cas::Missing);
    };
    let Some(after) = changed.first().map(challenge_from_row).transpose()? else {
        return refusal(c, id, answer, now, Box::new(current));
    };
    if let Some(until) = answer.lock_user_until {
        limits::lock_source(c, id, &current, &answer.device_id, until, now)?;
    }
    if let CodeTally::Failed { lock_at } = answer.code_tally {
        limits::count_wrong_code(c, &current, &answer.device_id, lock_at, now)?;
    }
    Ok(Cas::Changed(Box::new(after)))
}

/// Why the compare-and-set refused an answer to `current` (read with its row locked): a due
/// challenge expires now; otherwise its state, the user's wrong-code lock or a revoked device.
fn refusal(
    c: &Conn<'_>,
    id: &str,
    answer: &AnswerRecord,
    now: Millis,
    current: Box<ChallengeRecord>,
) -> Result<Cas, PgError> {
    if current.is_due(now) && expire_if_due(c, id, &current.user, now)? {
        let after = select_challenge(c, id, false)?;
        return Ok(after.map_or(Cas::Missing, |c| Cas::Expired(Box::new(c))));
    }
    if limits::code_locked(c, &current.user, answer.code_tally)? {
        return Ok(Cas::CodeLocked(current));
    }
    // An open challenge refused it because the device was revoked after its request was
    // authenticated: say so rather than blame the challenge's state.
    if !current.state.is_terminal() && !device_active(c, &answer.device_id)? {
        return Ok(Cas::DeviceRevoked(current));
    }
    Ok(Cas::WrongState(current))
}

/// Whether `device` exists and is not revoked.
fn device_active(conn: &Conn<'_>, device: &str) -> Result<bool, PgError> {
    conn.exists(
        "SELECT 1 FROM devices WHERE id = $1 AND revoked_at IS NULL",
        &[&device],
    )
}

/// [`Store::cancel`](crate::store::Store::cancel).
pub(super) fn cancel<D: Db>(
    db: &D,
    id: &str,
    rp_key: Option<&[u8; 32]>,
    now: Millis,
) -> StoreResult<Cas> {
    transition(db, id, now, |c, current| {
        // A statement after the row lock (and the write lock every transaction shares, which
        // a revocation takes alone): it sees a revocation committed before.
        if let Some(key) = rp_key {
            let holds = c.exists(
                &format!("SELECT 1 WHERE {}", key_holds("$1", "$2")),
                &[&current.rp_id, &&key[..]],
            )?;
            if !holds {
                return Ok(Applied::KeyRevoked);
            }
        }
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
            later_audit(c, &events::challenge_cancelled(current, id), now)?;
        }
        Ok(changed.map_or(Applied::Unchanged, Applied::Changed))
    })
}

/// The statement of [`device_challenges`] (`$1` the device): one primary-key lookup per open
/// row of the device, whatever the planner thinks of the table (a hash join read all of
/// `challenges` on every device poll while the table was small); `LIMIT` keeps the `LATERAL`
/// sub-select from being flattened into a plain join.
pub(super) fn device_challenges_sql() -> String {
    format!(
        "{} ORDER BY c.created_at, c.id",
        device_challenges_select("")
    )
}

/// [`device_challenges_sql`] without its order, its `WHERE` clause ending with `only_if`.
fn device_challenges_select(only_if: &str) -> String {
    // The relying party's name in the same statement: the device shows who asked, and a read
    // of its own cost every poll a round trip.
    format!(
        "SELECT {C_CHALLENGE_COLUMNS}, r.name FROM open_challenge_devices o \
         CROSS JOIN LATERAL (SELECT * FROM challenges WHERE id = o.challenge_id LIMIT 1) c \
         LEFT JOIN relying_parties r ON r.id = c.rp_id \
         WHERE o.device_id = $1 AND c.state IN {OPEN}{only_if}"
    )
}

/// The statement of [`device_challenges_spending`] (`$1` the device, then the nonce's
/// parameters of [`devices::nonce_ctes`]): spends the nonce and, when it was fresh, reads the
/// device's open challenges as [`device_challenges_sql`] does. Always a row (the challenge
/// columns NULL when there is none), each ending with [`devices::NONCE_VERDICT`].
pub(super) fn device_challenges_spending_sql() -> String {
    format!(
        "WITH {}, list AS ({}) \
         SELECT list.*, {} FROM (SELECT 1) AS one LEFT JOIN list ON true \
         ORDER BY list.created_at, list.id",
        devices::nonce_ctes(1, true),
        device_challenges_select(" AND EXISTS (SELECT 1 FROM fresh)"),
        devices::NONCE_VERDICT
    )
}

/// [`Store::device_challenges_spending`](crate::store::Store::device_challenges_spending):
/// the nonce and the read in one statement, which commits by itself ([`Db::write_alone`]:
/// nonces and `last_seen_at` are nothing an atomic unit decides on); then, as
/// [`device_challenges`], the due ones expire.
pub(super) fn device_challenges_spending<D: Db>(
    db: &D,
    nonce: &RequestNonce,
    now: Millis,
) -> StoreResult<Result<DeviceChallenges, NonceRefused>> {
    if let Some(refused) = devices::nonce_storable(nonce) {
        return Ok(Err(refused));
    }
    let rows = db.write_alone(
        &device_challenges_spending_sql(),
        &[
            &nonce.device_id,
            &nonce.nonce,
            &nonce.valid_until,
            &now,
            &nonce.alg,
            &nonce.public_key,
        ],
    )?;
    let first = rows
        .first()
        .ok_or_else(|| PgError::Data("no row from a device's poll".into()))?;
    if let Some(refused) = devices::nonce_verdict(first, CHALLENGE_COLUMN_COUNT + 1)? {
        return Ok(devices::forget_refused(db, &nonce.device_id, Err(refused)));
    }
    let mut open = Vec::with_capacity(rows.len());
    for row in rows.iter().filter(|row| has_challenge(row)) {
        open.push((challenge_from_row(row)?, get(row, CHALLENGE_COLUMN_COUNT)?));
    }
    expire_due(db, open, now).map(Ok)
}

/// [`Store::device_challenges`](crate::store::Store::device_challenges).
pub(super) fn device_challenges<D: Db>(
    db: &D,
    device_id: &str,
    now: Millis,
) -> StoreResult<DeviceChallenges> {
    if !storable(device_id) {
        return Ok((Vec::new(), Vec::new()));
    }
    let open = db.read(|c| {
        all(c.query(&device_challenges_sql(), &[&device_id])?, |row| {
            Ok((challenge_from_row(row)?, get(row, CHALLENGE_COLUMN_COUNT)?))
        })
    })?;
    expire_due(db, open, now)
}

/// A device's open challenges as read: the live ones, and the due ones, which expire now.
fn expire_due<D: Db>(
    db: &D,
    open: Vec<(ChallengeRecord, Option<String>)>,
    now: Millis,
) -> StoreResult<DeviceChallenges> {
    let (due, live): (Vec<_>, Vec<_>) = open.into_iter().partition(|(c, _)| c.is_due(now));
    if due.is_empty() {
        return Ok((live, Vec::new()));
    }
    let expired = db.write(|c| {
        let mut expired = Vec::new();
        for (ch, _) in &due {
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

//! Challenges: what a relying party may create (scope, context, lifetime, user name, limits,
//! the store's size bound), who may read, cancel, acknowledge or answer one, and the
//! compare-and-set transitions. Functions that change a challenge return an [`Outcome`], so
//! the caller can wake waiters even when the answer is a refusal (a challenge found past its
//! expiry is expired by the read).

use pushauth_proto::challenge::{decide, generate_code};
use pushauth_proto::context::validate_context;
use pushauth_proto::names::{check_id, check_user};
use pushauth_proto::signing::{response_message, ResponseFields};
use pushauth_proto::wire::{CreateChallenge, DeviceResponse, ACTION_ADD_DEVICE};
use pushauth_proto::{b64, context_digest, random, ChallengeState, Decision, Reason};

use super::devices::{device_key, nonce_refused, CheckedRequest};
use super::keys::{self, RpCaller};
use super::{expiry, no_randomness, Error, Result};
use crate::auth::ADMIN_RP;
use crate::bounds::{SignatureFailures, SizeBound};
use crate::clock::{self, Millis};
use crate::config::{Limits, ServerConfig};
use crate::limits::{self, Refusal};
use crate::store::{
    AnswerRecord, Cas, ChallengeRecord, CodeTally, Create, DeviceRecord, Expired, NewChallenge,
    PushSubscriptionRecord, Store,
};

/// What a call that may change a challenge did: the challenge if its state changed (answered,
/// cancelled, or found expired), and the answer.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The record after a change the caller must announce (waiters, metrics).
    pub changed: Option<Box<ChallengeRecord>>,
    /// What the caller gets.
    pub result: Result<T>,
}

impl<T> Outcome<T> {
    fn done(changed: Option<Box<ChallengeRecord>>, result: Result<T>) -> Self {
        Outcome { changed, result }
    }
}

/// A relying party's new challenge, checked off the store thread ([`check`]); the checks
/// that need the store follow in [`create`].
#[derive(Debug)]
pub struct NewRequest {
    /// The user the challenge is for (checked against the caller's scope first).
    pub user: String,
    /// The challenge, or why the request is refused.
    pub checked: Result<NewChallenge>,
}

/// Checks a `POST /v1/challenges` body: number matching for `add_device`, the context, the
/// nonce, the lifetime (`ttl_secs`, 1 to `max_ttl_secs`) and the user name
/// ([`pushauth_proto::names::check_user`]), and draws the id and the code. The relying party
/// and its scope are filled in by [`create`].
pub fn check(config: &ServerConfig, req: CreateChallenge, now: Millis) -> NewRequest {
    let user = req.user.clone();
    NewRequest {
        user,
        checked: checked(config, req, now),
    }
}

fn checked(config: &ServerConfig, req: CreateChallenge, now: Millis) -> Result<NewChallenge> {
    let adds_device = req.context.get("action").map(String::as_str) == Some(ACTION_ADD_DEVICE);
    if adds_device && !req.code {
        return Err(Error::Invalid(
            "an add_device challenge always uses number matching; drop \"code\": false".into(),
        ));
    }
    validate_context(&req.context).map_err(|e| Error::InvalidContext(e.to_string()))?;
    let rp_nonce = b64::decode_array::<32>(&req.rp_nonce, "rp_nonce")
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let ttl = req.ttl_secs.unwrap_or(config.default_ttl_secs);
    if ttl == 0 || ttl > config.max_ttl_secs {
        return Err(Error::Invalid(format!(
            "ttl_secs must be 1 to {}",
            config.max_ttl_secs
        )));
    }
    check_user(&req.user)?;
    let code = if req.code {
        Some(generate_code(config.code_digits).map_err(no_randomness)?)
    } else {
        None
    };
    Ok(NewChallenge {
        id: random::id().map_err(no_randomness)?,
        user: req.user,
        rp_id: String::new(),
        rp_key: None,
        context_digest: context_digest(&req.context),
        source: limits::source_of(&req.context),
        context: req.context,
        rp_nonce: rp_nonce.to_vec(),
        code,
        requested_devices: req.devices,
        created_at: now,
        expires_at: expiry(now, ttl),
        window_start: limits::window_start(&config.limits, now),
        known_since: limits::known_since(now),
    })
}

/// A challenge just created ([`create`]).
#[derive(Debug)]
pub struct NewlyCreated {
    /// The challenge, pending.
    pub challenge: ChallengeRecord,
    /// The active devices it was sent to.
    pub devices: Vec<DeviceRecord>,
    /// Their Web Push subscriptions, read with them (what the push needs).
    pub subscriptions: Vec<PushSubscriptionRecord>,
}

/// Creates a checked challenge for the relying party `rp`: its scope first (a caller out of
/// scope learns nothing else about its request), then the request's own checks, the store's
/// size bound, the user and devices, and the push-fatigue limits (in the store transaction
/// that inserts it). Returns the challenge, the devices it was sent to and their Web Push
/// subscriptions.
///
/// # Errors
/// [`Error::Forbidden`], the errors of [`check`], [`Error::StorageFull`],
/// [`Error::UnknownUser`], [`Error::NoDevice`], [`Error::Limited`], [`Error::Unauthorized`]
/// (the key was revoked or rotated since it was checked), [`Error::Store`].
pub fn create(
    s: &dyn Store,
    rp: &RpCaller,
    request: NewRequest,
    limits: &Limits,
    bound: &SizeBound,
) -> Result<NewlyCreated> {
    rp.require_user(&request.user, "push to")?;
    let mut new = request.checked?;
    new.rp_id.clone_from(&rp.rp_id);
    new.rp_key = rp.key_hash;
    let now = new.created_at;
    // The store's size bound: refuse rather than fill the disk.
    if bound.over(s, now)? {
        return Err(Error::StorageFull);
    }
    let limits = *limits;
    let check = std::sync::Arc::new(move |push: &_| limits::check(&limits, push, now));
    match s.create_challenge(&new, check)? {
        Create::Created {
            challenge,
            devices,
            subscriptions,
        } => Ok(NewlyCreated {
            challenge: *challenge,
            devices,
            subscriptions,
        }),
        Create::UnknownUser => Err(Error::UnknownUser),
        Create::NoDevice => Err(Error::NoDevice),
        Create::KeyRevoked => Err(key_revoked()),
        Create::Refused(refusal) => {
            tracing::info!(
                code = refusal.code().as_str(),
                "challenge refused by limits"
            );
            Err(refusal.into())
        }
    }
}

/// The refusal of a write whose relying party's key was revoked or rotated after it was
/// checked: the same as any refused key.
fn key_revoked() -> Error {
    Error::Unauthorized(keys::UNAUTHORIZED.into())
}

/// Reads a challenge `rp` created (expiring it if due); anyone else's is "not found".
///
/// # Errors
/// [`Error::NotFound`], [`Error::Store`].
pub fn get_owned(s: &dyn Store, rp: &RpCaller, id: &str, now: Millis) -> Outcome<ChallengeRecord> {
    match read(s, id, now) {
        Ok(Some((c, just_expired))) => {
            let changed = just_expired.then(|| Box::new(c.clone()));
            let result = if c.rp_id == rp.rp_id {
                Ok(c)
            } else {
                Err(Error::NotFound("challenge"))
            };
            Outcome::done(changed, result)
        }
        Ok(None) => Outcome::done(None, Err(Error::NotFound("challenge"))),
        Err(e) => Outcome::done(None, Err(e.into())),
    }
}

/// Cancels an open challenge `rp` created.
///
/// # Errors
/// [`Error::NotFound`], [`Error::WrongState`] (already decided, expired or cancelled),
/// [`Error::Unauthorized`] (the key was revoked or rotated since it was checked),
/// [`Error::Store`].
pub fn cancel(s: &dyn Store, rp: &RpCaller, id: &str, now: Millis) -> Outcome<ChallengeRecord> {
    let read = get_owned(s, rp, id, now);
    let current = match read.result {
        Ok(c) => c,
        Err(e) => return Outcome::done(read.changed, Err(e)),
    };
    if current.state.is_terminal() {
        return Outcome::done(read.changed, Err(Error::WrongState(current.state)));
    }
    // The key is checked again in the cancelling transaction: a cancel held up past a
    // revocation changes nothing.
    match s.cancel(id, rp.key_hash.as_ref(), now) {
        Ok(Cas::Changed(c)) => Outcome::done(Some(c.clone()), Ok(*c)),
        Ok(Cas::Expired(c)) => Outcome::done(Some(c.clone()), Err(Error::WrongState(c.state))),
        Ok(Cas::WrongState(c)) => Outcome::done(None, Err(Error::WrongState(c.state))),
        Ok(Cas::Missing) => Outcome::done(None, Err(Error::NotFound("challenge"))),
        Ok(Cas::CodeLocked(_)) => Outcome::done(None, Err(Refusal::CodeLocked.into())),
        Ok(Cas::DeviceRevoked(_)) => Outcome::done(None, Err(Error::DeviceRevoked)),
        Ok(Cas::KeyRevoked(_)) => Outcome::done(None, Err(key_revoked())),
        Err(e) => Outcome::done(None, Err(e.into())),
    }
}

/// Reads a challenge by id (expiring it if due); an id that is not one
/// ([`pushauth_proto::names::check_id`]) is not looked up.
fn read(
    s: &dyn Store,
    id: &str,
    now: Millis,
) -> crate::store::StoreResult<Option<(ChallengeRecord, bool)>> {
    if check_id("challenge", id).is_err() {
        return Ok(None);
    }
    s.get_challenge(id, now)
}

fn not_targeted() -> Error {
    Error::Forbidden("this challenge was not sent to this device".into())
}

/// A challenge's terms ([`Store::challenge_terms`]: its state may be stale) for a device's
/// acknowledgement or answer, which the compare-and-set then decides: it must exist and have
/// been sent to this device.
fn targeted_terms(
    s: &dyn Store,
    device: &DeviceRecord,
    id: &str,
    now: Millis,
) -> Outcome<ChallengeRecord> {
    let found = match check_id("challenge", id) {
        Ok(_) => s.challenge_terms(id, now),
        Err(_) => Ok(None),
    };
    sent_to(device, found)
}

/// [`targeted_terms`]'s check of what was read.
fn sent_to(
    device: &DeviceRecord,
    found: crate::store::StoreResult<Option<(ChallengeRecord, bool)>>,
) -> Outcome<ChallengeRecord> {
    match found {
        Ok(Some((c, just_expired))) => {
            let changed = just_expired.then(|| Box::new(c.clone()));
            let result = if c.devices.contains(&device.id) {
                Ok(c)
            } else {
                Err(not_targeted())
            };
            Outcome::done(changed, result)
        }
        Ok(None) => Outcome::done(None, Err(Error::NotFound("challenge"))),
        Err(e) => Outcome::done(None, Err(e.into())),
    }
}

/// `pending` → `acknowledged` by a device the challenge was sent to (an acknowledged one is
/// answered as it is).
///
/// The request's nonce is spent with the compare-and-set ([`Store::acknowledge_spending`]:
/// one statement on PostgreSQL), or on its own when the challenge's terms refuse the request
/// first: a replay is refused as one either way. The terms ([`Store::challenge_terms`]) may
/// come from the replica that created the challenge, their state stale: the compare-and-set
/// decides on the state.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Expired`], [`Error::WrongState`],
/// [`Error::ReplayedNonce`], [`Error::DeviceRevoked`], [`Error::UnknownDevice`],
/// [`Error::Store`].
pub fn acknowledge(
    s: &dyn Store,
    request: &CheckedRequest,
    id: &str,
    now: Millis,
) -> Outcome<ChallengeRecord> {
    let read = targeted_terms(s, &request.device, id, now);
    let early = match &read.result {
        Err(_) => true,
        // Read from the store (not kept terms): its state is the state now.
        Ok(current) => current.state != ChallengeState::Pending,
    };
    if early {
        if let Err(e) = request.spend(s) {
            return Outcome::done(read.changed, Err(e));
        }
        let result = read.result.and_then(|current| match current.state {
            ChallengeState::Acknowledged => Ok(current),
            ChallengeState::Expired => Err(Error::Expired),
            state => Err(Error::WrongState(state)),
        });
        return Outcome::done(read.changed, result);
    }
    match s.acknowledge_spending(&request.nonce, id, now) {
        Ok(Ok(Cas::WrongState(c))) if c.state == ChallengeState::Acknowledged => {
            Outcome::done(None, Ok(*c))
        }
        other => device_change(other),
    }
}

/// What a device's compare-and-set with its request's nonce ([`Store::answer_spending`],
/// [`Store::acknowledge_spending`]) tells the device: the changed record, or why not. A
/// challenge found expired is [`Error::Expired`] whether it expired now or before (the terms
/// read before the compare-and-set may be older than that).
fn device_change(
    result: crate::store::StoreResult<std::result::Result<Cas, crate::store::NonceRefused>>,
) -> Outcome<ChallengeRecord> {
    match result {
        Ok(Err(refused)) => Outcome::done(None, Err(nonce_refused(refused))),
        Ok(Ok(Cas::Changed(c))) => Outcome::done(Some(c.clone()), Ok(*c)),
        Ok(Ok(Cas::Expired(c))) => Outcome::done(Some(c), Err(Error::Expired)),
        Ok(Ok(Cas::WrongState(c))) if c.state == ChallengeState::Expired => {
            Outcome::done(None, Err(Error::Expired))
        }
        Ok(Ok(Cas::WrongState(c))) => Outcome::done(None, Err(Error::WrongState(c.state))),
        Ok(Ok(Cas::Missing)) => Outcome::done(None, Err(Error::NotFound("challenge"))),
        Ok(Ok(Cas::CodeLocked(_))) => Outcome::done(None, Err(Refusal::CodeLocked.into())),
        Ok(Ok(Cas::DeviceRevoked(_))) => Outcome::done(None, Err(Error::DeviceRevoked)),
        Ok(Ok(Cas::KeyRevoked(_))) => Outcome::done(None, Err(key_revoked())),
        Err(e) => Outcome::done(None, Err(e.into())),
    }
}

/// Where a failed answer signature is counted.
#[derive(Debug, Clone, Copy)]
pub struct FailedSignatures<'a> {
    /// The aggregate of failed signatures.
    pub failures: &'a SignatureFailures,
    /// The client's address.
    pub source: &'a str,
}

/// A device's signed answer, which decides the challenge: the challenge must be open and sent
/// to this device, the signature must cover this challenge's user, nonce and context, and the
/// answer applies as a compare-and-set (one attempt: a wrong code ends it `denied`). A
/// `report` locks new pushes from the same source until `[limits]` says; a wrong code counts
/// toward the user's `max_code_failures` and a right one resets that count (see `code_tally`).
///
/// The request's nonce is spent with the compare-and-set ([`Store::answer_spending`]), or on
/// its own when the answer is refused before it (`req` the body as parsed, an error when it
/// did not): a replay is refused as one either way.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Expired`], [`Error::WrongState`],
/// [`Error::Invalid`], [`Error::BadSignature`], [`Error::Internal`],
/// [`Error::ReplayedNonce`], [`Error::DeviceRevoked`], [`Error::UnknownDevice`],
/// [`Error::Store`].
pub fn answer(
    s: &dyn Store,
    request: &CheckedRequest,
    id: &str,
    req: Result<DeviceResponse>,
    limits: &Limits,
    failed: FailedSignatures<'_>,
    now: Millis,
) -> Outcome<ChallengeRecord> {
    let answer = match checked_answer(s, &request.device, id, req, limits, now) {
        Ok(answer) => answer,
        Err(refused) => {
            return match request.spend(s) {
                Ok(device) => {
                    // Counted only once the device is known active and the request fresh: a
                    // revoked device's key, or a replay, writes nothing (attack review of
                    // session 13; the key checked here may be a replica's cached copy).
                    if matches!(refused.result, Err(Error::BadSignature(_))) {
                        failed.failures.record(
                            s,
                            &device,
                            failed.source,
                            Some(id.to_owned()),
                            "response signature".to_owned(),
                        );
                    }
                    *refused
                }
                Err(e) => Outcome::done(refused.changed, Err(e)),
            };
        }
    };
    let outcome = device_change(s.answer_spending(&request.nonce, id, &answer, now));
    if let Some(c) = &outcome.changed {
        tracing::debug!(challenge = %c.id, device = %request.device.id, state = %c.state, "challenge answered");
    }
    outcome
}

/// [`answer`]'s checks before the compare-and-set: the answer to store, or the refusal (with a
/// change to announce, when reading the terms expired the challenge).
fn checked_answer(
    s: &dyn Store,
    device: &DeviceRecord,
    id: &str,
    req: Result<DeviceResponse>,
    limits: &Limits,
    now: Millis,
) -> std::result::Result<AnswerRecord, Box<Outcome<ChallengeRecord>>> {
    let req = req.map_err(|e| Box::new(Outcome::done(None, Err(e))))?;
    // The terms are what the signature covers; the compare-and-set decides on the state.
    let read = targeted_terms(s, device, id, now);
    let challenge = match read.result {
        Ok(c) => c,
        Err(e) => return Err(Box::new(Outcome::done(read.changed, Err(e)))),
    };
    let changed = read.changed;
    if challenge.state == ChallengeState::Expired {
        return Err(Box::new(Outcome::done(changed, Err(Error::Expired))));
    }
    if challenge.state.is_terminal() {
        return Err(Box::new(Outcome::done(
            changed,
            Err(Error::WrongState(challenge.state)),
        )));
    }
    if clock::parse_rfc3339(&req.responded_at).is_none() {
        return Err(Box::new(Outcome::done(
            None,
            Err(Error::Invalid("responded_at must be RFC 3339 text".into())),
        )));
    }
    let message = response_message(&ResponseFields {
        challenge_id: &challenge.id,
        user: &challenge.user,
        device_id: &device.id,
        rp_nonce: &challenge.rp_nonce,
        context_digest: &challenge.context_digest,
        decision: req.decision,
        code: &req.code,
        responded_at: &req.responded_at,
    });
    let key = match device_key(device) {
        Ok(key) => key,
        Err(e) => return Err(Box::new(Outcome::done(None, Err(e)))),
    };
    if key.verify_b64(&message, &req.signature).is_err() {
        // Counted by the caller, once the request's nonce is spent.
        return Err(Box::new(Outcome::done(
            None,
            Err(Error::BadSignature(
                "the response signature does not verify",
            )),
        )));
    }
    let (outcome, reason) = decide(req.decision, challenge.code.as_deref(), &req.code);
    Ok(AnswerRecord {
        device_id: device.id.clone(),
        state: outcome,
        decision: req.decision,
        reason,
        typed_code: req.code,
        responded_at: req.responded_at,
        signature: req.signature,
        lock_user_until: (req.decision == Decision::Report)
            .then(|| limits::lock_until(limits, now)),
        code_tally: code_tally(challenge.code.is_some(), reason, limits),
    })
}

/// What an answer does to the user's count of consecutive wrong codes: a mismatch adds one, an
/// approval with the right code resets it (both only below the lock: at it the store refuses
/// any approval of a number-matching challenge, right code or wrong, see [`CodeTally::lock_at`]); deny and report leave it (a report has its own
/// lock-out, and neither is a guess at the code), and so does an approval without number
/// matching (it proves nothing about the code). Expiry never reaches here.
fn code_tally(code_required: bool, reason: Option<Reason>, limits: &Limits) -> CodeTally {
    match reason {
        Some(Reason::CodeMismatch) => CodeTally::Failed {
            lock_at: limits.max_code_failures,
        },
        None if code_required => CodeTally::Reset {
            lock_at: limits.max_code_failures,
        },
        _ => CodeTally::Keep,
    }
}

/// What [`open_for_device`] found.
#[derive(Debug)]
pub struct OpenChallenges {
    /// The open challenges, oldest first, each with the name of the relying party that asked.
    pub open: Vec<(ChallengeRecord, Option<String>)>,
    /// The challenges this read expired (to announce).
    pub expired: Vec<Expired>,
}

/// A device's open challenges, each with the name of the relying party that asked (requests
/// made with the admin token show as `admin`), and the challenges this read expired.
///
/// # Errors
/// [`Error::Store`].
pub fn open_for_device(s: &dyn Store, device_id: &str, now: Millis) -> Result<OpenChallenges> {
    Ok(named(s.device_challenges(device_id, now)?))
}

/// [`open_for_device`] for a checked request's device, spending the request's nonce in the
/// same store operation ([`Store::device_challenges_spending`]).
///
/// # Errors
/// [`Error::ReplayedNonce`], [`Error::DeviceRevoked`], [`Error::UnknownDevice`],
/// [`Error::Store`].
pub fn open_for_request(
    s: &dyn Store,
    request: &CheckedRequest,
    now: Millis,
) -> Result<OpenChallenges> {
    match s.device_challenges_spending(&request.nonce, now)? {
        Ok(found) => Ok(named(found)),
        Err(refused) => Err(nonce_refused(refused)),
    }
}

/// A device's open challenges with the names shown for them (the admin's as `admin`).
fn named((open, expired): crate::store::DeviceChallenges) -> OpenChallenges {
    let named = open
        .into_iter()
        .map(|(c, name)| {
            let name = if c.rp_id == ADMIN_RP {
                Some(ADMIN_RP.to_owned())
            } else {
                name
            };
            (c, name)
        })
        .collect();
    OpenChallenges {
        open: named,
        expired,
    }
}

/// How far back a device's notices report new bindings: 30 days.
pub const NOTICE_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// The bindings of `caller`'s user in the last [`NOTICE_WINDOW_MS`], newest first, without the
/// caller itself, so the person sees every device added to them.
///
/// # Errors
/// [`Error::Store`].
pub fn new_bindings(
    s: &dyn Store,
    caller: &DeviceRecord,
    now: Millis,
) -> Result<Vec<DeviceRecord>> {
    let since = now.saturating_sub(NOTICE_WINDOW_MS);
    let mut devices = s.user_devices(&caller.user)?.unwrap_or_default();
    devices.retain(|d| d.id != caller.id && d.created_at >= since);
    devices.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::store::postgres::tests::{database, replica, Session};
    use crate::store::postgres::ATOMIC_LOCK;

    /// Session 17 review: a cancel checks the relying party's key in its own transaction, not
    /// in an atomic unit: it never waits for the writes in flight on every replica (here one
    /// holding the shared lock, as each write does from its BEGIN), nor makes every write that
    /// starts meanwhile wait for it. (As an atomic unit, any relying party's key could stall
    /// all writes with `DELETE /v1/challenges/<made-up id>`.)
    #[test]
    fn session17_a_cancel_does_not_wait_for_the_writes_in_flight() {
        let Some(url) = database("session17_a_cancel_waits_for_no_write") else {
            return;
        };
        let store = replica(&url);
        let holder = Session::open(&url);
        holder
            .run(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock_shared({ATOMIC_LOCK})"
            ))
            .unwrap();
        let cancelling = std::thread::spawn(move || {
            let rp = super::RpCaller::admin();
            let outcome = super::cancel(&*store, &rp, "AAAAAAAAAAAAAAAAAAAAAA", 1);
            outcome.result.map(drop).map_err(|e| e.to_string())
        });
        std::thread::sleep(Duration::from_millis(700));
        let waited = !cancelling.is_finished();
        holder.run("COMMIT").unwrap();
        let answer = cancelling.join().unwrap();
        assert!(
            !waited,
            "a cancel of no challenge waited for a write in flight (then answered {answer:?})"
        );
    }
}

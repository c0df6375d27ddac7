//! Relying parties: their API keys (`<rp_id>.<secret>`, only the secret's hash is stored), the
//! rights a key carries, and the administrator's operations on them (add, list, revoke,
//! rotate), shared by `/v1/admin/relying-parties` and `pushauthd rp`.

use pushauth_proto::names::{check_rp_id, check_rp_name};
use pushauth_proto::random;
use pushauth_proto::wire::CreateRelyingParty;

use super::{atomically, no_randomness, Error, Result};
use crate::auth::{hash_secret, matches_hash, secret_eq, ADMIN_RP};
use crate::clock::Millis;
use crate::rights::validate_patterns;
use crate::store::{RelyingPartyRecord, Store};

/// The message of every refused credential: the same whatever was wrong with it.
pub const UNAUTHORIZED: &str = "missing or wrong credentials in the Authorization header";

/// A bearer credential as presented, not yet checked against the store. Checking it
/// ([`authenticate`]) runs inside the store job that then serves the request, so a relying
/// party's request costs one thread hand-off.
#[derive(Debug, Clone)]
pub enum RpKey {
    /// The admin token (already compared: it is held in memory).
    Admin,
    /// A relying-party API key, split at its first dot.
    Key {
        /// The relying party's id (well formed, not yet looked up).
        rp_id: String,
        /// The secret part, to compare with the stored hash.
        secret: String,
    },
}

impl RpKey {
    /// Reads a bearer credential: the admin token, or `<rp_id>.<secret>` with a well-formed id.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for anything else.
    pub fn parse(bearer: &str, admin_token: &str) -> Result<RpKey> {
        if secret_eq(bearer, admin_token) {
            return Ok(RpKey::Admin);
        }
        let (rp_id, secret) = bearer
            .split_once('.')
            .ok_or_else(|| Error::Unauthorized(UNAUTHORIZED.into()))?;
        check_rp_id(rp_id).map_err(|_| Error::Unauthorized(UNAUTHORIZED.into()))?;
        Ok(RpKey::Key {
            rp_id: rp_id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// A caller with a valid relying-party API key (or the admin token), with what it may do.
#[derive(Debug, Clone)]
pub struct RpCaller {
    /// Its id ([`ADMIN_RP`] for the admin token).
    pub rp_id: String,
    /// User patterns it may act for ([`crate::rights`]).
    pub users: Vec<String>,
    /// May request enrollment links and revoke devices of users in scope.
    pub enroll: bool,
    /// May enroll a user without an active device.
    pub bootstrap: bool,
    /// The stored hash of the key it authenticated with; `None` for the admin token. A write
    /// made for it commits only while the relying party still has this key and is not revoked
    /// ([`atomically_for`], [`NewChallenge::rp_key`](crate::store::NewChallenge::rp_key)).
    pub key_hash: Option<[u8; 32]>,
}

impl RpCaller {
    /// The admin token used as a relying party: every right.
    pub fn admin() -> RpCaller {
        RpCaller {
            rp_id: ADMIN_RP.to_owned(),
            users: vec!["*".to_owned()],
            enroll: true,
            bootstrap: true,
            key_hash: None,
        }
    }

    /// True when this relying party may act for `user`.
    pub fn may_act_for(&self, user: &str) -> bool {
        crate::rights::user_in_scope(&self.users, user)
    }

    /// [`Error::Forbidden`] unless `user` is in scope; `verb` completes "this relying party may
    /// not …".
    pub fn require_user(&self, user: &str, verb: &str) -> Result<()> {
        if self.may_act_for(user) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this relying party may not {verb} user {user:?}"
            )))
        }
    }

    /// [`Error::Forbidden`] unless this relying party has the `enroll` right and `user` is in
    /// scope.
    pub fn require_enroll(&self, user: &str) -> Result<()> {
        if !self.enroll {
            return Err(Error::Forbidden(
                "this relying party may not enroll or revoke devices (it lacks the enroll right)"
                    .into(),
            ));
        }
        self.require_user(user, "enroll or revoke devices of")
    }
}

/// Checks a key against the store. SQLite reads it on every request: a relying party revoked
/// or rotated, even by the CLI on the data directory while the server runs, is refused at
/// once. A PostgreSQL replica keeps the records its callers use while its listener hears of
/// every change (`store::postgres::RelyingPartyCache`): a change made through any replica or
/// the CLI is refused everywhere as soon as its notification arrives (milliseconds), and 1 s
/// after its commit at the latest, should the listener's connection die without a word; the
/// CLI and the admin API return only then ([`Store::relying_party_change_spread`]).
///
/// # Errors
/// [`Error::Unauthorized`] for an unknown id, a wrong secret or a revoked relying party (the
/// same answer, in the same time), [`Error::Store`].
pub fn authenticate(s: &dyn Store, key: &RpKey) -> Result<RpCaller> {
    let (rp_id, secret) = match key {
        RpKey::Admin => return Ok(RpCaller::admin()),
        RpKey::Key { rp_id, secret } => (rp_id, secret),
    };
    let rp = s
        .get_relying_party(rp_id)?
        .ok_or_else(|| Error::Unauthorized(UNAUTHORIZED.into()))?;
    checked(rp, secret)
}

/// [`authenticate`] without a read, off the store's job threads: `Some` when the store holds
/// the relying party in memory ([`Store::kept_relying_party`]) and the key holds. `None`
/// otherwise, refusals included: [`authenticate`] in a store job then gives the one answer.
pub fn authenticate_kept(s: &dyn Store, key: &RpKey) -> Option<RpCaller> {
    let RpKey::Key { rp_id, secret } = key else {
        return None;
    };
    checked(s.kept_relying_party(rp_id)?, secret).ok()
}

/// The caller `rp` is, if `secret` is its key's and it is not revoked.
fn checked(rp: RelyingPartyRecord, secret: &str) -> Result<RpCaller> {
    // Compare first, so that a revoked key and a wrong one take the same time.
    if !matches_hash(secret, &rp.key_hash) || rp.revoked_at.is_some() {
        return Err(Error::Unauthorized(UNAUTHORIZED.into()));
    }
    Ok(RpCaller {
        rp_id: rp.id,
        users: rp.users,
        enroll: rp.enroll,
        bootstrap: rp.bootstrap,
        key_hash: Some(rp.key_hash),
    })
}

/// [`atomically`] for a write `rp` makes: the unit first reads the relying party again, in
/// its own transaction, and refuses unless it still has the key `rp` authenticated with and
/// is not revoked. A revocation or rotation is an atomic unit too
/// ([`revoke`], [`rotate`]), so each such write either commits before the revocation does or
/// sees it: once `pushauthd rp revoke` returns, no write made with the old key commits, even
/// one authenticated just before and held up since (on a lock, in the job queue).
///
/// # Errors
/// [`Error::Unauthorized`] (nothing written) when the key no longer holds, then as
/// [`atomically`].
pub fn atomically_for<T>(
    s: &dyn Store,
    rp: &RpCaller,
    f: impl FnOnce(&dyn Store) -> Result<T>,
) -> Result<T> {
    atomically(s, |s| {
        still_holds(s, rp)?;
        f(s)
    })
}

/// [`Error::Unauthorized`] unless the relying party `rp` still has the key it authenticated
/// with and is not revoked, as `s` reads it (inside an atomic unit: as the unit's transaction
/// sees it). The admin token always holds.
fn still_holds(s: &dyn Store, rp: &RpCaller) -> Result<()> {
    let Some(hash) = rp.key_hash else {
        return Ok(());
    };
    match s.get_relying_party(&rp.rp_id)? {
        // Both hashes are stored values (the caller's secret was compared in constant time
        // when it authenticated): nothing secret is compared here.
        Some(now) if now.key_hash == hash && now.revoked_at.is_none() => Ok(()),
        _ => Err(Error::Unauthorized(UNAUTHORIZED.into())),
    }
}

/// A fresh API key `<rp_id>.<secret>` and the hash of its secret.
///
/// # Errors
/// [`Error::Internal`] without randomness.
pub fn new_key(id: &str) -> Result<(String, [u8; 32])> {
    let secret = random::secret_token().map_err(no_randomness)?;
    Ok((format!("{id}.{secret}"), hash_secret(&secret)))
}

/// The rules for a new relying party: its name ([`check_rp_name`]), its user patterns
/// ([`validate_patterns`]), and `bootstrap` only with `enroll`.
///
/// # Errors
/// [`Error::Invalid`] naming the fault.
pub fn check_new(req: &CreateRelyingParty) -> Result<()> {
    check_rp_name(&req.name)?;
    validate_patterns(&req.users).map_err(Error::Invalid)?;
    if req.bootstrap && !req.enroll {
        return Err(Error::Invalid("bootstrap needs enroll".into()));
    }
    Ok(())
}

/// Makes a relying party with its rights and its API key `<rp_id>.<secret>` (not stored yet).
///
/// # Errors
/// [`Error::Invalid`] for a bad name or user pattern, or `bootstrap` without `enroll`.
pub fn new_relying_party(
    req: &CreateRelyingParty,
    now: Millis,
) -> Result<(RelyingPartyRecord, String)> {
    check_new(req)?;
    let id = random::id().map_err(no_randomness)?;
    let (api_key, key_hash) = new_key(&id)?;
    Ok((
        RelyingPartyRecord {
            id,
            name: req.name.clone(),
            key_hash,
            users: req.users.clone(),
            enroll: req.enroll,
            bootstrap: req.bootstrap,
            created_at: now,
            revoked_at: None,
        },
        api_key,
    ))
}

/// Adds a relying party; returns it and its API key, which is shown once.
///
/// # Errors
/// As [`new_relying_party`], and [`Error::Store`].
pub fn add(
    s: &dyn Store,
    req: &CreateRelyingParty,
    now: Millis,
) -> Result<(RelyingPartyRecord, String)> {
    let (rp, api_key) = new_relying_party(req, now)?;
    s.create_relying_party(&rp, now)?;
    tracing::info!(rp = %rp.id, "relying party created");
    Ok((rp, api_key))
}

/// Every relying party, revoked ones included, oldest first.
///
/// # Errors
/// [`Error::Store`].
pub fn list(s: &dyn Store) -> Result<Vec<RelyingPartyRecord>> {
    Ok(s.list_relying_parties()?)
}

/// Revokes a relying party: its key is refused from the next request on. Returns it as revoked.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id, [`Error::Store`].
pub fn revoke(s: &dyn Store, id: &str, now: Millis) -> Result<RelyingPartyRecord> {
    check_rp_id(id).map_err(|_| Error::NotFound("relying party"))?;
    // An atomic unit: it waits for every write under way, which then commits before it
    // (`atomically_for`).
    let rp = atomically(s, |s| {
        s.revoke_relying_party(id, now)?
            .ok_or(Error::NotFound("relying party"))
    })?;
    s.forget_relying_party(id);
    tracing::info!(rp = %rp.id, "relying party revoked");
    Ok(rp)
}

/// Gives a relying party a new key (returned, to be shown once); the old one is refused from
/// the next request on.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id, [`Error::Conflict`] for a revoked relying party,
/// [`Error::Store`].
pub fn rotate(s: &dyn Store, id: &str, now: Millis) -> Result<(RelyingPartyRecord, String)> {
    check_rp_id(id).map_err(|_| Error::NotFound("relying party"))?;
    let (api_key, key_hash) = new_key(id)?;
    // An atomic unit, as in `revoke`.
    let rp = atomically(s, |s| {
        s.rotate_relying_party(id, &key_hash, now)?
            .ok_or(Error::NotFound("relying party"))
    })?;
    s.forget_relying_party(id);
    if rp.revoked_at.is_some() {
        return Err(Error::Conflict(
            "this relying party is revoked; add a new one".into(),
        ));
    }
    tracing::info!(rp = %rp.id, "relying party key rotated");
    Ok((rp, api_key))
}

/// A relying party `host` for every user, without other rights, added to `s`: its record and
/// its API key (tests).
#[cfg(test)]
pub(crate) fn added(s: &dyn Store) -> (RelyingPartyRecord, String) {
    let req = CreateRelyingParty {
        name: "host".into(),
        users: vec!["*".into()],
        enroll: false,
        bootstrap: false,
    };
    add(s, &req, 0).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session 17: a unit made for a relying party runs only while the key its caller
    /// authenticated with still holds, as the unit's own transaction reads it (on both
    /// backends); the admin token always holds.
    #[test]
    fn session17_a_unit_made_with_a_key_rotated_or_revoked_since_runs_nothing() {
        let store = crate::store::tests::store();
        let s: &dyn Store = &*store;
        let (rp, api_key) = added(s);
        let key = RpKey::parse(&api_key, "admin-token-that-is-not-this").unwrap();
        let old = authenticate(s, &key).unwrap();
        let ran = |caller: &RpCaller| {
            let mut ran = false;
            let result = atomically_for(s, caller, |_| {
                ran = true;
                Ok(())
            });
            (ran, result.map_err(|e| e.to_string()))
        };
        assert_eq!(ran(&old), (true, Ok(())));

        let (_, new_key) = rotate(s, &rp.id, 1).unwrap();
        let refused = Err(UNAUTHORIZED.to_owned());
        assert_eq!(ran(&old), (false, refused.clone()));
        let new = authenticate(s, &RpKey::parse(&new_key, "x").unwrap()).unwrap();
        assert_eq!(ran(&new), (true, Ok(())));

        revoke(s, &rp.id, 2).unwrap();
        assert_eq!(ran(&new), (false, refused));
        assert_eq!(ran(&RpCaller::admin()), (true, Ok(())));
    }

    /// Session 17 review: the replica that revokes a relying party forgets its kept record
    /// once the change committed, although the revocation runs in an atomic unit, which has
    /// no hold on the replica's memory (`Store::forget_relying_party`): it does not wait for
    /// its listener to hear the NOTIFY. Here no listener runs, standing for a notification
    /// not yet delivered.
    #[test]
    fn session17_the_revoking_replica_forgets_the_relying_party_at_once() {
        use crate::store::postgres::tests::{database, replica};
        let Some(url) = database("session17_the_revoking_replica_forgets") else {
            return;
        };
        let store = replica(&url);
        store.listener_parts().relying_parties.listening();
        let (rp, _) = added(&*store);
        store.get_relying_party(&rp.id).unwrap();
        assert!(store.kept_relying_party(&rp.id).is_some());
        revoke(&*store, &rp.id, 5).unwrap();
        let kept = store.kept_relying_party(&rp.id);
        assert!(
            kept.as_ref().is_none_or(|k| k.revoked_at.is_some()),
            "the revoking replica still keeps {:?} as not revoked",
            kept.map(|k| k.id)
        );
    }
}

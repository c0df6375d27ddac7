//! Relying parties: create, read, list, revoke and rotate their API key hashes. Every change
//! notifies [`RELYING_PARTY_CHANNEL`] in its transaction and is forgotten by this store's
//! [`RelyingPartyCache`] once committed; reads come from that cache while it is kept true.

use super::audit::later_audit;
use super::db::{Conn, Db};
use super::error::PgError;
use super::rows::{all, data_error, rp_from_row, RP_COLUMNS};
use super::watched::{RelyingPartyCache, RELYING_PARTY_CHANNEL};
use crate::clock::Millis;
use crate::store::{events, AuditEntry, RelyingPartyRecord, StoreError, StoreResult};

fn select_rp(c: &Conn<'_>, id: &str) -> Result<Option<RelyingPartyRecord>, PgError> {
    c.opt(
        &format!("SELECT {RP_COLUMNS} FROM relying_parties WHERE id = $1"),
        &[&id],
    )?
    .map(|r| rp_from_row(&r))
    .transpose()
}

/// [`Store::create_relying_party`](crate::store::Store::create_relying_party).
pub(super) fn create_relying_party<D: Db>(
    db: &D,
    rp: &RelyingPartyRecord,
    now: Millis,
) -> StoreResult<()> {
    let users = serde_json::to_string(&rp.users).map_err(|e| StoreError::from(data_error(3, e)))?;
    db.write(|c| {
        c.exec(
            "INSERT INTO relying_parties (id, name, key_hash, created_at, users, enroll, bootstrap) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &rp.id,
                &rp.name,
                &&rp.key_hash[..],
                &now,
                &users,
                &rp.enroll,
                &rp.bootstrap,
            ],
        )?;
        later_audit(
            c,
            &events::rp_created(rp, &users),
            now,
        )?;
        notify_changed(c, &rp.id)
    })?;
    forget(db, &rp.id);
    Ok(())
}

/// Tells every replica's listener that relying party `id` changed (at commit).
fn notify_changed(c: &Conn<'_>, id: &str) -> Result<(), PgError> {
    c.later(
        &format!("SELECT pg_notify('{RELYING_PARTY_CHANNEL}', $1::text)"),
        vec![Box::new(id.to_owned())],
    )
}

/// Drops this store's entry for `id` once its change is committed, without waiting for the
/// listener to hear of it. (In a group or an atomic unit there is no cache handle here, and
/// the commit comes later: the listener's forgetting then does it.)
fn forget<D: Db>(db: &D, id: &str) {
    if let Some(cache) = db.relying_parties() {
        cache.changed(id);
    }
}

/// [`Store::get_relying_party`](crate::store::Store::get_relying_party).
pub(super) fn get_relying_party<D: Db>(
    db: &D,
    id: &str,
) -> StoreResult<Option<RelyingPartyRecord>> {
    if !super::rows::storable(id) {
        return Ok(None);
    }
    let cache: Option<&RelyingPartyCache> = db.relying_parties();
    if let Some(rp) = cache.and_then(|c| c.get(id)) {
        return Ok(Some(rp));
    }
    let ticket = cache.map(RelyingPartyCache::ticket);
    let rp = db.read(|c| select_rp(c, id))?;
    if let (Some(cache), Some(ticket), Some(rp)) = (cache, ticket, &rp) {
        cache.keep(ticket, rp);
    }
    Ok(rp)
}

/// The condition that relying party `id` still has the key whose stored hash is `key` and is
/// not revoked (both SQL expressions, such as parameters; a `NULL` key: nothing to check),
/// for a write to evaluate in a statement of its own transaction
/// ([`NewChallenge::rp_key`](crate::store::NewChallenge::rp_key)).
pub(super) fn key_holds(id: &str, key: &str) -> String {
    format!(
        "({key}::bytea IS NULL OR EXISTS (SELECT 1 FROM relying_parties WHERE id = {id} \
         AND key_hash = {key} AND revoked_at IS NULL))"
    )
}

/// [`Store::list_relying_parties`](crate::store::Store::list_relying_parties).
pub(super) fn list_relying_parties<D: Db>(db: &D) -> StoreResult<Vec<RelyingPartyRecord>> {
    db.read(|c| {
        all(
            c.query(
                &format!("SELECT {RP_COLUMNS} FROM relying_parties ORDER BY created_at, id"),
                &[],
            )?,
            rp_from_row,
        )
    })
}

/// Runs a compare-and-set `UPDATE` on an active relying party and audits `event` if it changed
/// it; returns the record after.
fn change<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
    event: fn(&RelyingPartyRecord) -> AuditEntry,
    update: impl FnOnce(&Conn<'_>) -> Result<u64, PgError>,
) -> StoreResult<Option<RelyingPartyRecord>> {
    if !super::rows::storable(id) {
        return Ok(None);
    }
    let rp = db.write(|c| {
        let changed = update(c)?;
        let rp = select_rp(c, id)?;
        if let (1, Some(rp)) = (changed, &rp) {
            later_audit(c, &event(rp), now)?;
            notify_changed(c, id)?;
        }
        Ok(rp)
    })?;
    forget(db, id);
    Ok(rp)
}

/// [`Store::revoke_relying_party`](crate::store::Store::revoke_relying_party).
pub(super) fn revoke_relying_party<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
) -> StoreResult<Option<RelyingPartyRecord>> {
    change(db, id, now, events::rp_revoked, |c| {
        c.exec(
            "UPDATE relying_parties SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now],
        )
    })
}

/// [`Store::rotate_relying_party`](crate::store::Store::rotate_relying_party).
pub(super) fn rotate_relying_party<D: Db>(
    db: &D,
    id: &str,
    key_hash: &[u8; 32],
    now: Millis,
) -> StoreResult<Option<RelyingPartyRecord>> {
    change(db, id, now, events::rp_rotated, |c| {
        c.exec(
            "UPDATE relying_parties SET key_hash = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &&key_hash[..]],
        )
    })
}

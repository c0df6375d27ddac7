//! Relying parties: create, read, list, revoke and rotate their API key hashes.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::write_audit;
use super::connection::Db;
use super::error::from_sqlite;
use super::rows::{conversion_error, rp_from_row, RP_COLUMNS};
use crate::clock::Millis;
use crate::store::{events, RelyingPartyRecord, StoreResult};

/// A relying party by id, revoked ones included.
pub(super) fn select_rp(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<RelyingPartyRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {RP_COLUMNS} FROM relying_parties WHERE id = ?1"
    ))?
    .query_row([id], rp_from_row)
    .optional()
}

/// [`Store::create_relying_party`](crate::store::Store::create_relying_party).
pub(super) fn create_relying_party<D: Db>(
    db: &D,
    rp: &RelyingPartyRecord,
    now: Millis,
) -> StoreResult<()> {
    let users = serde_json::to_string(&rp.users)
        .map_err(|e| from_sqlite(conversion_error(3, e.to_string())))?;
    db.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO relying_parties (id, name, key_hash, created_at, users, enroll, bootstrap) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            rp.id,
            rp.name,
            &rp.key_hash[..],
            now,
            users,
            rp.enroll,
            rp.bootstrap
        ])?;
        write_audit(
            tx,
            &events::rp_created(rp, &users),
            now,
        )
    })
}

/// [`Store::get_relying_party`](crate::store::Store::get_relying_party).
pub(super) fn get_relying_party<D: Db>(
    db: &D,
    id: &str,
) -> StoreResult<Option<RelyingPartyRecord>> {
    db.read(|conn| select_rp(conn, id))
}

/// [`Store::list_relying_parties`](crate::store::Store::list_relying_parties).
pub(super) fn list_relying_parties<D: Db>(db: &D) -> StoreResult<Vec<RelyingPartyRecord>> {
    db.read(|conn| {
        conn.prepare_cached(&format!(
            "SELECT {RP_COLUMNS} FROM relying_parties ORDER BY created_at, id"
        ))?
        .query_map([], rp_from_row)?
        .collect()
    })
}

/// [`Store::revoke_relying_party`](crate::store::Store::revoke_relying_party).
pub(super) fn revoke_relying_party<D: Db>(
    db: &D,
    id: &str,
    now: Millis,
) -> StoreResult<Option<RelyingPartyRecord>> {
    db.write(|tx| {
        let changed = tx
            .prepare_cached(
                "UPDATE relying_parties SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, now])?;
        let rp = select_rp(tx, id)?;
        if let (1, Some(rp)) = (changed, &rp) {
            write_audit(tx, &events::rp_revoked(rp), now)?;
        }
        Ok(rp)
    })
}

/// [`Store::rotate_relying_party`](crate::store::Store::rotate_relying_party).
pub(super) fn rotate_relying_party<D: Db>(
    db: &D,
    id: &str,
    key_hash: &[u8; 32],
    now: Millis,
) -> StoreResult<Option<RelyingPartyRecord>> {
    db.write(|tx| {
        let changed = tx
            .prepare_cached(
                "UPDATE relying_parties SET key_hash = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, &key_hash[..]])?;
        let rp = select_rp(tx, id)?;
        if let (1, Some(rp)) = (changed, &rp) {
            write_audit(tx, &events::rp_rotated(rp), now)?;
        }
        Ok(rp)
    })
}

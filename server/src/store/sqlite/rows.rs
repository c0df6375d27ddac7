//! Row mapping: the column lists the queries select and the functions that turn such a row into
//! a record. A list and its function change together (they agree on column positions).

use pushauth_proto::Context;
use rusqlite::types::Type;
use rusqlite::Row;

use crate::store::{ChallengeRecord, DeviceRecord, RelyingPartyRecord};

/// The `challenges` columns [`challenge_from_row`] reads, in its order.
pub(super) const CHALLENGE_COLUMNS: &str = "id, user, rp_id, state, context, context_digest, rp_nonce, code, \
     devices, created_at, expires_at, device_id, decision, reason, typed_code, responded_at, signature";
/// The `devices` columns [`device_from_row`] reads, in its order.
pub(super) const DEVICE_COLUMNS: &str =
    "id, user, name, alg, public_key, created_at, last_seen_at, revoked_at, source, via, approved_by";
/// The `relying_parties` columns [`rp_from_row`] reads, in its order.
pub(super) const RP_COLUMNS: &str =
    "id, name, key_hash, users, enroll, bootstrap, created_at, revoked_at";

/// A stored value that does not fit its record type (column `index`), or a value that cannot be
/// encoded for storage; it surfaces as a [`DbErrorKind::InvalidData`](crate::store::DbErrorKind).
pub(super) fn conversion_error(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

fn parse_col<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e: T::Err| conversion_error(index, e.to_string()))
}

fn parse_opt_col<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: T::Err| conversion_error(index, e.to_string()))
    })
    .transpose()
}

/// A JSON list of strings (a challenge's devices, a relying party's user patterns).
pub(super) fn string_list(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| conversion_error(index, e.to_string()))
}

/// A row of [`CHALLENGE_COLUMNS`].
pub(super) fn challenge_from_row(row: &Row<'_>) -> rusqlite::Result<ChallengeRecord> {
    let context: String = row.get(4)?;
    let context: Context =
        serde_json::from_str(&context).map_err(|e| conversion_error(4, e.to_string()))?;
    let digest: Vec<u8> = row.get(5)?;
    let context_digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| conversion_error(5, "context digest is not 32 bytes".into()))?;
    Ok(ChallengeRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        rp_id: row.get(2)?,
        state: parse_col(row, 3)?,
        context,
        context_digest,
        rp_nonce: row.get(6)?,
        code: row.get(7)?,
        devices: string_list(row, 8)?,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        device_id: row.get(11)?,
        decision: parse_opt_col(row, 12)?,
        reason: parse_opt_col(row, 13)?,
        typed_code: row.get(14)?,
        responded_at: row.get(15)?,
        signature: row.get(16)?,
    })
}

/// A row of [`DEVICE_COLUMNS`].
pub(super) fn device_from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        alg: row.get(3)?,
        public_key: row.get(4)?,
        created_at: row.get(5)?,
        last_seen_at: row.get(6)?,
        revoked_at: row.get(7)?,
        source: row.get(8)?,
        via: row.get(9)?,
        approved_by: row.get(10)?,
    })
}

/// A row of [`RP_COLUMNS`].
pub(super) fn rp_from_row(row: &Row<'_>) -> rusqlite::Result<RelyingPartyRecord> {
    let hash: Vec<u8> = row.get(2)?;
    let key_hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| conversion_error(2, "key hash is not 32 bytes".into()))?;
    Ok(RelyingPartyRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        key_hash,
        users: string_list(row, 3)?,
        enroll: row.get(4)?,
        bootstrap: row.get(5)?,
        created_at: row.get(6)?,
        revoked_at: row.get(7)?,
    })
}

//! Row mapping: the column lists the queries select and the functions that turn such a row into
//! a record (the same lists and records as SQLite's; `user_name` for SQLite's `user`).

use pushauth_proto::Context;
use tokio_postgres::Row;

use super::error::{get, PgError};
use crate::store::{ChallengeRecord, DeviceRecord, RelyingPartyRecord};

/// The `challenges` columns [`challenge_from_row`] reads, in its order.
pub(super) const CHALLENGE_COLUMNS: &str = "id, user_name, rp_id, state, context, context_digest, \
     rp_nonce, code, devices, created_at, expires_at, device_id, decision, reason, typed_code, \
     responded_at, signature";
/// How many columns [`CHALLENGE_COLUMNS`] names.
pub(super) const CHALLENGE_COLUMN_COUNT: usize = 17;
/// [`CHALLENGE_COLUMNS`] of the table aliased `c`.
pub(super) const C_CHALLENGE_COLUMNS: &str = "c.id, c.user_name, c.rp_id, c.state, c.context, \
     c.context_digest, c.rp_nonce, c.code, c.devices, c.created_at, c.expires_at, c.device_id, \
     c.decision, c.reason, c.typed_code, c.responded_at, c.signature";
/// The `devices` columns [`device_from_row`] reads, in its order.
pub(super) const DEVICE_COLUMNS: &str = "id, user_name, name, alg, public_key, created_at, \
     last_seen_at, revoked_at, source, via, approved_by";
/// How many columns [`DEVICE_COLUMNS`] names.
pub(super) const DEVICE_COLUMN_COUNT: usize = 11;
/// The `relying_parties` columns [`rp_from_row`] reads, in its order.
pub(super) const RP_COLUMNS: &str =
    "id, name, key_hash, users, enroll, bootstrap, created_at, revoked_at";

/// Whether PostgreSQL can hold `text` at all: its text type has no NUL character. A key with
/// one (an id from a URL path, a user from a query string) names no row, so the operations that
/// take keys from outside answer "not found" for it, as SQLite does, instead of failing
/// (`22021`) into a 500.
pub(super) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// A value that cannot be encoded for storage or read back into its record type.
pub(super) fn data_error(index: usize, message: impl std::fmt::Display) -> PgError {
    PgError::Data(format!("column {index}: {message}"))
}

fn parse_col<T: std::str::FromStr>(row: &Row, index: usize) -> Result<T, PgError>
where
    T::Err: std::fmt::Display,
{
    let text: String = get(row, index)?;
    text.parse().map_err(|e: T::Err| data_error(index, e))
}

fn parse_opt_col<T: std::str::FromStr>(row: &Row, index: usize) -> Result<Option<T>, PgError>
where
    T::Err: std::fmt::Display,
{
    let text: Option<String> = get(row, index)?;
    text.map(|t| t.parse().map_err(|e: T::Err| data_error(index, e)))
        .transpose()
}

/// A JSON list of strings (a challenge's devices, a relying party's user patterns).
pub(super) fn string_list(row: &Row, index: usize) -> Result<Vec<String>, PgError> {
    let text: String = get(row, index)?;
    serde_json::from_str(&text).map_err(|e| data_error(index, e))
}

/// A count (`count(*)`, a stored counter) as the `u32` the records hold.
pub(super) fn count(row: &Row, index: usize) -> Result<u32, PgError> {
    let n: i64 = get(row, index)?;
    u32::try_from(n).map_err(|e| data_error(index, e))
}

fn bytes32(row: &Row, index: usize, what: &str) -> Result<[u8; 32], PgError> {
    let bytes: Vec<u8> = get(row, index)?;
    bytes
        .try_into()
        .map_err(|_| data_error(index, format!("{what} is not 32 bytes")))
}

/// A row of [`CHALLENGE_COLUMNS`].
pub(super) fn challenge_from_row(row: &Row) -> Result<ChallengeRecord, PgError> {
    let context: String = get(row, 4)?;
    let context: Context = serde_json::from_str(&context).map_err(|e| data_error(4, e))?;
    Ok(ChallengeRecord {
        id: get(row, 0)?,
        user: get(row, 1)?,
        rp_id: get(row, 2)?,
        state: parse_col(row, 3)?,
        context,
        context_digest: bytes32(row, 5, "context digest")?,
        rp_nonce: get(row, 6)?,
        code: get(row, 7)?,
        devices: string_list(row, 8)?,
        created_at: get(row, 9)?,
        expires_at: get(row, 10)?,
        device_id: get(row, 11)?,
        decision: parse_opt_col(row, 12)?,
        reason: parse_opt_col(row, 13)?,
        typed_code: get(row, 14)?,
        responded_at: get(row, 15)?,
        signature: get(row, 16)?,
    })
}

/// A row of [`DEVICE_COLUMNS`].
pub(super) fn device_from_row(row: &Row) -> Result<DeviceRecord, PgError> {
    Ok(DeviceRecord {
        id: get(row, 0)?,
        user: get(row, 1)?,
        name: get(row, 2)?,
        alg: get(row, 3)?,
        public_key: get(row, 4)?,
        created_at: get(row, 5)?,
        last_seen_at: get(row, 6)?,
        revoked_at: get(row, 7)?,
        source: get(row, 8)?,
        via: get(row, 9)?,
        approved_by: get(row, 10)?,
    })
}

/// A row of [`RP_COLUMNS`].
pub(super) fn rp_from_row(row: &Row) -> Result<RelyingPartyRecord, PgError> {
    Ok(RelyingPartyRecord {
        id: get(row, 0)?,
        name: get(row, 1)?,
        key_hash: bytes32(row, 2, "key hash")?,
        users: string_list(row, 3)?,
        enroll: get(row, 4)?,
        bootstrap: get(row, 5)?,
        created_at: get(row, 6)?,
        revoked_at: get(row, 7)?,
    })
}

/// Maps every row with `f`.
pub(super) fn all<T>(
    rows: Vec<Row>,
    f: impl Fn(&Row) -> Result<T, PgError>,
) -> Result<Vec<T>, PgError> {
    rows.iter().map(f).collect()
}

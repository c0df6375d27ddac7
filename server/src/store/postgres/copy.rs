//! `pushauthd store copy --from sqlite:PATH --to postgresql://…` (issue 13): moves a site from
//! SQLite to PostgreSQL. Everything of schema version 11 is copied (users, devices, enrollment
//! links, relying parties, challenges, open ones included, with their devices, nonces, audit,
//! locks and counters, push subscriptions, notices, backup codes, offline secrets, grace ends,
//! the counts of `store::counts`: offline batches, reports and checks, push changes, and the
//! fingerprints of the site's keys),
//! ids kept, in one transaction; a target that holds anything is refused, so running it twice
//! overwrites nothing.
//!
//! The source is read in one SQLite read transaction (a consistent snapshot); stop the old
//! pushauthd first, or what it writes after the snapshot is not copied. Offline secrets stay
//! sealed under `<data_dir>/offline-key`: give every replica that file.

use std::path::Path;

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::db::PgStore;
use super::error::{get, PgError};
use super::schema::SCHEMA_VERSION;
use crate::store::{StoreError, StoreResult};

/// What a column holds, to give PostgreSQL the type it expects.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Blob,
    Bool,
}

use Kind::{Blob, Bool, Int, Text};

/// A column: SQLite's name, PostgreSQL's name, what it holds.
type Column = (&'static str, &'static str, Kind);

/// The tables in an order that satisfies the foreign keys, with their columns.
const TABLES: &[(&str, &[Column])] = &[
    (
        "users",
        &[("name", "name", Text), ("created_at", "created_at", Int)],
    ),
    (
        "devices",
        &[
            ("id", "id", Text),
            ("user", "user_name", Text),
            ("name", "name", Text),
            ("alg", "alg", Text),
            ("public_key", "public_key", Text),
            ("created_at", "created_at", Int),
            ("last_seen_at", "last_seen_at", Int),
            ("revoked_at", "revoked_at", Int),
            ("source", "source", Text),
            ("via", "via", Text),
            ("approved_by", "approved_by", Text),
        ],
    ),
    (
        "enrollments",
        &[
            ("token_hash", "token_hash", Blob),
            ("user", "user_name", Text),
            ("created_at", "created_at", Int),
            ("expires_at", "expires_at", Int),
            ("used_at", "used_at", Int),
            ("device_id", "device_id", Text),
            ("via", "via", Text),
            ("approval", "approval", Text),
            ("approved_by", "approved_by", Text),
        ],
    ),
    (
        "relying_parties",
        &[
            ("id", "id", Text),
            ("name", "name", Text),
            ("key_hash", "key_hash", Blob),
            ("created_at", "created_at", Int),
            ("users", "users", Text),
            ("enroll", "enroll", Bool),
            ("bootstrap", "bootstrap", Bool),
            ("revoked_at", "revoked_at", Int),
        ],
    ),
    (
        "challenges",
        &[
            ("id", "id", Text),
            ("user", "user_name", Text),
            ("rp_id", "rp_id", Text),
            ("state", "state", Text),
            ("context", "context", Text),
            ("context_digest", "context_digest", Blob),
            ("rp_nonce", "rp_nonce", Blob),
            ("code", "code", Text),
            ("devices", "devices", Text),
            ("created_at", "created_at", Int),
            ("expires_at", "expires_at", Int),
            ("updated_at", "updated_at", Int),
            ("device_id", "device_id", Text),
            ("decision", "decision", Text),
            ("reason", "reason", Text),
            ("typed_code", "typed_code", Text),
            ("responded_at", "responded_at", Text),
            ("signature", "signature", Text),
            ("source", "source", Text),
            ("grace_key", "grace_key", Blob),
            ("grace_of", "grace_of", Text),
        ],
    ),
    (
        "open_challenge_devices",
        &[
            ("device_id", "device_id", Text),
            ("challenge_id", "challenge_id", Text),
        ],
    ),
    (
        "device_nonces",
        &[
            ("device_id", "device_id", Text),
            ("nonce", "nonce", Text),
            ("valid_until", "valid_until", Int),
        ],
    ),
    (
        "audit",
        &[
            ("id", "id", Int),
            ("at", "at", Int),
            ("kind", "kind", Text),
            ("user", "user_name", Text),
            ("device_id", "device_id", Text),
            ("challenge_id", "challenge_id", Text),
            ("detail", "detail", Text),
            ("count", "count", Int),
        ],
    ),
    (
        "push_locks",
        &[
            ("user", "user_name", Text),
            ("rp_id", "rp_id", Text),
            ("source", "source", Text),
            ("until", "until", Int),
        ],
    ),
    (
        "push_resets",
        &[("user", "user_name", Text), ("at", "at", Int)],
    ),
    (
        "code_failures",
        &[("user", "user_name", Text), ("count", "count", Int)],
    ),
    (
        "push_subscriptions",
        &[
            ("device_id", "device_id", Text),
            ("endpoint", "endpoint", Text),
            ("p256dh", "p256dh", Text),
            ("auth", "auth", Text),
            ("created_at", "created_at", Int),
        ],
    ),
    (
        "notices",
        &[
            ("id", "id", Int),
            ("user", "user_name", Text),
            ("kind", "kind", Text),
            ("at", "at", Int),
            ("source", "source", Text),
            ("via", "via", Text),
            ("context", "context", Text),
            ("count", "count", Int),
        ],
    ),
    (
        "backup_codes",
        &[
            ("user", "user_name", Text),
            ("tag", "tag", Text),
            ("hash", "hash", Text),
            ("created_at", "created_at", Int),
        ],
    ),
    (
        "backup_code_failures",
        &[("user", "user_name", Text), ("count", "count", Int)],
    ),
    (
        "backup_code_approvals",
        &[
            ("challenge_id", "challenge_id", Text),
            ("user", "user_name", Text),
            ("used_at", "used_at", Int),
        ],
    ),
    (
        "offline_secrets",
        &[
            ("device_id", "device_id", Text),
            ("sealed", "sealed", Blob),
            ("algorithm", "algorithm", Text),
            ("digits", "digits", Int),
            ("last_used", "last_used", Int),
            ("created_at", "created_at", Int),
            ("served_to", "served_to", Int),
        ],
    ),
    (
        "grace_ends",
        &[("user", "user_name", Text), ("at", "at", Int)],
    ),
    (
        "offline_batches",
        &[
            ("challenge_id", "challenge_id", Text),
            ("keep_until", "keep_until", Int),
        ],
    ),
    (
        "offline_reports",
        &[
            ("device_id", "device_id", Text),
            ("rp_id", "rp_id", Text),
            ("counter", "counter", Int),
            ("at", "at", Int),
        ],
    ),
    (
        "offline_checks",
        &[
            ("device_id", "device_id", Text),
            ("rp_id", "rp_id", Text),
            ("count", "count", Int),
        ],
    ),
    (
        "push_changes",
        &[
            ("device_id", "device_id", Text),
            ("until", "until", Int),
            ("count", "count", Int),
        ],
    ),
    (
        "site_keys",
        &[
            ("name", "name", Text),
            ("fingerprint", "fingerprint", Text),
            ("created_at", "created_at", Int),
        ],
    ),
];

/// Rows copied per table, in copy order.
pub type Copied = Vec<(&'static str, u64)>;

fn refused(message: String) -> StoreError {
    StoreError::Corrupt(message)
}

/// A SQLite value as the PostgreSQL parameter of a column of `kind`.
fn param(
    value: Value,
    kind: Kind,
    column: &str,
) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    Ok(match (kind, value) {
        (Text, Value::Null) => Box::new(None::<String>),
        (Int, Value::Null) => Box::new(None::<i64>),
        (Blob, Value::Null) => Box::new(None::<Vec<u8>>),
        (Bool, Value::Null) => Box::new(None::<bool>),
        (Text, Value::Text(t)) => Box::new(t),
        (Int, Value::Integer(i)) => Box::new(i),
        (Blob, Value::Blob(b)) => Box::new(b),
        (Bool, Value::Integer(i)) => Box::new(i != 0),
        (_, other) => {
            return Err(refused(format!(
                "column {column} holds {:?}, not what schema {SCHEMA_VERSION} stores there",
                other.data_type()
            )))
        }
    })
}

/// Reads every row of every table of the SQLite database in `data_dir`, in one snapshot.
fn read_source(data_dir: &Path) -> StoreResult<Vec<Vec<Vec<Value>>>> {
    let path = data_dir.join(crate::store::sqlite::DB_FILE);
    if !path.is_file() {
        return Err(refused(format!("{}: no such database", path.display())));
    }
    let version = crate::store::sqlite::schema_version(&path)?;
    if version != SCHEMA_VERSION {
        return Err(refused(format!(
            "{} is at schema version {version}, this pushauthd copies version {SCHEMA_VERSION}: \
             run pushauthd migrate --store-url sqlite:{} first",
            path.display(),
            data_dir.display()
        )));
    }
    let sqlite = |e: rusqlite::Error| refused(format!("{}: {e}", path.display()));
    let mut conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite)?;
    let tx = conn.transaction().map_err(sqlite)?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for (table, columns) in TABLES {
        let names: Vec<String> = columns.iter().map(|(c, _, _)| format!("\"{c}\"")).collect();
        let mut stmt = tx
            .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
            .map_err(sqlite)?;
        let rows = stmt
            .query_map([], |row| {
                (0..columns.len())
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sqlite)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite)?;
        tables.push(rows);
    }
    Ok(tables)
}

/// Copies the SQLite store in `data_dir` into `target` (migrated, empty); returns the rows
/// copied per table.
///
/// # Errors
/// [`StoreError::Corrupt`] naming what to do when the source is missing or at another schema
/// version, or the target is not empty (nothing is written then); a database error rolls the
/// whole copy back.
pub fn copy_from_sqlite(data_dir: &Path, target: &PgStore) -> StoreResult<Copied> {
    let source = read_source(data_dir)?;
    // Converted before the target is touched: a bad value changes nothing.
    let mut converted = Vec::with_capacity(source.len());
    for ((table, columns), rows) in TABLES.iter().zip(source) {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let params = row
                .into_iter()
                .zip(columns.iter())
                .map(|(value, (name, _, kind))| param(value, *kind, &format!("{table}.{name}")))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(params);
        }
        converted.push(out);
    }
    target.in_transaction(true, |c| {
        let holds: bool = get(
            &c.one(
                "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM relying_parties) \
                 OR EXISTS (SELECT 1 FROM audit)",
                &[],
            )?,
            0,
        )?;
        if holds {
            return Err(PgError::Data(
                "the target database is not empty: store copy overwrites nothing (copy into a \
                 new database)"
                    .into(),
            ));
        }
        let mut copied = Vec::with_capacity(TABLES.len());
        for ((table, columns), rows) in TABLES.iter().zip(&converted) {
            let names: Vec<&str> = columns.iter().map(|(_, pg, _)| *pg).collect();
            let slots: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
                names.join(", "),
                slots.join(", ")
            );
            for row in rows {
                let params: Vec<&(dyn ToSql + Sync)> = row
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                c.exec(&sql, &params)?;
            }
            copied.push((*table, rows.len() as u64));
        }
        // New audit events and notices continue after the copied ids.
        for table in ["audit", "notices"] {
            c.query(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     coalesce(max(id), 0) + 1, false) FROM {table}"
                ),
                &[],
            )?;
        }
        Ok(copied)
    })
}

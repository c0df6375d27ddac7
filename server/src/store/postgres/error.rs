//! The PostgreSQL edge of [`StoreError`]: driver, pool and row-mapping failures become
//! backend-neutral [`DbError`](crate::store::DbError)s here. Whatever means "no primary to
//! write to right now" (refused or reset connections, a pool that cannot connect, a standby's
//! `25006 read_only_sql_transaction`, a server shutting down) is
//! [`DbErrorKind::Unavailable`], which the API answers with 503 `store_unavailable`.

use std::error::Error as _;

use crate::store::{DbErrorKind, StoreError};

/// A failure inside a PostgreSQL operation, converted to [`StoreError`] at the edge.
#[derive(Debug)]
pub(super) enum PgError {
    /// The driver's error (the server's, or the connection's).
    Driver(tokio_postgres::Error),
    /// No connection could be had from the pool.
    Pool(String),
    /// A stored value that does not fit its record type.
    Data(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Driver(e)
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => PgError::Driver(e),
            other => PgError::Pool(other.to_string()),
        }
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Driver(e) => StoreError::db(kind_of(&e), message(&e)),
            PgError::Pool(m) => StoreError::db(DbErrorKind::Unavailable, m),
            PgError::Data(m) => StoreError::db(DbErrorKind::InvalidData, m),
        }
    }
}

/// What the driver says when the server asks for a password and none was configured.
const NO_PASSWORD: &str = "password missing";

/// What to check when the database refuses pushauthd's credentials
/// ([`DbErrorKind::Denied`]): said by a replica that keeps retrying and by admin commands.
pub const CREDENTIALS_ADVICE: &str =
    "check [store] password_file, the role's password and pg_hba.conf";

/// Added to a refused TLS handshake: what `sslrootcert` must be (README "Storage").
const TLS_ADVICE: &str = "sslrootcert in [store] url must be the CA that signed the database \
    server's certificate, and that certificate must name the host the URL gives";

/// Added to pg_hba.conf's refusal of a connection without TLS (`28000`, "no encryption"):
/// a `hostssl` line matches only connections that use TLS.
const NO_TLS_ADVICE: &str = "a hostssl line matches only TLS connections: add \
    sslrootcert=CA-FILE to [store] url, or give pg_hba.conf a line for this connection";

/// The server's message with its code, or the driver's with its cause (the driver's own
/// text for a configuration error is only "invalid configuration").
pub(super) fn message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return server_message(db.code().code(), db.message());
    }
    let text = e.to_string();
    let said = match e.source().map(ToString::to_string) {
        Some(cause) if cause.contains(NO_PASSWORD) => {
            return "the database asked for a password and none is set: write it in the file \
                [store] password_file names, and give that config file with --config (or \
                PUSHAUTHD_CONFIG)"
                .to_owned()
        }
        Some(cause) if !text.contains(&cause) => format!("{text}: {cause}"),
        _ => text,
    };
    // The driver's words for a handshake rustls refused (an unknown issuer, a name mismatch).
    if said.contains("TLS handshake") && said.contains("certificate") {
        return format!("{said}: {TLS_ADVICE}");
    }
    said
}

/// The server's `message` with its SQLSTATE `code`, and what to do where the message alone
/// does not say.
fn server_message(code: &str, message: &str) -> String {
    if code == "28000" && message.contains("no encryption") {
        return format!("{message} ({code}): {NO_TLS_ADVICE}");
    }
    format!("{message} ({code})")
}

/// Whether the server refused the credentials (`28P01`, `28000`): [`DbErrorKind::Denied`].
pub(super) fn is_denied(e: &tokio_postgres::Error) -> bool {
    kind_of(e) == DbErrorKind::Denied
}

/// Whether `e` means the database cannot take the operation now (see the module notes).
pub(super) fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    kind_of(e) == DbErrorKind::Unavailable
}

fn kind_of(e: &tokio_postgres::Error) -> DbErrorKind {
    let Some(db) = e.as_db_error() else {
        // No server answer: the connection is closed, failed or timed out.
        if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) {
            return DbErrorKind::Unavailable;
        }
        if e.source()
            .is_some_and(|s| s.to_string().contains(NO_PASSWORD))
        {
            return DbErrorKind::Denied;
        }
        let text = e.to_string();
        if text.starts_with("error connecting") || text.contains("timeout") {
            return DbErrorKind::Unavailable;
        }
        return DbErrorKind::Other;
    };
    let code = db.code().code();
    match code {
        // serialization_failure, deadlock_detected, lock_not_available: try again later.
        "40001" | "40P01" | "55P03" => DbErrorKind::Busy,
        // read_only_sql_transaction: a standby (or a primary just demoted).
        "25006" => DbErrorKind::Unavailable,
        // invalid_password, invalid_authorization_specification (no pg_hba.conf line).
        "28P01" | "28000" => DbErrorKind::Denied,
        _ => match &code[..2] {
            "23" => DbErrorKind::Constraint,
            "22" => DbErrorKind::InvalidData,
            // connection exceptions, insufficient resources, operator intervention
            // (shutdown, cannot connect now), system errors.
            "08" | "53" | "57" | "58" => DbErrorKind::Unavailable,
            _ => DbErrorKind::Other,
        },
    }
}

/// Reads column `index` of `row` as `T`; a value that does not fit is [`PgError::Data`].
pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<T, PgError> {
    row.try_get(index)
        .map_err(|e| PgError::Data(format!("column {index}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session 24 newcomer walk: pg_hba.conf's refusal of a connection without TLS said
    /// nothing of the `hostssl` line that caused it.
    #[test]
    fn a_refusal_for_want_of_tls_says_what_to_add() {
        let said = server_message(
            "28000",
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"pushauth\", \
             database \"pushauth\", no encryption",
        );
        assert!(said.ends_with(NO_TLS_ADVICE), "{said}");
        assert!(said.contains("no encryption (28000)"), "{said}");
        let other = server_message("28P01", "password authentication failed for user \"x\"");
        assert_eq!(
            other,
            "password authentication failed for user \"x\" (28P01)"
        );
    }
}

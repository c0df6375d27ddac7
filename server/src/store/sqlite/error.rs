//! The SQLite edge of [`StoreError`]: every `rusqlite::Error` becomes a backend-neutral
//! [`DbError`](crate::store::DbError) here, with rusqlite's own message, so nothing above this module names SQLite.

use rusqlite::ErrorCode;

use crate::store::{DbErrorKind, StoreError};

/// The neutral form of a SQLite failure (its `Display` text is kept as the message, so logs read
/// as they did when the error carried the rusqlite type).
pub(super) fn from_sqlite(err: rusqlite::Error) -> StoreError {
    StoreError::db(kind_of(&err), err.to_string())
}

fn kind_of(err: &rusqlite::Error) -> DbErrorKind {
    use rusqlite::Error as E;
    match err {
        E::SqliteFailure(..) => match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbErrorKind::Busy,
            Some(ErrorCode::ConstraintViolation) => DbErrorKind::Constraint,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => DbErrorKind::InvalidData,
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::DiskFull
                | ErrorCode::PermissionDenied
                | ErrorCode::NoLargeFileSupport
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::OutOfMemory,
            ) => DbErrorKind::Unavailable,
            _ => DbErrorKind::Other,
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => DbErrorKind::InvalidData,
        _ => DbErrorKind::Other,
    }
}

/// `?` for rusqlite results in code that returns [`StoreResult`](crate::store::StoreResult).
pub(super) trait OrStore<T> {
    /// Converts the error with [`from_sqlite`].
    fn or_store(self) -> Result<T, StoreError>;
}

impl<T> OrStore<T> for rusqlite::Result<T> {
    fn or_store(self) -> Result<T, StoreError> {
        self.map_err(from_sqlite)
    }
}

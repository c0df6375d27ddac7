//! The store's error type, the same for every backend: a backend converts its own errors at its
//! edge (see `sqlite::error`), so callers and the [`Store`](super::Store) trait never name a
//! database library.

use thiserror::Error;

/// A storage failure (never a "not found": those are values).
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database refused or failed an operation; what kind and the backend's message.
    #[error("database: {0}")]
    Db(#[source] DbError),
    /// The data directory could not be created or given its mode (0700), or an existing one is
    /// writable by group or others.
    #[error("cannot use data directory {path}")]
    DataDir {
        /// The data directory as configured.
        path: std::path::PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The schema bookkeeping makes no sense (for example a version with no migration step).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer pushauthd; this one refuses to touch it.
    #[error("database schema version {0} is newer than this pushauthd understands")]
    TooNew(i64),
    /// The database's schema is older than this pushauthd's and was not migrated (`serve
    /// --no-migrate`).
    #[error("database schema version {found} is older than this pushauthd's ({wanted}): run pushauthd migrate")]
    TooOld {
        /// The database's version.
        found: i64,
        /// This binary's version.
        wanted: i64,
    },
    /// The operating system refused a thread the store needs (the background checkpointer).
    #[error("cannot start a store thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the operations of a [`Store`](super::Store) return.
pub type StoreResult<T> = Result<T, StoreError>;

/// A database failure described without the backend's types: a kind callers may branch on and
/// the backend's own message (for the log; it names tables and constraints, never values).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct DbError {
    /// What sort of failure it was.
    pub kind: DbErrorKind,
    /// The backend's description, as it gave it.
    pub message: String,
}

/// The sorts of database failure a caller can tell apart, whatever the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// Another connection held a lock past the busy timeout; the operation may succeed later.
    Busy,
    /// A uniqueness, foreign-key, not-null or check constraint refused the write.
    Constraint,
    /// A stored value could not be read into its record type, or the database file is damaged.
    InvalidData,
    /// The database file could not be opened, read or written (I/O, permissions, disk full).
    Unavailable,
    /// The database server refused pushauthd's credentials (PostgreSQL `28P01` wrong
    /// password, `28000` no `pg_hba.conf` entry): a configuration fault, answered like
    /// [`DbErrorKind::Unavailable`] (503, retried) but logged as what it is.
    Denied,
    /// Anything else (a statement the backend rejected, a misuse): a bug, not the environment.
    Other,
}

impl StoreError {
    /// The same failure again, for each of several operations that one failure ended (a
    /// batch's): a database error as it was; any other (which carries what cannot be cloned)
    /// as [`StoreError::Corrupt`] with its message.
    pub fn copy(&self) -> StoreError {
        match self {
            StoreError::Db(e) => StoreError::Db(e.clone()),
            other => StoreError::Corrupt(other.to_string()),
        }
    }

    /// Whether the database could not be reached or used at all ([`DbErrorKind::Unavailable`],
    /// or [`DbErrorKind::Denied`]: refused credentials leave it just as unusable): the API
    /// answers 503 `store_unavailable` and long-polls read again (issue 13).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(DbError {
                kind: DbErrorKind::Unavailable | DbErrorKind::Denied,
                ..
            })
        )
    }

    /// Whether waiting may fix it: [`StoreError::is_unavailable`], or [`DbErrorKind::Busy`] (a
    /// lock another replica holds, for example while it migrates). A replica starting keeps
    /// its port answering 503 and tries again on these instead of exiting.
    pub fn is_transient(&self) -> bool {
        self.is_unavailable()
            || matches!(
                self,
                StoreError::Db(DbError {
                    kind: DbErrorKind::Busy,
                    ..
                })
            )
    }

    /// Whether the database refused pushauthd's credentials ([`DbErrorKind::Denied`]).
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            StoreError::Db(DbError {
                kind: DbErrorKind::Denied,
                ..
            })
        )
    }

    /// A [`StoreError::Db`] of `kind` with `message`.
    pub fn db(kind: DbErrorKind, message: impl Into<String>) -> Self {
        StoreError::Db(DbError {
            kind,
            message: message.into(),
        })
    }
}

//! Opening the configured store (`[store]`, issue 13): SQLite in the data directory (the
//! default) or in `sqlite:PATH`, or PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use super::postgres::{ListenerParts, PgStore};
use super::sqlite::SqliteStore;
use super::{SharedStore, StoreResult};
use crate::config::StoreConfig;

/// An opened store and how many job threads should serve it.
pub struct Opened {
    /// The store.
    pub store: SharedStore,
    /// How many operations the backend serves at once, for the job threads: `None` for
    /// SQLite (one writer; group commit does the rest), the pool size for PostgreSQL (each
    /// operation is a network round trip or several, and a group shares no commit there).
    pub concurrent: Option<usize>,
    /// PostgreSQL: what the store shares with the replica's listener (`wake.rs`): the
    /// relying-party cache it keeps true (nothing is kept until it says it listens) and the
    /// server processes whose notices are this replica's own.
    pub listener_parts: Option<ListenerParts>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("concurrent", &self.concurrent)
            .finish_non_exhaustive()
    }
}

/// Opens the store `config` names (`data_dir` for the default SQLite one). With `migrate`
/// its schema is brought up to date; without, a PostgreSQL database must be at this version
/// already (SQLite always migrates when it opens).
///
/// # Errors
/// What the backend's open returns ([`StoreError`](super::StoreError)).
pub fn open(config: &StoreConfig, data_dir: &Path, migrate: bool) -> StoreResult<Opened> {
    Ok(match config {
        StoreConfig::DataDir => Opened {
            store: Arc::new(SqliteStore::open(data_dir)?),
            concurrent: None,
            listener_parts: None,
        },
        StoreConfig::Sqlite(dir) => Opened {
            store: Arc::new(SqliteStore::open(dir)?),
            concurrent: None,
            listener_parts: None,
        },
        StoreConfig::Postgres(settings) => {
            let store = PgStore::open(&with_timeline_file(settings, data_dir), migrate)?;
            Opened {
                listener_parts: Some(store.listener_parts()),
                store: Arc::new(store),
                concurrent: Some(settings.pool_size),
            }
        }
    })
}

/// The file in the data directory that keeps the newest PostgreSQL timeline this replica has
/// written to, so that a restart does not forget it (see `store::postgres::timeline`).
pub const TIMELINE_FILE: &str = "pg-timelines";

/// `settings` with the data directory's [`TIMELINE_FILE`], when the directory exists: an
/// admin command run before the first `serve` (`pushauthd migrate` on a new replica) has none
/// yet, and creating it here could give it the wrong owner (the command run as root); it then
/// checks timelines in memory only, instead of logging an error that nothing went wrong with
/// (session 22, a newcomer following README "High availability").
fn with_timeline_file(
    settings: &crate::config::postgres::PgSettings,
    data_dir: &Path,
) -> crate::config::postgres::PgSettings {
    let mut settings = settings.clone();
    settings.timeline_file = data_dir.is_dir().then(|| data_dir.join(TIMELINE_FILE));
    settings
}

/// `pushauthd migrate`: brings the store's schema up to this binary's version; returns the
/// version found before and the version now.
///
/// # Errors
/// As [`open`]; [`StoreError::TooNew`](super::StoreError::TooNew) for a database written by a
/// newer pushauthd.
pub fn migrate(config: &StoreConfig, data_dir: &Path) -> StoreResult<(i64, i64)> {
    match config {
        StoreConfig::Postgres(settings) => {
            let found = PgStore::connect(&with_timeline_file(settings, data_dir))?.migrate()?;
            Ok((found, super::postgres::SCHEMA_VERSION))
        }
        StoreConfig::DataDir | StoreConfig::Sqlite(_) => {
            let dir = match config {
                StoreConfig::Sqlite(dir) => dir.as_path(),
                _ => data_dir,
            };
            let found = super::sqlite::schema_version(&dir.join(super::sqlite::DB_FILE))?;
            SqliteStore::open(dir)?;
            Ok((found, super::postgres::SCHEMA_VERSION))
        }
    }
}

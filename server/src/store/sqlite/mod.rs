//! The SQLite store: one file `<data_dir>/pushauthd.sqlite3` in WAL mode, one writer connection
//! behind a mutex (SQLite has one writer anyway), a small pool of readers, and a thread that
//! checkpoints the WAL in the background.
//!
//! - `schema`: the schema version and its migrations;
//! - `connection`: opening connections, the reader pool and the writer (`connection::Db`);
//!   `group`: group commit; `checkpoint`: WAL checkpoints off the store thread;
//! - `error`: where SQLite's errors become [`StoreError`]s; `rows`: row mapping;
//! - one file per table group: `challenges`, `limits`, `enrollments`, `devices`,
//!   `relying_parties`, `audit`, `retention`, `push_subscriptions`, `notices`, `backup_codes`, `offline`, `grace`, `counts`, `site_keys`; `store` wires them into the trait.

mod audit;
mod backup_codes;
mod challenges;
mod checkpoint;
mod connection;
mod counts;
mod devices;
mod enrollments;
mod error;
mod grace;
mod group;
mod limits;
mod notices;
mod offline;
mod push_subscriptions;
mod relying_parties;
mod retention;
mod rows;
mod schema;
mod site_keys;
mod store;
#[cfg(test)]
mod tests;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use self::checkpoint::Checkpointer;
use self::connection::open_connection;
use self::schema::migrate;
use crate::store::{StoreError, StoreResult};

/// Reader connections kept open between reads. Every store job thread should keep its own
/// (closing one drops its page cache), so the server starts no more job threads than this.
pub const MAX_IDLE_READERS: usize = 8;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "pushauthd.sqlite3";

/// The SQLite implementation of [`Store`](crate::store::Store): open it with
/// [`SqliteStore::open`], share it as a [`SharedStore`](crate::store::SharedStore).
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The schema version of the SQLite database at `path` (0 when there is none yet), read
/// without changing it (`pushauthd migrate` reports it).
///
/// # Errors
/// [`StoreError::Db`] when the file cannot be read as a database.
pub fn schema_version(path: &Path) -> StoreResult<i64> {
    if !path.exists() {
        return Ok(0);
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(self::error::from_sqlite)?;
    let version: rusqlite::Result<Option<i64>> =
        conn.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0));
    match version {
        Ok(v) => Ok(v.unwrap_or(0)),
        // No schema_version table: a database never migrated.
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => Ok(0),
        Err(e) => Err(self::error::from_sqlite(e)),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, which is created 0700 if missing.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        };
        if !data_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(dir_err)?;
            // The umask may have narrowed the mode further; make it exactly 0700.
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
        }
        // An existing directory others may write would let them swap the database under us.
        // Any owner: the admin CLI runs as root on the service user's directory.
        pushauth_files::check_dir(data_dir, &pushauth_files::Owner::Any)
            .map_err(|e| dir_err(std::io::Error::other(e.to_string())))?;
        let path = data_dir.join(DB_FILE);
        let mut writer = open_connection(&path)?;
        migrate(&mut writer)?;
        let checkpointer = Checkpointer::start(open_connection(&path)?, &path)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            checkpointer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

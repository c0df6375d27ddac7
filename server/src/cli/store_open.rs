//! Which store an admin command works on, and opening it without ever creating one.
//!
//! Why: an admin command that silently opened (and so created) an empty SQLite file in the
//! default data directory on a site whose server runs on PostgreSQL "revoked" a device nobody
//! uses while the real one kept approving. So: the packaged config file is read when none is
//! named, and a store that does not exist or has no schema is an error naming the store and
//! how to point elsewhere (only `pushauthd migrate` creates one).

use std::path::{Path, PathBuf};

use super::{CliError, StoreArgs};
use crate::config::{config_path, FileConfig, StoreConfig, DEFAULT_CONFIG, DEFAULT_DATA_DIR};
use crate::store::{SharedStore, StoreError};

/// How to point a command at another store, for the error messages.
const POINT_ELSEWHERE: &str = "point to the server's store with --config FILE (or PUSHAUTHD_CONFIG), --data-dir DIR or --store-url URL";

/// What to do when the store's database is an old primary this data directory's
/// `pg-timelines` has seen superseded (README "High availability").
const STALE_PRIMARY_ADVICE: &str = "the replicas refuse it too: promote or restart the newest \
    primary, and rebuild this server as its standby (pg_basebackup -R) before using it again";

/// The config file `args` names (`--config`, `PUSHAUTHD_CONFIG`), else the packaged one
/// when it exists.
pub(super) fn config_file(args: &StoreArgs) -> Option<PathBuf> {
    config_path(args.config.as_deref(), Path::new(DEFAULT_CONFIG))
}

/// The config file of `args` (see [`config_file`]) loaded, or the defaults when there is none.
pub(super) fn load_file(args: &StoreArgs) -> Result<FileConfig, CliError> {
    Ok(match config_file(args) {
        Some(path) => FileConfig::load(&path)?,
        None => FileConfig::default(),
    })
}

/// The data directory of `args` or the config file, and the `[store]` it names (`--store-url`
/// or `PUSHAUTHD_STORE_URL` first).
pub(super) fn store_config(
    args: &StoreArgs,
    file: &FileConfig,
) -> Result<(PathBuf, StoreConfig), CliError> {
    let dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    let store = file
        .store
        .clone()
        .unwrap_or_default()
        .resolve(args.store_url.as_deref())?;
    Ok((dir, store))
}

/// The store in words, for messages: its kind and where it is (a PostgreSQL URL holds no
/// password: those are refused when it is parsed).
pub(super) fn describe(store: &StoreConfig, dir: &Path) -> String {
    match store {
        StoreConfig::DataDir => sqlite_file(dir).display().to_string(),
        StoreConfig::Sqlite(dir) => sqlite_file(dir).display().to_string(),
        StoreConfig::Postgres(settings) => settings.url.clone(),
    }
}

fn sqlite_file(dir: &Path) -> PathBuf {
    dir.join(crate::store::sqlite::DB_FILE)
}

/// Where the store choice came from, for messages.
fn origin(args: &StoreArgs) -> String {
    match config_file(args) {
        Some(path) => format!("config file {}", path.display()),
        None => format!("no config file ({DEFAULT_CONFIG} does not exist)"),
    }
}

/// Tells on stderr (under `--verbose`) which store a command uses and why; stdout stays the
/// command's output alone.
pub(super) fn tell(args: &StoreArgs, store: &StoreConfig, dir: &Path) {
    if args.verbose {
        eprintln!(
            "pushauthd: store {} ({})",
            describe(store, dir),
            origin(args)
        );
    }
}

/// Opens the store `args` and `file` name, as it is: never created, and PostgreSQL never
/// migrated (that is `pushauthd migrate`'s job; an existing SQLite file of an older version is
/// brought up to date when it opens, as it always was).
///
/// # Errors
/// [`CliError::Failed`] naming the store, where the choice came from and how to point
/// elsewhere, when the store does not exist, has no schema or another version's, or cannot be
/// opened.
pub(super) fn open_store(args: &StoreArgs, file: &FileConfig) -> Result<SharedStore, CliError> {
    let (dir, store) = store_config(args, file)?;
    tell(args, &store, &dir);
    let failed = |what: String| {
        CliError::Failed(format!(
            "{what} (store {}, from {}); {POINT_ELSEWHERE}",
            describe(&store, &dir),
            origin(args)
        ))
    };
    // The right store, on the wrong server: the refusal says what to do, and pointing
    // elsewhere would only lead away from it.
    let stale = |e: &StoreError| {
        CliError::Failed(format!(
            "{e} (store {}, from {}); {STALE_PRIMARY_ADVICE}",
            describe(&store, &dir),
            origin(args)
        ))
    };
    let sqlite_dir = match &store {
        StoreConfig::DataDir => Some(dir.as_path()),
        StoreConfig::Sqlite(dir) => Some(dir.as_path()),
        StoreConfig::Postgres(_) => None,
    };
    if let Some(sqlite_dir) = sqlite_dir {
        let path = sqlite_file(sqlite_dir);
        // Read-only look first: opening would create the file (and its directory).
        match crate::store::sqlite::schema_version(&path) {
            Ok(_) if !path.exists() => {
                return Err(failed("no pushauthd store: the file does not exist".into()))
            }
            Ok(0) => return Err(failed("no pushauthd schema in the store".into())),
            Ok(_) => {}
            Err(e) => return Err(failed(e.to_string())),
        }
    }
    match crate::store::open::open(&store, &dir, false) {
        Ok(opened) => Ok(opened.store),
        Err(StoreError::TooOld { found: 0, .. }) => Err(failed(
            "no pushauthd schema in the database: run pushauthd migrate if this is the store to use"
                .into(),
        )),
        Err(e) if crate::store::postgres::refuses_stale_primary(&e) => Err(stale(&e)),
        // The right store, refusing these credentials: pointing elsewhere would mislead.
        Err(e) if e.is_denied() => Err(CliError::Failed(format!(
            "{e} (store {}, from {}); {}",
            describe(&store, &dir),
            origin(args),
            crate::store::postgres::CREDENTIALS_ADVICE
        ))),
        Err(e) => Err(failed(e.to_string())),
    }
}

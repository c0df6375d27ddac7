//! `[store]`: where pushauthd keeps its state (issue 13). No `url` (or `sqlite:PATH`) is the
//! SQLite database in the data directory (or in PATH); `postgresql://…` is the PostgreSQL
//! backend, for several replicas over one database.

use std::path::PathBuf;

use serde::Deserialize;

use super::postgres::{is_postgres_url, PgSettings};
use super::ConfigError;

/// `[store]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    /// `url`: `sqlite:PATH` (a data directory) or `postgresql://…` (libpq URL syntax, no
    /// password).
    pub url: Option<String>,
    /// `password_file`: the PostgreSQL password, mode 0600 or stricter.
    pub password_file: Option<PathBuf>,
    /// `pool_size`: PostgreSQL connections kept at most (default 8).
    pub pool_size: Option<usize>,
}

/// The store a server or command uses.
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// SQLite in the data directory (the default).
    #[default]
    DataDir,
    /// SQLite in this directory (`sqlite:PATH`).
    Sqlite(PathBuf),
    /// PostgreSQL.
    Postgres(Box<PgSettings>),
}

impl FileStore {
    /// The checked store settings, `url` replaced by `url_override` (`--store-url` or
    /// `PUSHAUTHD_STORE_URL`) when given.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and what to do (a password in the URL, an
    /// unreadable password file, an unknown scheme).
    pub fn resolve(&self, url_override: Option<&str>) -> Result<StoreConfig, ConfigError> {
        let Some(url) = url_override.or(self.url.as_deref()) else {
            return Ok(StoreConfig::DataDir);
        };
        if let Some(path) = url.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(ConfigError::Invalid(
                    "[store] url sqlite:PATH needs the data directory as PATH".into(),
                ));
            }
            return Ok(StoreConfig::Sqlite(PathBuf::from(path)));
        }
        if !is_postgres_url(url) {
            return Err(ConfigError::Invalid(
                "[store] url must be sqlite:PATH or postgresql://…".into(),
            ));
        }
        let settings = PgSettings::parse(url, self.password_file.as_deref(), self.pool_size)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(StoreConfig::Postgres(Box::new(settings)))
    }
}

//! The TOML config file (`/etc/pushauthd/pushauthd.toml`): every key named, unknown keys refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pushauth_files::{FileError, Owner, ReadPolicy};
use serde::Deserialize;

use super::{
    BackupCodesConfig, ConfigError, FileWeb, FileWebPush, FileWebhook, Limits, Retention, TlsConfig,
};

/// The TOML config file. Unknown keys are an error naming the key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen`: the address to bind.
    pub listen: Option<SocketAddr>,
    /// `data_dir`: the state directory.
    pub data_dir: Option<PathBuf>,
    /// `admin_token_file`: default `<data_dir>/admin-token`.
    pub admin_token_file: Option<PathBuf>,
    /// `public_url`: base URL of enrollment links.
    pub public_url: Option<String>,
    /// `default_ttl_secs`, in seconds.
    pub default_ttl_secs: Option<u64>,
    /// `max_ttl_secs`, in seconds.
    pub max_ttl_secs: Option<u64>,
    /// `enrollment_ttl_secs`, in seconds.
    pub enrollment_ttl_secs: Option<u64>,
    /// `code_digits`: length of number-matching codes, 2 to 8 (default 6).
    pub code_digits: Option<pushauth_proto::challenge::CodeDigits>,
    /// `sweep_interval_secs`, in seconds (0: no sweeper).
    pub sweep_interval_secs: Option<u64>,
    /// `[tls]`.
    pub tls: Option<TlsConfig>,
    /// `[limits]`.
    pub limits: Option<Limits>,
    /// `[retention]`.
    pub retention: Option<Retention>,
    /// `[webhook]`.
    pub webhook: Option<FileWebhook>,
    /// `[web_push]`.
    pub web_push: Option<FileWebPush>,
    /// `[web]`.
    pub web: Option<FileWeb>,
    /// `[backup_codes]`.
    pub backup_codes: Option<BackupCodesConfig>,
    /// `[offline]` (issue 12): offline codes.
    pub offline: Option<super::FileOffline>,
    /// `[store]` (issue 13): SQLite or PostgreSQL.
    pub store: Option<super::FileStore>,
    /// The file's mode bits when it was read from a file (see [`FileConfig::load`]).
    #[serde(skip)]
    pub file_mode: Option<u32>,
    /// The file it was read from.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl FileConfig {
    /// Parses config text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: pushauth_files::toml_error(text, &e),
        })
    }

    /// Reads and parses a config file. It may belong to anyone (root, typically) but group and
    /// others must not be able to write it, and it is at most 64 KiB ([`pushauth_files`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let contents =
            pushauth_files::read(path, &ReadPolicy::config(Owner::Any)).map_err(|e| match e {
                FileError::NotFound { path } => ConfigError::Read {
                    path,
                    source: std::io::ErrorKind::NotFound.into(),
                },
                FileError::Read { path, source } => ConfigError::Read { path, source },
                other => other.into(),
            })?;
        // The mode of the file actually read (not of a path that may change meanwhile).
        let mode = contents.mode;
        let text = contents.into_text()?;
        let mut config = Self::parse(&text, path)?;
        config.file_mode = Some(mode);
        config.path = Some(path.to_owned());
        Ok(config)
    }
}

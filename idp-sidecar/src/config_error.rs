//! Why the sidecar's configuration is unusable: one error type for the config file, the realms
//! table and the resolved settings (a leaf module, so those three do not import each other in a
//! cycle).

use std::path::PathBuf;

use pushauth_client::settings::SettingsError;
use pushauth_files::FileError;
use thiserror::Error;

/// Why the configuration is unusable. Every message names the file or key to fix.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// A file cannot be written (the signing key, created when missing).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The write error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A setting is out of range or inconsistent; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A secret file refused or unreadable ([`pushauth_files`]: owner, mode, size).
    #[error(transparent)]
    File(#[from] FileError),
}

impl From<SettingsError> for ConfigError {
    fn from(e: SettingsError) -> Self {
        ConfigError::Invalid(e.to_string())
    }
}

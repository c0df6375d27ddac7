//! The config file of `pushauth-approve` (TOML): the shared relying-party client keys
//! ([`ClientSettings`]: `server` or `servers`, `api_key_file`, `ca_file`, `proxy`,
//! `connect_timeout`, `allow_insecure_http`, `authorized_devices`) and nothing else; unknown
//! keys are refused. The file must not be writable by group or others; the API key file must be
//! the running user's and private (0600 or 0400), since a pipeline's key can ask anyone's
//! phone.

use std::path::{Path, PathBuf};

use pushauth_client::settings::{ApiKeySource, SettingsError};
use pushauth_client::{ClientConfig, ClientSettings};
use pushauth_files::{FileError, Owner, ReadPolicy};
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

/// Where the config is read from without `--config`.
pub const DEFAULT_CONFIG: &str = "/etc/pushauth/approve.toml";

/// Largest config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Largest API key file read, in bytes.
const MAX_SECRET_BYTES: u64 = 4096;

/// Why the configuration is unusable; each message names the file and what to change.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read under the rule for it (missing, wrong owner or mode).
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not valid TOML for this program.
    #[error("{path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A client setting is wrong.
    #[error("{path}: {source}")]
    Settings {
        /// The config file.
        path: PathBuf,
        /// The setting's error.
        source: SettingsError,
    },
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(flatten)]
    client: ClientSettings,
}

/// Reads `path` and the API key file it names; the client configuration.
///
/// # Errors
/// [`ConfigError`]: unreadable or unsafe files, bad TOML, unknown keys, bad settings, an inline
/// `api_key` (refused: the key belongs in a private file).
pub fn load(path: &Path) -> Result<ClientConfig, ConfigError> {
    let policy = ReadPolicy::config(Owner::Any).max_bytes(MAX_CONFIG_BYTES);
    let text = pushauth_files::read(path, &policy)?.into_text()?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: pushauth_files::toml_error(&text, &e),
    })?;
    let settings = |source| ConfigError::Settings {
        path: path.to_owned(),
        source,
    };
    let key_file = match file.client.api_key_source().map_err(settings)? {
        ApiKeySource::File(file) => file.to_owned(),
        ApiKeySource::Inline(_) => return Err(settings(SettingsError::InlineApiKeyRefused)),
    };
    let policy = ReadPolicy::secret(Owner::current()).max_bytes(MAX_SECRET_BYTES);
    let key = pushauth_files::read(&key_file, &policy)?.into_text()?;
    let key = Zeroizing::new(key.trim_end_matches(['\n', '\r']).to_owned());
    file.client.client_config(key).map_err(settings)
}

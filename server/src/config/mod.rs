//! Server configuration: the in-memory [`ServerConfig`], the TOML file form ([`FileConfig`]),
//! `[limits]` and `[retention]`, `[backup_codes]`, `[offline]`, `[webhook]`, `[web_push]` (with its push origin allow-list), `[web]`,
//! and the admin token file. Secret files are read through [`pushauth_files`] (owned by the
//! service's user, mode 0600, checked on the opened file).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pushauth_proto::challenge::CodeDigits;
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

mod backup_codes;
mod file;
mod limits;
mod offline;
pub mod postgres;
mod push_origins;
mod secrets;
mod store;
mod web;
mod webhook;
mod webpush;

pub use backup_codes::{BackupCodesConfig, MAX_BACKUP_CODES};
pub use file::FileConfig;
pub use limits::{Limits, Retention};
pub use offline::{FileOffline, OfflineConfig};
pub use push_origins::{AllowList, EndpointError, DEFAULT_ORIGINS, MAX_ENDPOINT_BYTES};
pub use secrets::{load_or_create_admin_token, read_admin_token};
pub use store::{FileStore, StoreConfig};
pub use web::{check_app_dir, FileWeb, WebConfig};
pub use webhook::{FileWebhook, WebhookConfig};
pub use webpush::{check_subject, FileWebPush, WebPushConfig};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/pushauthd";
/// The packaged config file: the admin commands read it when no `--config` (or
/// [`CONFIG_ENV`]) names one and it exists, so that they use the store the server uses.
pub const DEFAULT_CONFIG: &str = "/etc/pushauthd/pushauthd.toml";
/// The environment variable naming a config file, as `--config` does.
pub const CONFIG_ENV: &str = "PUSHAUTHD_CONFIG";

/// The config file a command reads: `named` (`--config` or [`CONFIG_ENV`]), else `default`
/// when that file exists (a missing default is no config, not an error), else none.
pub fn config_path(named: Option<&Path>, default: &Path) -> Option<PathBuf> {
    match named {
        Some(path) => Some(path.to_owned()),
        // A default that cannot even be looked at is read, so that the error says why.
        None if !matches!(default.try_exists(), Ok(false)) => Some(default.to_owned()),
        None => None,
    }
}

/// Certificate chain and private key files (PEM) for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Everything a running server needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address the HTTP(S) listener binds.
    pub listen: SocketAddr,
    /// The state directory (database), `0700`.
    pub data_dir: PathBuf,
    /// Base URL for enrollment links; `http(s)://<listen>` when absent.
    pub public_url: Option<String>,
    /// The admin bearer token (zeroized on drop, never printed).
    pub admin_token: Zeroizing<String>,
    /// HTTPS certificate and key; plain HTTP when `None`.
    pub tls: Option<TlsConfig>,
    /// Push-fatigue and connection limits.
    pub limits: Limits,
    /// Challenge lifetime when the relying party asks for none, in seconds.
    pub default_ttl_secs: u64,
    /// Longest challenge lifetime a relying party may ask for, in seconds.
    pub max_ttl_secs: u64,
    /// Lifetime of an enrollment link, in seconds.
    pub enrollment_ttl_secs: u64,
    /// Length of number-matching codes (`code_digits`, 2 to 8, default 6; below 6 is weaker
    /// than NIST SP 800-63B-4 asks).
    pub code_digits: CodeDigits,
    /// Where new challenges are announced, if anywhere.
    pub webhook: Option<WebhookConfig>,
    /// `[web_push]`: Web Push to the devices' push services.
    pub web_push: WebPushConfig,
    /// How often the background sweeper expires overdue challenges, prunes old nonces and
    /// applies `retention`; 0 turns it off (expiry is still enforced on every read and write).
    pub sweep_interval_secs: u64,
    /// How long finished records are kept.
    pub retention: Retention,
    /// `[web]`: where the web app's files come from.
    pub web: WebConfig,
    /// `[backup_codes]`: the size of a set of backup codes.
    pub backup_codes: BackupCodesConfig,
    /// `[offline]`: offline codes (issue 12).
    pub offline: OfflineConfig,
    /// `[store]`: SQLite (default) or PostgreSQL (issue 13).
    pub store: StoreConfig,
    /// Apply schema migrations when the store opens (`serve --no-migrate` turns it off).
    pub migrate: bool,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("admin_token", &"<redacted>")
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("default_ttl_secs", &self.default_ttl_secs)
            .field("max_ttl_secs", &self.max_ttl_secs)
            .field("enrollment_ttl_secs", &self.enrollment_ttl_secs)
            .field("code_digits", &self.code_digits)
            .field("webhook", &self.webhook)
            .field("web_push", &self.web_push)
            .field("sweep_interval_secs", &self.sweep_interval_secs)
            .field("retention", &self.retention)
            .field("web", &self.web)
            .field("backup_codes", &self.backup_codes)
            .field("offline", &self.offline)
            .field("store", &self.store)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl ServerConfig {
    /// A configuration with every default.
    pub fn new(listen: SocketAddr, data_dir: PathBuf, admin_token: String) -> Self {
        ServerConfig {
            listen,
            data_dir,
            public_url: None,
            admin_token: Zeroizing::new(admin_token),
            tls: None,
            limits: Limits::default(),
            default_ttl_secs: 60,
            max_ttl_secs: 300,
            enrollment_ttl_secs: 600,
            code_digits: CodeDigits::default(),
            webhook: None,
            web_push: WebPushConfig::default(),
            sweep_interval_secs: 5,
            retention: Retention::default(),
            web: WebConfig::default(),
            backup_codes: BackupCodesConfig::default(),
            offline: OfflineConfig::default(),
            store: StoreConfig::default(),
            migrate: true,
        }
    }

    /// The base URL for links: the configured one, else derived from `addr` (the bound address).
    pub fn base_url(&self, addr: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{addr}")
            }
        }
    }
}

/// A configuration problem, named so the person can fix it.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// Where and what (`line N (key): message`).
        message: String,
    },
    /// The admin token file is refused, missing, empty or cannot be made.
    #[error("admin token file {path}: {message}")]
    AdminToken {
        /// The admin token file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A value or combination of values is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// A file (the config file, the webhook secret) refused by the shared rule of
    /// [`pushauth_files`]: owner, mode, size.
    #[error(transparent)]
    File(#[from] pushauth_files::FileError),
}

#[cfg(test)]
mod tests;

//! Server configuration: the in-memory [`ServerConfig`], the TOML file form, and the admin token
//! file.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/pushauthd";

/// Push-fatigue limits and connection limits (`[limits]`).
///
/// Push limits count only challenges that did not end in an approval (still open, expired,
/// cancelled, denied or reported): a person who approves their own logins never meets them.
/// They are kept per *source*: the user, the relying party and the login's source address (the
/// context value `rhost`, `remote_addr` or `ip`, whichever the relying party sent; a login
/// without one is a source of its own). So pushes an attacker starts from one address cannot
/// stop the owner's logins from another; the per-user ceilings, far higher, still stop a spray
/// from many addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open (pending or acknowledged, unexpired) challenges one source may have for a user.
    pub max_open_per_source: u32,
    /// Open challenges a user may have at once, over all sources (the ceiling).
    pub max_open_per_user: u32,
    /// New unapproved challenges one source may start for a user within `window_secs`.
    pub max_new_per_window: u32,
    /// New unapproved challenges a user may get within `window_secs`, over all sources.
    pub max_new_per_user_window: u32,
    /// The rate window, in seconds.
    pub window_secs: u64,
    /// How long a "this was not me" report stops new pushes to the user from that source
    /// (same user, relying party and source address), in seconds.
    pub report_lockout_secs: u64,
    /// Connections served at once; more are closed as soon as they are accepted, unread.
    pub max_connections: u32,
    /// Connections one client address (for IPv6, its /64) may hold at once; more are closed
    /// unread. Raise it for a relying party that waits on many logins at once (an IdP sidecar).
    pub max_connections_per_address: u32,
    /// Seconds a client has to send a whole request head: from the moment it connects (after
    /// the TLS handshake, which has the same bound) and, on a kept-alive connection, from the
    /// end of the previous response (so it is also the idle keep-alive timeout).
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its head arrived (bodies are at
    /// most 64 KiB); a slower one gets 400 and the connection ends.
    pub body_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_per_source: 3,
            max_open_per_user: 30,
            max_new_per_window: 10,
            max_new_per_user_window: 100,
            window_secs: 600,
            report_lockout_secs: 900,
            max_connections: 16_384,
            max_connections_per_address: 4096,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
        }
    }
}

/// How long finished records are kept, and how large the database may grow (`[retention]`).
/// A 0 in a `*_days` key keeps those records for ever; `max_db_mb = 0` sets no bound. Devices
/// are never deleted: they are the record of every device ever bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days after its expiry that a finished challenge (with the device's signed answer) is
    /// deleted. Open challenges are never deleted. Default 90.
    pub challenges_days: u64,
    /// Days after which audit events are deleted. Default 400.
    pub audit_days: u64,
    /// Size bound of the database (its file and write-ahead log), in MiB: above it new
    /// challenges are refused with 507 `storage_full` until retention or the admin makes room.
    /// Default 1024.
    pub max_db_mb: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            challenges_days: 90,
            audit_days: 400,
            max_db_mb: 1024,
        }
    }
}

const DAY_MS: i64 = 86_400_000;

impl Retention {
    /// The cutoffs at `now`: records older than these go; `None` keeps them.
    pub fn cutoffs(&self, now: crate::clock::Millis) -> (Option<i64>, Option<i64>) {
        let cutoff = |days: u64| {
            (days > 0).then(|| {
                let age = i64::try_from(days).map_or(i64::MAX, |d| d.saturating_mul(DAY_MS));
                now.saturating_sub(age)
            })
        };
        (cutoff(self.challenges_days), cutoff(self.audit_days))
    }

    /// The size bound in bytes; `None` without one.
    pub fn max_db_bytes(&self) -> Option<u64> {
        (self.max_db_mb > 0).then(|| self.max_db_mb.saturating_mul(1024 * 1024))
    }
}

/// Certificate chain and private key files (PEM) for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where to POST a notification for every new challenge.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key for the `X-PushAuth-Signature` header.
    pub secret: Zeroizing<String>,
    pub timeout_ms: u64,
    /// Put the user name in notifications (`[webhook] include_user`, default false): only the
    /// challenge id and the device id are sent otherwise.
    pub include_user: bool,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .field("include_user", &self.include_user)
            .finish()
    }
}

/// Everything a running server needs.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Base URL for enrollment links; `http(s)://<listen>` when absent.
    pub public_url: Option<String>,
    pub admin_token: Zeroizing<String>,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub default_ttl_secs: u64,
    pub max_ttl_secs: u64,
    pub enrollment_ttl_secs: u64,
    pub webhook: Option<WebhookConfig>,
    /// How often the background sweeper expires overdue challenges, prunes old nonces and
    /// applies `retention`; 0 turns it off (expiry is still enforced on every read and write).
    pub sweep_interval_secs: u64,
    pub retention: Retention,
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
            .field("webhook", &self.webhook)
            .field("sweep_interval_secs", &self.sweep_interval_secs)
            .field("retention", &self.retention)
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
            webhook: None,
            sweep_interval_secs: 5,
            retention: Retention::default(),
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
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("admin token file {path}: {message}")]
    AdminToken { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The TOML config file. Unknown keys are an error naming the key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub admin_token_file: Option<PathBuf>,
    pub public_url: Option<String>,
    pub default_ttl_secs: Option<u64>,
    pub max_ttl_secs: Option<u64>,
    pub enrollment_ttl_secs: Option<u64>,
    pub sweep_interval_secs: Option<u64>,
    pub tls: Option<TlsConfig>,
    pub limits: Option<Limits>,
    pub retention: Option<Retention>,
    pub webhook: Option<FileWebhook>,
    /// The file's mode bits when it was read from a file (see [`FileConfig::load`]).
    #[serde(skip)]
    pub file_mode: Option<u32>,
    /// The file it was read from.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[webhook]` in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhook {
    pub url: String,
    /// The HMAC key itself, or
    pub secret: Option<String>,
    /// a file holding it.
    pub secret_file: Option<PathBuf>,
    pub timeout_ms: Option<u64>,
    /// Send the user name in notifications too (default false).
    #[serde(default)]
    pub include_user: bool,
}

impl fmt::Debug for FileWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWebhook")
            .field("url", &self.url)
            .field("secret_file", &self.secret_file)
            .field("include_user", &self.include_user)
            .finish()
    }
}

impl FileConfig {
    /// Parses config text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: toml_error(text, &e),
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = fs::File::open(path).map_err(read_err)?;
        // The mode of the file actually read (not of a path that may change meanwhile).
        let mode = file.metadata().map_err(read_err)?.permissions().mode();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(read_err)?;
        let mut config = Self::parse(&text, path)?;
        config.file_mode = Some(mode);
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// The webhook settings, reading the secret file when one is named.
    pub fn webhook_config(&self) -> Result<Option<WebhookConfig>, ConfigError> {
        let Some(hook) = &self.webhook else {
            return Ok(None);
        };
        let secret = match (&hook.secret, &hook.secret_file) {
            (Some(secret), None) => {
                if let (Some(mode), Some(path)) = (self.file_mode, &self.path) {
                    if mode & 0o077 != 0 {
                        return Err(ConfigError::Invalid(format!(
                            "{} holds the webhook secret inline and is readable by group or \
                             others; chmod 600 {}, or move the secret to a 0600 file named by \
                             [webhook] secret_file",
                            path.display(),
                            path.display()
                        )));
                    }
                }
                Zeroizing::new(secret.clone())
            }
            (None, Some(path)) => {
                // Checked on the opened file: a secret that others can read is no secret.
                let read_err = |source| ConfigError::Read {
                    path: path.clone(),
                    source,
                };
                let mut file = fs::File::open(path).map_err(read_err)?;
                let mode = file.metadata().map_err(read_err)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(ConfigError::Invalid(format!(
                        "{} holds the webhook secret and is readable by group or others (mode \
                         {:03o}); chmod 600 {}",
                        path.display(),
                        mode & 0o777,
                        path.display()
                    )));
                }
                let mut text = Zeroizing::new(String::new());
                std::io::Read::read_to_string(&mut file, &mut text).map_err(read_err)?;
                Zeroizing::new(text.trim().to_owned())
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "[webhook] needs exactly one of secret or secret_file".into(),
                ))
            }
        };
        if secret.is_empty() {
            return Err(ConfigError::Invalid("[webhook] secret is empty".into()));
        }
        Ok(Some(WebhookConfig {
            url: hook.url.clone(),
            secret,
            timeout_ms: hook.timeout_ms.unwrap_or(3000),
            include_user: hook.include_user,
        }))
    }
}

/// A TOML error on one line, saying where: `line N (key): message`. Never quotes the line
/// itself, which may hold a secret.
fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let Some(span) = err.span() else {
        return err.message().to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let key = text
        .lines()
        .nth(line_no - 1)
        .and_then(|line| line.split_once('='))
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key.len() <= 64
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    match key {
        Some(key) => format!("line {line_no} ({key}): {}", err.message()),
        None => format!("line {line_no}: {}", err.message()),
    }
}

/// Reads the admin token file, or creates it (0600) with a fresh random token if it is missing.
/// A file readable by group or others is refused: it grants full control of the server.
pub fn load_or_create_admin_token(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    let err = |message: String| ConfigError::AdminToken {
        path: path.to_owned(),
        message,
    };
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = Zeroizing::new(
                pushauth_proto::random::secret_token().map_err(|e| err(e.to_string()))?,
            );
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .map_err(|e| err(format!("cannot create its folder: {e}")))?;
            }
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(format!("cannot create it: {e}")))?;
            file.write_all(format!("{}\n", token.as_str()).as_bytes())
                .map_err(|e| err(format!("cannot write it: {e}")))?;
            tracing::info!(path = %path.display(), "created a new admin token file");
            Ok(token)
        }
        Err(e) => Err(err(format!("cannot read it: {e}"))),
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(err(format!(
                    "it is readable by group or others and holds the admin token; chmod 600 {}",
                    path.display()
                )));
            }
            read_admin_token(path)
        }
    }
}

/// Reads an existing admin token file (the `push` subcommand uses it as a client).
pub fn read_admin_token(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    let err = |message: String| ConfigError::AdminToken {
        path: path.to_owned(),
        message,
    };
    let text =
        Zeroizing::new(fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?);
    let token = Zeroizing::new(text.trim().to_owned());
    if token.is_empty() {
        return Err(err(
            "it is empty; delete it to have a new token made, or write one in".into(),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = FileConfig::parse("listn = \"127.0.0.1:1\"\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        let err = FileConfig::parse("[limits]\nmax_open = 3\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("max_open"), "{err}");
        let ok = FileConfig::parse(
            "listen = \"127.0.0.1:9\"\n[limits]\nmax_open_per_user = 5\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(ok.limits.unwrap().max_open_per_user, 5);
        assert_eq!(ok.limits.unwrap().window_secs, 600);
        let err = FileConfig::parse("[retention]\naudit = 3\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("audit"), "{err}");
        let err =
            FileConfig::parse("[retention]\naudit_days = -1\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("x.toml"), "{err}");
    }

    #[test]
    fn issue9_item12_retention_has_defaults_and_zero_keeps() {
        let now = 1000 * DAY_MS;
        assert_eq!(
            Retention::default().cutoffs(now),
            (Some(910 * DAY_MS), Some(600 * DAY_MS))
        );
        assert_eq!(
            Retention::default().max_db_bytes(),
            Some(1024 * 1024 * 1024)
        );
        let keep = Retention {
            challenges_days: 0,
            audit_days: 0,
            max_db_mb: 0,
        };
        assert_eq!(keep.cutoffs(now), (None, None));
        assert_eq!(keep.max_db_bytes(), None);
        let retention = Retention {
            challenges_days: 30,
            audit_days: 0,
            ..Retention::default()
        };
        assert_eq!(retention.cutoffs(now), (Some(970 * DAY_MS), None));
        let huge = Retention {
            challenges_days: u64::MAX,
            audit_days: 1,
            ..Retention::default()
        };
        assert_eq!(
            huge.cutoffs(now),
            (Some(now - i64::MAX), Some(999 * DAY_MS))
        );
        let parsed = FileConfig::parse("[retention]\naudit_days = 0\n", Path::new("x.toml"))
            .unwrap()
            .retention
            .unwrap();
        assert_eq!((parsed.audit_days, parsed.challenges_days), (0, 90));
    }

    #[test]
    fn issue9_item15_inline_webhook_secret_in_a_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pushauthd.toml");
        fs::write(
            &path,
            "[webhook]\nurl = \"http://127.0.0.1:1/\"\nsecret = \"s3cret\"\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = FileConfig::load(&path)
            .unwrap()
            .webhook_config()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("chmod 600") && err.contains("secret_file"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let hook = FileConfig::load(&path)
            .unwrap()
            .webhook_config()
            .unwrap()
            .unwrap();
        assert!(!hook.include_user);
    }

    #[test]
    fn issue9_item15_a_webhook_secret_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("webhook-secret");
        fs::write(&secret, "s3cret\n").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
        let path = dir.path().join("pushauthd.toml");
        fs::write(
            &path,
            format!(
                "[webhook]\nurl = \"http://127.0.0.1:1/\"\nsecret_file = \"{}\"\n",
                secret.display()
            ),
        )
        .unwrap();
        let err = FileConfig::load(&path)
            .unwrap()
            .webhook_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        let hook = FileConfig::load(&path)
            .unwrap()
            .webhook_config()
            .unwrap()
            .unwrap();
        assert_eq!(hook.secret.as_str(), "s3cret");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../pushauthd.example.toml");
        let config = FileConfig::parse(text, Path::new("pushauthd.example.toml")).unwrap();
        assert_eq!(config.limits, Some(Limits::default()));
        assert_eq!(config.default_ttl_secs, Some(60));
        assert!(config.tls.is_some() && config.webhook.is_some());
        assert_eq!(config.retention, Some(Retention::default()));
    }
}

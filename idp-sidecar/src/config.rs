//! Configuration: the TOML file (every key named, unknown keys refused) and the resolved
//! [`Settings`] the service runs with, secrets read from their files.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pushauth_proto::{b64, random, DeviceSigningKey};
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

/// Why the configuration is unusable. Every message names the file or key to fix.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the shim API listens (loopback by default).
    pub listen: Option<SocketAddr>,
    /// pushauthd base URLs, tried in order.
    pub servers: Option<Vec<String>>,
    /// The sidecar's relying-party API key (`pushauthd rp add idp-sidecar`).
    pub api_key_file: Option<PathBuf>,
    /// pushauthd admin token: enables enrollment and device removal.
    pub admin_token_file: Option<PathBuf>,
    /// The secret IdP shims send as `Authorization: Bearer`.
    pub shared_secret_file: Option<PathBuf>,
    /// The Ed25519 seed that signs result tokens (created 0600 when missing).
    pub signing_key_file: Option<PathBuf>,
    /// Extra PEM CA for an HTTPS pushauthd with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Challenge lifetime for a login.
    pub login_ttl_secs: Option<u64>,
    /// How long a result token stays valid.
    pub result_ttl_secs: Option<u64>,
    /// Bound on logins held in memory (pending or recently ended).
    pub max_pending: Option<usize>,
    pub ciba: Option<FileCiba>,
}

/// `[ciba]`: Keycloak's HTTP authentication channel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCiba {
    /// A secret that is part of the channel URL Keycloak posts to (`/ciba/<secret>`).
    pub key_file: PathBuf,
    /// Keycloak's base URL; callbacks go only to realms under it.
    pub keycloak_url: String,
    /// Challenge lifetime for CIBA requests.
    pub ttl_secs: Option<u64>,
}

impl FileConfig {
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Resolves the file into settings: reads every secret, makes the signing key if missing.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let need = |what: &Option<PathBuf>, key: &str| {
            what.clone()
                .ok_or_else(|| ConfigError::Invalid(format!("`{key}` is required")))
        };
        let servers = self
            .servers
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::Invalid("`servers` must name at least one pushauthd URL".into())
            })?;
        let api_key = read_secret(&need(&self.api_key_file, "api_key_file")?)?;
        let shared_secret = read_secret(&need(&self.shared_secret_file, "shared_secret_file")?)?;
        if shared_secret.len() < 16 {
            return Err(ConfigError::Invalid(
                "the shared secret must be at least 16 characters".into(),
            ));
        }
        let admin_token = match &self.admin_token_file {
            Some(path) => Some(read_secret(path)?),
            None => None,
        };
        let signing_key = load_or_create_key(&need(&self.signing_key_file, "signing_key_file")?)?;
        let ciba = match &self.ciba {
            Some(c) => Some(CibaSettings {
                key: read_secret(&c.key_file)?,
                keycloak_url: c.keycloak_url.trim_end_matches('/').to_owned(),
                ttl: Duration::from_secs(c.ttl_secs.unwrap_or(120)),
            }),
            None => None,
        };
        let mut settings = Settings::new(servers, api_key, shared_secret, signing_key);
        if let Some(listen) = self.listen {
            settings.listen = listen;
        }
        settings.admin_token = admin_token;
        settings.ca_file = self.ca_file.clone();
        if let Some(ttl) = self.login_ttl_secs {
            settings.login_ttl = Duration::from_secs(ttl);
        }
        if let Some(ttl) = self.result_ttl_secs {
            settings.result_ttl = Duration::from_secs(ttl);
        }
        if let Some(max) = self.max_pending {
            settings.max_pending = max;
        }
        settings.ciba = ciba;
        settings.check()?;
        Ok(settings)
    }
}

/// CIBA channel settings.
pub struct CibaSettings {
    pub key: Zeroizing<String>,
    pub keycloak_url: String,
    pub ttl: Duration,
}

/// Everything the running sidecar needs.
pub struct Settings {
    pub listen: SocketAddr,
    pub servers: Vec<String>,
    pub api_key: Zeroizing<String>,
    pub admin_token: Option<Zeroizing<String>>,
    pub shared_secret: Zeroizing<String>,
    pub signing_key: DeviceSigningKey,
    pub ca_file: Option<PathBuf>,
    pub login_ttl: Duration,
    pub result_ttl: Duration,
    pub max_pending: usize,
    pub ciba: Option<CibaSettings>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("servers", &self.servers)
            .field("signing_key", &self.signing_key)
            .field("admin", &self.admin_token.is_some())
            .field("ciba", &self.ciba.as_ref().map(|c| &c.keycloak_url))
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings with every default: loopback port 8787, 120 s logins, 60 s result tokens,
    /// 2,000 logins in memory, no admin token, no CIBA.
    pub fn new(
        servers: Vec<String>,
        api_key: Zeroizing<String>,
        shared_secret: Zeroizing<String>,
        signing_key: DeviceSigningKey,
    ) -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            servers,
            api_key,
            admin_token: None,
            shared_secret,
            signing_key,
            ca_file: None,
            login_ttl: Duration::from_secs(120),
            result_ttl: Duration::from_secs(60),
            max_pending: 2000,
            ciba: None,
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if self.login_ttl.is_zero() || self.login_ttl > Duration::from_secs(300) {
            return Err(ConfigError::Invalid(
                "login_ttl_secs must be 1 to 300".into(),
            ));
        }
        if self.result_ttl.is_zero() || self.result_ttl > Duration::from_secs(600) {
            return Err(ConfigError::Invalid(
                "result_ttl_secs must be 1 to 600".into(),
            ));
        }
        if self.max_pending == 0 || self.max_pending > 100_000 {
            return Err(ConfigError::Invalid(
                "max_pending must be 1 to 100000".into(),
            ));
        }
        if let Some(ciba) = &self.ciba {
            if !(ciba.keycloak_url.starts_with("http://")
                || ciba.keycloak_url.starts_with("https://"))
            {
                return Err(ConfigError::Invalid(
                    "ciba.keycloak_url must be an http(s):// base URL".into(),
                ));
            }
            if ciba.key.len() < 16 {
                return Err(ConfigError::Invalid(
                    "the CIBA key must be at least 16 characters".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Reads a secret file (trimmed). A file others can read is refused: it would leak the secret.
pub fn read_secret(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    check_private(path)?;
    let text = Zeroizing::new(
        fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?,
    );
    let secret = Zeroizing::new(text.trim().to_owned());
    if secret.is_empty() {
        return Err(ConfigError::Invalid(format!("{} is empty", path.display())));
    }
    Ok(secret)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o007 != 0 {
        return Err(ConfigError::Invalid(format!(
            "{} is readable by others and holds a secret; chmod o-rwx it",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

/// Loads the sidecar's signing key (a base64url Ed25519 seed), creating it 0600 when missing.
pub fn load_or_create_key(path: &Path) -> Result<DeviceSigningKey, ConfigError> {
    if path.exists() {
        let text = read_secret(path)?;
        let seed = Zeroizing::new(b64::decode_array::<32>(&text, "signing key").map_err(|e| {
            ConfigError::Invalid(format!(
                "{}: not a base64url Ed25519 seed: {e}",
                path.display()
            ))
        })?);
        return Ok(DeviceSigningKey::from_seed(&seed));
    }
    let seed = Zeroizing::new(
        random::bytes::<32>().map_err(|e| ConfigError::Invalid(format!("no randomness: {e}")))?,
    );
    let text = Zeroizing::new(b64::encode(*seed));
    write_private(path, text.as_bytes())?;
    Ok(DeviceSigningKey::from_seed(&seed))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| ConfigError::Write {
        path: path.to_owned(),
        source,
    })?;
    file.write_all(bytes).map_err(|source| ConfigError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = FileConfig::parse("listen = \"127.0.0.1:1\"\nbogus = 1\n", Path::new("x.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let made = load_or_create_key(&path).unwrap();
        let again = load_or_create_key(&path).unwrap();
        assert_eq!(made.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_secret_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, "0123456789abcdef0123").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret(&path).unwrap_err();
        assert!(err.to_string().contains("chmod"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret(&path).unwrap().as_str(), "0123456789abcdef0123");
    }
}

//! Configuration: the TOML file (every key named, unknown keys refused) and its resolution into
//! the [`Settings`] the service runs with, secrets read from their files. The pushauthd client
//! keys (`servers`, `api_key_file`, `ca_file`, `proxy`, `connect_timeout`,
//! `allow_insecure_http`, `authorized_devices`) are the shared
//! [`pushauth_client::ClientSettings`], the same keys and checks as in `pam_push.conf`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pushauth_client::settings::{ApiKeySource, SettingsError};
use pushauth_client::ClientSettings;
use pushauth_files::{FileError, Owner, ReadPolicy};
use pushauth_proto::{b64, random, DeviceSigningKey};
use serde::Deserialize;
use zeroize::Zeroizing;

pub use crate::config_error::ConfigError;
use crate::realms::{FileRealm, Realms};
pub use crate::settings::{CibaSettings, Settings, TlsSettings};

/// Largest secret file read (bytes): a key or token, never a document.
const MAX_SECRET_BYTES: u64 = 4096;

/// The config file. Derefs to its [`ClientSettings`], so `file.servers`, `file.api_key_file`
/// and `file.ca_file` read as the file's own keys (which they are: flattened, same level).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the shim API listens (loopback by default).
    pub listen: Option<SocketAddr>,
    /// How to reach pushauthd: `servers` (or `server`), `api_key_file` (the sidecar's
    /// relying-party key, `pushauthd rp add idp-sidecar`), `ca_file`, `proxy`,
    /// `connect_timeout`, `allow_insecure_http`, `authorized_devices` (pinned device keys).
    #[serde(flatten)]
    pub client: ClientSettings,
    /// No longer accepted: the sidecar holds only its relying-party key (with scoped rights).
    /// Present only to refuse it with a message that says what to do instead.
    pub admin_token_file: Option<toml::Value>,
    /// The secret IdP shims send as `Authorization: Bearer`.
    pub shared_secret_file: Option<PathBuf>,
    /// The Ed25519 seed that signs result tokens (created 0600 when missing).
    pub signing_key_file: Option<PathBuf>,
    /// Challenge lifetime for a login.
    pub login_ttl_secs: Option<u64>,
    /// How long a result token stays valid.
    pub result_ttl_secs: Option<u64>,
    /// Bound on logins held in memory (pending or recently ended).
    pub max_pending: Option<usize>,
    /// Longest time one call to pushauthd (outside a login's own wait) may take, in seconds.
    pub call_timeout_secs: Option<u64>,
    /// Take backup codes for users with a pinned-key file (`authorized_devices`); off by
    /// default: a backup code is pushauthd's word alone, which pins exist to not rely on
    /// ([`pushauth_client::ClientConfig::pinned_backup_codes`], as in `pam_push.conf`).
    pub pinned_backup_codes: Option<bool>,
    /// `[ciba]`: Keycloak's HTTP authentication channel.
    pub ciba: Option<FileCiba>,
    /// `[tls]`: serve the shim API over HTTPS.
    pub tls: Option<FileTls>,
    /// `[realms.<name>]`: how each IdP realm's users map to pushauthd users.
    #[serde(default)]
    pub realms: BTreeMap<String, FileRealm>,
}

/// `[tls]`: the shim API over HTTPS (rustls), with a PEM certificate chain and private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); a secret file (0600, owned by the sidecar).
    pub key: PathBuf,
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

impl std::ops::Deref for FileConfig {
    type Target = ClientSettings;

    fn deref(&self) -> &ClientSettings {
        &self.client
    }
}

impl FileConfig {
    /// Parses config text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // Where, never the line itself: it may hold a secret.
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: pushauth_files::toml_error(text, &e),
        })
    }

    /// Reads and parses the config file, under the shared config rule of [`pushauth_files`]
    /// (checked on the opened file): any owner, not writable by group or others (whoever could
    /// write it would choose the realms' users, the server trusted and the pinned keys), at most
    /// 64 KiB.
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
        let text = contents.into_text()?;
        Self::parse(&text, path)
    }

    /// Resolves the file into settings: reads every secret, makes the signing key if missing.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let need = |what: &Option<PathBuf>, key: &str| {
            what.clone()
                .ok_or_else(|| ConfigError::Invalid(format!("`{key}` is required")))
        };
        // The client keys: one validation, shared with pam_push. The sidecar does not check its
        // config file's mode, so the key must come from a private file, never inline.
        self.client.validate()?;
        let api_key = match self.client.api_key_source()? {
            ApiKeySource::File(file) => read_secret(file)?,
            ApiKeySource::Inline(_) => return Err(SettingsError::InlineApiKeyRefused.into()),
        };
        if let Some(dir) = &self.client.authorized_devices {
            // A missing or group-writable pin directory is refused at start, not at a login.
            pushauth_client::pinned::check_pinned_dir(dir)
                .map_err(|e| ConfigError::Invalid(format!("authorized_devices: {e}")))?;
        }
        let shared_secret = read_secret(&need(&self.shared_secret_file, "shared_secret_file")?)?;
        if shared_secret.len() < 16 {
            return Err(ConfigError::Invalid(
                "the shared secret must be at least 16 characters".into(),
            ));
        }
        if self.admin_token_file.is_some() {
            return Err(ConfigError::Invalid(
                "admin_token_file is no longer supported: the sidecar must not hold pushauthd's admin token. \
                 Give its relying-party key the rights it needs instead \
                 (pushauthd rp add idp-sidecar --user 'kc/*' --enroll [--bootstrap]), \
                 put that key in api_key_file and remove admin_token_file"
                    .into(),
            ));
        }
        let realms = Realms::from_file(&self.realms)?;
        if realms.is_empty() {
            return Err(ConfigError::Invalid(
                "no [realms.<name>] is configured, so every login would be refused; add one per IdP realm, \
                 e.g. [realms.corp] user = \"{username}\" (or the default \"{realm}/{username}\")"
                    .into(),
            ));
        }
        if self.client.authorized_devices.is_some() {
            // Otherwise the sidecar would start and then fail every login of such a realm.
            realms.check_pinnable()?;
        }
        let tls = match &self.tls {
            Some(tls) => {
                // Checked now so a bad key fails at start, not at the first connection.
                read_private(&tls.key)?;
                Some(TlsSettings {
                    cert: tls.cert.clone(),
                    key: tls.key.clone(),
                })
            }
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
        let mut settings =
            Settings::new(Vec::new(), Zeroizing::default(), shared_secret, signing_key);
        settings.client = self.client.client_config(api_key)?;
        settings.client.pinned_backup_codes = self.pinned_backup_codes.unwrap_or(false);
        if let Some(listen) = self.listen {
            settings.listen = listen;
        }
        settings.realms = realms;
        settings.tls = tls;
        if let Some(secs) = self.call_timeout_secs {
            settings.call_timeout = Duration::from_secs(secs);
        }
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

/// Reads a secret file (trimmed). The file must belong to the user the sidecar runs as and be
/// readable by nobody else (mode 0600 or 0400): a secret others can read is refused, group
/// readers included. The checks are made on the opened file (no race with a rename), and a file
/// larger than 4 KiB is refused ([`pushauth_files`] holds the rule and its messages).
pub fn read_secret(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    let policy = ReadPolicy::secret(Owner::current()).max_bytes(MAX_SECRET_BYTES);
    let text = pushauth_files::read(path, &policy)?.into_text()?;
    let secret = Zeroizing::new(text.trim().to_owned());
    if secret.is_empty() {
        return Err(ConfigError::Invalid(format!("{} is empty", path.display())));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::Invalid(format!(
            "{} holds characters other than printable ASCII (a byte-order mark, a no-break space?); write the secret as plain text",
            path.display()
        )));
    }
    Ok(secret)
}

/// Reads a private key file (PEM, at most 64 KiB) under the secret rule of [`read_secret`]:
/// owned by the sidecar's user, no group or other bits. The bytes are zeroized on drop.
pub fn read_private(path: &Path) -> Result<pushauth_files::Contents, ConfigError> {
    Ok(pushauth_files::read(
        path,
        &ReadPolicy::secret(Owner::current()),
    )?)
}

/// Loads the sidecar's signing key (a base64url Ed25519 seed), creating it 0600 when missing.
pub fn load_or_create_key(path: &Path) -> Result<DeviceSigningKey, ConfigError> {
    match read_secret(path) {
        Ok(text) => {
            let seed =
                Zeroizing::new(b64::decode_array::<32>(&text, "signing key").map_err(|e| {
                    ConfigError::Invalid(format!(
                        "{}: not a base64url Ed25519 seed: {e}",
                        path.display()
                    ))
                })?);
            return Ok(DeviceSigningKey::from_seed(&seed));
        }
        Err(ConfigError::File(FileError::NotFound { .. })) => {}
        Err(e) => return Err(e),
    }
    let seed = Zeroizing::new(
        random::bytes::<32>().map_err(|e| ConfigError::Invalid(format!("no randomness: {e}")))?,
    );
    let text = Zeroizing::new(b64::encode(*seed));
    pushauth_files::write_new(path, text.as_bytes())?;
    Ok(DeviceSigningKey::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use std::fs;

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

    #[cfg(unix)]
    #[test]
    fn issue9_item2_group_readable_secret_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, "0123456789abcdef0123").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret(&path).unwrap_err();
        assert!(err.to_string().contains("group"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_secret(&path).unwrap().as_str(), "0123456789abcdef0123");
        // A byte-order mark or a no-break space is refused, naming the file.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "\u{feff}0123456789abcdef0123").unwrap();
        let err = read_secret(&path).unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
    }

    /// Issue 10 item 3: every secret the sidecar reads (shared secret, CIBA key, signing key,
    /// TLS key) goes through the one rule: 0640 is refused with the fix-it message, 0600 owned
    /// by the sidecar's user is read.
    #[cfg(unix)]
    #[test]
    fn issue10_item3_idp_sidecar_refuses_a_0640_secret_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "[realms.corp]\n[ciba]\nkey_file = \"{d}/ciba\"\nkeycloak_url = \"http://127.0.0.1:1\"\n\
             [tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/tls-key.pem\"\n",
            d = dir.path().display()
        );
        for (name, text) in [
            ("ciba", "ciba-key-0123456789"),
            ("tls-key.pem", "-----BEGIN PRIVATE KEY-----\n"),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(config_with(dir.path(), &extra).is_ok());
        for name in ["secret", "ciba", "tls-key.pem", "key"] {
            let path = dir.path().join(name);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            let err = match name {
                // config_with rewrites the api key and shared secret 0600: read it directly.
                "secret" => read_secret(&path).unwrap_err(),
                _ => config_with(dir.path(), &extra).unwrap_err(),
            };
            assert!(
                matches!(err, ConfigError::File(FileError::Readable { .. })),
                "{name}: {err}"
            );
            assert!(
                err.to_string()
                    .contains(&format!("chmod 600 {}", path.display())),
                "{name}: {err}"
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        // A missing secret is named as such.
        let err = read_secret(&dir.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
    }

    /// A complete config around `extra`, with every secret file present and private.
    fn config_with(dir: &Path, extra: &str) -> Result<Settings, ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        for (name, text) in [
            ("api-key", "rp-key-0123456789"),
            ("secret", "shim-secret-0123456789"),
        ] {
            let path = dir.join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = format!(
            "servers = [\"http://127.0.0.1:1\"]\napi_key_file = \"{d}/api-key\"\nshared_secret_file = \"{d}/secret\"\nsigning_key_file = \"{d}/key\"\n{extra}",
            d = dir.display()
        );
        FileConfig::parse(&text, Path::new("sidecar.toml"))?.resolve()
    }

    #[cfg(unix)]
    #[test]
    fn issue9_item2_admin_token_file_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = config_with(
            dir.path(),
            "admin_token_file = \"/etc/pushauthd/admin-token\"\n[realms.corp]\nuser = \"{username}\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("admin_token_file is no longer supported"),
            "{err}"
        );
        assert!(err.contains("--enroll"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn issue9_item1_realms_are_required_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let err = config_with(dir.path(), "").unwrap_err().to_string();
        assert!(err.contains("[realms."), "{err}");
        let settings = config_with(
            dir.path(),
            "[realms.corp]\nuser = \"{username}\"\nbootstrap = true\n[realms.public]\n",
        )
        .unwrap();
        assert_eq!(settings.realms.map("corp", "alice").unwrap().user, "alice");
        assert_eq!(
            settings.realms.map("public", "alice").unwrap().user,
            "public/alice"
        );
        assert!(!settings.realms.map("public", "alice").unwrap().bootstrap);
        let err = config_with(
            dir.path(),
            "[realms.corp]\nuser = \"{username}\"\nbogus = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn the_example_configs_parse() {
        for (name, text) in [
            (
                "sidecar.example.toml",
                include_str!("../sidecar.example.toml"),
            ),
            (
                "packaging/idp-sidecar/sidecar.toml",
                include_str!("../../packaging/idp-sidecar/sidecar.toml"),
            ),
        ] {
            let file = FileConfig::parse(text, Path::new(name)).unwrap();
            Realms::from_file(&file.realms).unwrap();
            assert!(file.admin_token_file.is_none(), "{name}");
        }
    }
}

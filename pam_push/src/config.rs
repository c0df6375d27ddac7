//! `/etc/pam_push.conf`: parsing, defaults, and the ownership and permission checks that make a
//! broken or tampered config fail closed (never the pam_duo surprise of letting everyone in).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pushauth_client::settings::ApiKeySource;
use pushauth_client::{ClientConfig, ClientSettings};
use pushauth_files::{FileError, Owner, ReadPolicy};
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::policy::{GroupRule, NoDevicePolicy, UnreachablePolicy, UserMap};
use crate::prompt::PromptMode;

/// Where the module looks without `conf=`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pam_push.conf";
/// The whole wait's hard deadline by default: below sshd's LoginGraceTime (120 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest deadline accepted; sshd's default LoginGraceTime is 120 s.
pub const MAX_TIMEOUT_SECS: u64 = 600;
/// A config file larger than this is refused (it is a few lines).
const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// The longest challenge lifetime requested: pushauthd's default `max_ttl_secs`. A longer
/// `timeout` still waits that long (prompt included); the challenge itself lives at most this.
pub const MAX_CHALLENGE_TTL_SECS: u64 = 300;

/// Why the config cannot be used. Every message names the file and says what to fix.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file does not exist: every login is refused until it does.
    #[error("{path} is missing; create it (see pam_push.conf(5) example) — refusing all logins")]
    Missing {
        /// The missing file or directory.
        path: PathBuf,
    },
    /// Opening or reading failed (permission denied, I/O error).
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Not a regular file ([`pushauth_files`] holds the message).
    #[error("{file}")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Owned by another user than root (`chown root`).
    #[error("{file}")]
    NotOwnedByRoot {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Group or others may write it (`chmod go-w`).
    #[error("{file}")]
    Writable {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Holds the API key and group or others have a permission bit on it (`chmod 600`).
    #[error("{file}")]
    SecretReadable {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Larger than 64 KiB.
    #[error("{file}")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Not TOML, not UTF-8, or an unknown key.
    #[error("{path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where and what (`line N (key): message`; never the line itself).
        message: String,
    },
    /// A value or combination of values is not allowed.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Not a directory (the pinned-key directory).
    #[error("{file}")]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Any other refusal of [`pushauth_files`] (not made by the module today: it follows
    /// symlinks and writes nothing).
    #[error(transparent)]
    File(FileError),
    /// The API key is not printable ASCII.
    #[error("the API key in {path} holds characters other than printable ASCII (0x21-0x7E): a byte-order mark, a no-break or zero-width space, a space? Write the key alone on one line")]
    BadApiKey {
        /// The file holding the key (the config file for an inline key).
        path: PathBuf,
    },
}

impl From<FileError> for ConfigError {
    /// Maps the shared file rule's refusals to this module's variants (their messages are the
    /// shared ones, except "missing", which says that all logins are refused).
    fn from(file: FileError) -> Self {
        let path = file.path().to_owned();
        match file {
            FileError::NotFound { path } => ConfigError::Missing { path },
            FileError::Read { path, source } => ConfigError::Unreadable { path, source },
            FileError::NotUtf8 { path } => ConfigError::Malformed {
                path,
                message: "not UTF-8 text".into(),
            },
            FileError::NotAFile { .. } => ConfigError::NotAFile { path, file },
            FileError::NotADirectory { .. } => ConfigError::NotADirectory { path, file },
            FileError::WrongOwner { .. } => ConfigError::NotOwnedByRoot { path, file },
            FileError::Writable { .. } => ConfigError::Writable { path, file },
            FileError::Readable { .. } => ConfigError::SecretReadable { path, file },
            FileError::TooLarge { .. } => ConfigError::TooLarge { path, file },
            other => ConfigError::File(other),
        }
    }
}

/// The module's settings after parsing and checking. The relying-party client settings
/// (servers, API key, CA file, proxy, connect timeout, `allow_insecure_http`, pinned-key
/// directory) are the shared [`pushauth_client::ClientSettings`], checked by its one validation
/// and held as the [`ClientConfig`] the client is built from; `Config` derefs to it, so
/// `config.servers`, `config.api_key`, `config.connect_timeout`… read as before. `Debug` never
/// shows the API key.
pub struct Config {
    /// The client configuration: servers, API key, TLS trust, proxy, connect timeout, pins.
    pub client: ClientConfig,
    /// Hard deadline for the whole authentication, prompt included.
    pub timeout: Duration,
    /// Number matching: the server makes a code the prompt shows and the person types.
    pub number_matching: bool,
    /// When the prompt shows the code and waits for Enter.
    pub prompt: PromptMode,
    /// Group patterns deciding who must use push; empty means everyone.
    pub groups: Vec<GroupRule>,
    /// What happens to a user the server does not know or who has no device.
    pub no_device: NoDevicePolicy,
    /// What happens when no server can be reached.
    pub server_unreachable: UnreachablePolicy,
    /// Pinned device keys, `<dir>/<user>` (the same directory as the client's; the module reads
    /// each user's file itself with the owner and mode checks of [`read_pinned_file`]).
    pub authorized_devices: Option<PathBuf>,
    /// How the PAM user name becomes the pushauth user name (and the name of the local account
    /// and of the pinned-key file).
    pub user_map: UserMap,
    /// Who must own the files read at login time (pinned-key files): root in the module.
    pub owner: Ownership,
    /// `backup_codes` (issue 12, default true): a backup code typed at the prompt instead of
    /// Enter is checked by pushauthd and lets in once.
    pub backup_codes: bool,
    /// `pinned_backup_codes` (default false): take backup codes also for users with a pinned-key
    /// file. Off by default: pins exist so that only a device's own signature lets in, and a
    /// backup code is the server's word alone.
    pub pinned_backup_codes: bool,
    /// `pinned_offline_codes` (default false): take offline codes also for users with a
    /// pinned-key file. Off by default for the same reason: the cached values are hashes the
    /// server sent, so a broken-into server could cache codes of its own and then stop answering.
    pub pinned_offline_codes: bool,
    /// The module's state directory (`state_dir`, default [`crate::state::DEFAULT_STATE_DIR`]):
    /// created 0700 on first use, see [`crate::state`].
    pub state_dir: PathBuf,
    /// Issue 12: `grace_secs`, the grace window for repeated logins in seconds (0, the
    /// default: off; at most [`pushauth_proto::grace::MAX_GRACE_SECS`]), see [`crate::grace`].
    pub grace_secs: u64,
    /// Issue 12: `sudo_grace`: sudo services take grace too (default false).
    pub sudo_grace: bool,
    /// Issue 12: `grace_without_key`: sshd logins whose SSH key is unknown (password only, or
    /// no `ExposeAuthInfo`) take grace too (default false: they push every time).
    pub grace_without_key: bool,
}

impl std::ops::Deref for Config {
    type Target = ClientConfig;

    /// The client settings, so that they read as the config's own keys.
    fn deref(&self) -> &ClientConfig {
        &self.client
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("client", &self.client)
            .field("timeout", &self.timeout)
            .field("number_matching", &self.number_matching)
            .field("prompt", &self.prompt)
            .field("groups", &self.groups)
            .field("no_device", &self.no_device)
            .field("server_unreachable", &self.server_unreachable)
            .field("authorized_devices", &self.authorized_devices)
            .field("user_map", &self.user_map)
            .field("backup_codes", &self.backup_codes)
            .field("pinned_backup_codes", &self.pinned_backup_codes)
            .field("pinned_offline_codes", &self.pinned_offline_codes)
            .field("state_dir", &self.state_dir)
            .field("grace_secs", &self.grace_secs)
            .field("sudo_grace", &self.sudo_grace)
            .field("grace_without_key", &self.grace_without_key)
            .finish_non_exhaustive()
    }
}

/// The file as written: the module's own keys and, at the same level, the shared client keys.
/// Unknown keys are refused so that a typo does not silently drop a setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(flatten)]
    client: ClientSettings,
    timeout: Option<u64>,
    number_matching: Option<bool>,
    prompt: Option<String>,
    groups: Option<Vec<String>>,
    no_device: Option<String>,
    server_unreachable: Option<String>,
    user_map: Option<String>,
    backup_codes: Option<bool>,
    pinned_backup_codes: Option<bool>,
    pinned_offline_codes: Option<bool>,
    state_dir: Option<PathBuf>,
    grace_secs: Option<u64>,
    sudo_grace: Option<bool>,
    grace_without_key: Option<bool>,
}

/// Refuses a hidden character ([`pushauth_proto::text::is_hidden`]: controls, bidi and
/// zero-width characters…) or a space other than U+0020 in the module's own text settings,
/// naming the setting: a group pattern with one would never match. (The URL settings are checked
/// by [`ClientSettings::validate`].)
fn refuse_hidden(raw: &RawConfig) -> Result<(), String> {
    let single = [
        ("prompt", &raw.prompt),
        ("no_device", &raw.no_device),
        ("server_unreachable", &raw.server_unreachable),
    ];
    let values = single
        .iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (*name, v)))
        .chain(raw.groups.iter().flatten().map(|v| ("groups", v.as_str())));
    for (name, value) in values {
        let bad = value
            .chars()
            .find(|&c| pushauth_proto::text::is_hidden(c) || (c.is_whitespace() && c != ' '));
        if let Some(c) = bad {
            return Err(format!(
                "{name} holds the character U+{:04X} (a control, bidi, zero-width or space character that does not show as itself); retype the value",
                u32::from(c)
            ));
        }
    }
    Ok(())
}

/// Who must own the files: root in the module; the test's own uid in unit tests.
#[derive(Debug, Clone, Copy)]
pub struct Ownership {
    /// The required owner's uid.
    pub uid: u32,
}

impl Ownership {
    /// Root: what the module requires.
    pub const ROOT: Ownership = Ownership { uid: 0 };

    /// The shared file rule's owner: this uid, named `root` in messages (it is root in the
    /// module; only unit tests use another uid).
    fn owner(self) -> Owner {
        Owner::named(self.uid, "root")
    }
}

/// Checks a directory that decides who is protected how (the pinned-key directory): it must
/// exist, be a directory, be owned by `owner` and not be writable by group or others, or anyone
/// who can write it could remove or replace a user's pinned keys.
pub fn check_directory(path: &Path, owner: Ownership) -> Result<(), ConfigError> {
    Ok(pushauth_files::check_dir(path, &owner.owner())?)
}

/// Reads a user's pinned-key file `<dir>/<user>` (see [`pushauth_client::pinned::pinned_path`])
/// with the config's owner and mode checks:
/// `Ok(None)` when the user has no file (no pinning), the text otherwise. The directory is
/// checked too (see [`check_directory`]).
pub fn read_pinned_file(
    dir: &Path,
    user: &str,
    owner: Ownership,
) -> Result<Option<Zeroizing<String>>, ConfigError> {
    check_directory(dir, owner)?;
    // One rule for user name -> file (a `/` is a subdirectory, checked like `dir`).
    let (path, subdirs) = pushauth_client::pinned::pinned_path(dir, user).map_err(|message| {
        ConfigError::Invalid {
            path: dir.to_owned(),
            message,
        }
    })?;
    for sub in &subdirs {
        match pushauth_files::check_dir(sub, &owner.owner()) {
            Ok(()) => {}
            Err(FileError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    match read_checked(&path, owner, false) {
        Ok((text, _)) => Ok(Some(text)),
        Err(ConfigError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a file that must be owned by `owner` and not writable by group or others; with
/// `secret`, with no permission bit for them at all. At most 64 KiB. The shared rule of
/// [`pushauth_files`]: it checks the open file (fstat), not the path, so the file cannot be
/// swapped between check and read.
fn read_checked(
    path: &Path,
    owner: Ownership,
    secret: bool,
) -> Result<(Zeroizing<String>, u32), ConfigError> {
    let policy = match secret {
        true => ReadPolicy::secret(owner.owner()),
        false => ReadPolicy::config(owner.owner()),
    }
    .max_bytes(MAX_CONFIG_BYTES);
    let contents = pushauth_files::read(path, &policy)?;
    let mode = contents.mode;
    Ok((contents.into_text()?, mode))
}

impl Config {
    /// Loads and checks `path` (and the API key file it names).
    pub fn load(path: &Path, owner: Ownership) -> Result<Config, ConfigError> {
        let (text, mode) = read_checked(path, owner, false)?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Malformed {
            path: path.to_owned(),
            message: pushauth_files::toml_error(&text, &e),
        })?;
        if raw.client.api_key.is_some() {
            pushauth_files::require_private(path, mode)?;
        }
        Self::from_raw(path, raw, owner)
    }

    /// Parses config text without reading a config file (tests); the files it names (API key,
    /// `ca_file`, `authorized_devices`) are still read and checked.
    pub fn parse(path: &Path, text: &str, owner: Ownership) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Malformed {
            path: path.to_owned(),
            message: pushauth_files::toml_error(text, &e),
        })?;
        Self::from_raw(path, raw, owner)
    }

    fn from_raw(path: &Path, mut raw: RawConfig, owner: Ownership) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        refuse_hidden(&raw).map_err(invalid)?;
        // One validation for the client keys, shared with the IdP sidecar.
        raw.client.validate().map_err(|e| invalid(e.to_string()))?;
        let api_key = match raw
            .client
            .api_key_source()
            .map_err(|e| invalid(e.to_string()))?
        {
            ApiKeySource::Inline(inline) => {
                let key = Zeroizing::new(inline.trim_end_matches(['\r', '\n']).to_owned());
                if !key.is_empty() && !pushauth_client::api_key_is_printable_ascii(&key) {
                    return Err(ConfigError::BadApiKey {
                        path: path.to_owned(),
                    });
                }
                key
            }
            ApiKeySource::File(file) => {
                let file = file.to_owned();
                let (text, _) = read_checked(&file, owner, true)?;
                // Only the final newline(s) an editor or `echo` adds are dropped: anything else
                // that is not printable ASCII could not be sent, and must not count as "server
                // unreachable" later (issue 9 item 17).
                let key = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
                if !key.is_empty() && !pushauth_client::api_key_is_printable_ascii(&key) {
                    return Err(ConfigError::BadApiKey { path: file });
                }
                key
            }
        };
        if api_key.is_empty() {
            return Err(invalid("the API key is empty".into()));
        }
        let timeout = match raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => Duration::from_secs(secs),
            Some(secs) => {
                return Err(invalid(format!(
                    "timeout = {secs} must be 1 to {MAX_TIMEOUT_SECS} seconds"
                )))
            }
        };
        let prompt = match raw.prompt.as_deref() {
            None => PromptMode::Auto,
            Some(text) => text.parse().map_err(invalid)?,
        };
        let groups = raw
            .groups
            .take()
            .unwrap_or_default()
            .iter()
            .map(|p| GroupRule::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let no_device = match raw.no_device.as_deref() {
            None => NoDevicePolicy::Deny,
            Some(text) => text.parse().map_err(invalid)?,
        };
        let server_unreachable = match raw.server_unreachable.as_deref() {
            None => UnreachablePolicy::Secure,
            Some(text) => text.parse().map_err(invalid)?,
        };
        if let Some(dir) = &raw.client.authorized_devices {
            // A missing pin directory must not mean "no pinning"; one that others can write
            // is no pinning at all (issue 9 item 9).
            check_directory(dir, owner).map_err(|e| invalid(format!("authorized_devices: {e}")))?;
        }
        if let Some(ca_file) = &raw.client.ca_file {
            // Whoever can write the CA file can make the module trust their own server.
            // Opened and checked, not read: the client reads the bundle (of any size) itself.
            let policy = ReadPolicy::config(owner.owner()).max_bytes(u64::MAX);
            pushauth_files::open(ca_file, &policy)?;
        }
        let user_map = match raw.user_map.as_deref() {
            None => UserMap::AsIs,
            Some(text) => text.parse().map_err(invalid)?,
        };
        let state_dir = raw
            .state_dir
            .take()
            .unwrap_or_else(|| PathBuf::from(crate::state::DEFAULT_STATE_DIR));
        if !state_dir.is_absolute() {
            return Err(invalid(format!(
                "state_dir = {:?} must be an absolute path",
                state_dir.display().to_string()
            )));
        }
        let grace_secs = raw.grace_secs.unwrap_or(0);
        if grace_secs > pushauth_proto::grace::MAX_GRACE_SECS {
            return Err(invalid(format!(
                "grace_secs = {grace_secs} must be 0 (off) to {} seconds",
                pushauth_proto::grace::MAX_GRACE_SECS
            )));
        }
        let client = raw
            .client
            .client_config(api_key)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Config {
            authorized_devices: client.authorized_devices_dir.clone(),
            client,
            timeout,
            number_matching: raw.number_matching.unwrap_or(true),
            prompt,
            groups,
            no_device,
            server_unreachable,
            user_map,
            owner,
            backup_codes: raw.backup_codes.unwrap_or(true),
            pinned_backup_codes: raw.pinned_backup_codes.unwrap_or(false),
            pinned_offline_codes: raw.pinned_offline_codes.unwrap_or(false),
            state_dir,
            grace_secs,
            sudo_grace: raw.sudo_grace.unwrap_or(false),
            grace_without_key: raw.grace_without_key.unwrap_or(false),
        })
    }

    /// The client configuration (the API key is copied into another zeroizing buffer), with
    /// this module's `pinned_backup_codes`.
    pub fn client_config(&self) -> ClientConfig {
        let mut client = self.client.clone();
        client.pinned_backup_codes = self.pinned_backup_codes;
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::UserMap;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn me() -> Ownership {
        Ownership {
            uid: pushauth_testkit::euid(),
        }
    }

    use pushauth_testkit::write_file as write;

    fn with_key(dir: &Path, extra: &str) -> String {
        let key = write(dir, "api-key", "secret-key\n", 0o600);
        format!(
            "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n{extra}",
            key.display()
        )
    }

    #[test]
    fn defaults_and_full_config() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write(dir.path(), "c", &with_key(dir.path(), ""), 0o644);
        let cfg = Config::load(&conf, me()).unwrap();
        assert_eq!(cfg.servers, vec!["http://127.0.0.1:1"]);
        assert_eq!(cfg.api_key.as_str(), "secret-key");
        assert_eq!(cfg.timeout, Duration::from_secs(60));
        assert!(cfg.number_matching);
        assert_eq!(cfg.prompt, PromptMode::Auto);
        assert!(cfg.groups.is_empty());
        assert_eq!(cfg.no_device, NoDevicePolicy::Deny);
        assert_eq!(cfg.server_unreachable, UnreachablePolicy::Secure);
        assert_eq!(cfg.state_dir, Path::new("/var/lib/pam_push"));
        let conf = write(
            dir.path(),
            "rel",
            &with_key(dir.path(), "state_dir = \"var/lib\"\n"),
            0o644,
        );
        let err = Config::load(&conf, me()).unwrap_err().to_string();
        assert!(
            err.contains("state_dir") && err.contains("absolute"),
            "{err}"
        );
        let conf = write(
            dir.path(),
            "abs",
            &with_key(dir.path(), "state_dir = \"/srv/pp\"\n"),
            0o644,
        );
        assert_eq!(
            Config::load(&conf, me()).unwrap().state_dir,
            Path::new("/srv/pp")
        );

        let pins = dir.path().join("pins");
        fs::create_dir(&pins).unwrap();
        fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
        let ca = write(dir.path(), "ca.pem", "pem", 0o644);
        let text = format!(
            "servers = [\"https://a.example\", \"https://b.example\"]\napi_key = \"inline\"\n\
             ca_file = \"{}\"\nproxy = \"http://proxy:3128\"\ntimeout = 30\n\
             connect_timeout = 2\nnumber_matching = false\nprompt = \"always\"\n\
             groups = [\"admins\", \"!contractors\"]\nno_device = \"ignore\"\n\
             server_unreachable = \"safe\"\nauthorized_devices = \"{}\"\n\
             user_map = \"strip_domain\"\nallow_insecure_http = true\n",
            ca.display(),
            pins.display()
        );
        let conf = write(dir.path(), "full", &text, 0o600);
        let cfg = Config::load(&conf, me()).unwrap();
        assert_eq!(cfg.servers.len(), 2);
        assert_eq!(cfg.api_key.as_str(), "inline");
        assert_eq!(cfg.timeout, Duration::from_secs(30));
        assert_eq!(cfg.connect_timeout, Duration::from_secs(2));
        assert!(!cfg.number_matching);
        assert_eq!(cfg.prompt, PromptMode::Always);
        assert_eq!(cfg.groups.len(), 2);
        assert_eq!(cfg.no_device, NoDevicePolicy::Ignore);
        assert_eq!(cfg.server_unreachable, UnreachablePolicy::Safe);
        assert_eq!(cfg.authorized_devices.as_deref(), Some(pins.as_path()));
        assert_eq!(cfg.user_map, UserMap::StripDomain);
        assert!(cfg.allow_insecure_http);
        let client = cfg.client_config();
        assert!(client.allow_insecure_http);
        assert_eq!(client.proxy.as_deref(), Some("http://proxy:3128"));
        assert!(!format!("{client:?}").contains("inline"));
    }

    #[test]
    fn missing_and_malformed_configs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Config::load(&dir.path().join("nope"), me()).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }));
        assert!(err.to_string().contains("missing"), "{err}");

        let conf = write(dir.path(), "bad", "server = [", 0o600);
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("is malformed"), "{err}");

        // A typo is an error, not an ignored setting.
        let conf = write(
            dir.path(),
            "typo",
            &with_key(dir.path(), "server_unreachabel = \"safe\"\n"),
            0o600,
        );
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(err.to_string().contains("server_unreachabel"), "{err}");

        for (extra, needle) in [
            ("timeout = 0\n", "timeout"),
            ("prompt = \"sometimes\"\n", "prompt"),
            ("server_unreachable = \"open\"\n", "server_unreachable"),
            ("no_device = \"maybe\"\n", "no_device"),
            ("groups = [\"\"]\n", "group"),
            (
                "authorized_devices = \"/nonexistent/pins\"\n",
                "authorized_devices",
            ),
        ] {
            let conf = write(dir.path(), "x", &with_key(dir.path(), extra), 0o600);
            let err = Config::load(&conf, me()).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{extra}: {err}");
            assert!(err.to_string().contains(needle), "{extra}: {err}");
        }
        let conf = write(dir.path(), "nokey", "server = \"https://x\"\n", 0o600);
        assert!(Config::load(&conf, me())
            .unwrap_err()
            .to_string()
            .contains("api_key_file"));
        let conf = write(dir.path(), "noserver", "api_key = \"k\"\n", 0o600);
        assert!(Config::load(&conf, me())
            .unwrap_err()
            .to_string()
            .contains("no server"));
        let conf = write(
            dir.path(),
            "ftp",
            "server = \"ftp://x\"\napi_key = \"k\"\n",
            0o600,
        );
        assert!(Config::load(&conf, me())
            .unwrap_err()
            .to_string()
            .contains("https://"));
    }

    #[test]
    fn permissions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let text = with_key(dir.path(), "");
        for mode in [0o664, 0o646, 0o666] {
            let conf = write(dir.path(), "w", &text, mode);
            let err = Config::load(&conf, me()).unwrap_err();
            assert!(matches!(err, ConfigError::Writable { .. }), "{mode:o}");
            assert!(err.to_string().contains("chmod go-w"), "{err}");
        }
        // Owned by someone else.
        let conf = write(dir.path(), "o", &text, 0o600);
        let other = Ownership {
            uid: me().uid.wrapping_add(4242),
        };
        let err = Config::load(&conf, other).unwrap_err();
        assert!(matches!(err, ConfigError::NotOwnedByRoot { .. }), "{err}");
        assert!(err.to_string().contains("not root"), "{err}");

        // Inline key: the config itself must not be readable by others.
        let inline = "server = \"https://x\"\napi_key = \"k\"\n";
        let conf = write(dir.path(), "i", inline, 0o644);
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(matches!(err, ConfigError::SecretReadable { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        let conf = write(dir.path(), "i", inline, 0o600);
        assert!(Config::load(&conf, me()).is_ok());

        // The API key file: not readable by group or others.
        let conf = write(dir.path(), "k", &text, 0o644);
        fs::set_permissions(
            dir.path().join("api-key"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(
            matches!(&err, ConfigError::SecretReadable { path, .. } if path.ends_with("api-key")),
            "{err}"
        );
        fs::remove_file(dir.path().join("api-key")).unwrap();
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err}");

        // A directory is not a config.
        let sub = dir.path().join("d");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            Config::load(&sub, me()).unwrap_err(),
            ConfigError::NotAFile { .. }
        ));
    }

    /// Every setting the shipped example documents (commented out) is one the parser takes.
    #[test]
    fn packaged_example_documents_real_settings() {
        let example = fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/pam_push.conf"
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "api-key", "k\n", 0o600);
        let pins = dir.path().join("pins");
        fs::create_dir(&pins).unwrap();
        fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
        let ca = write(dir.path(), "ca.pem", "pem", 0o644);
        let mut text = String::new();
        let mut settings = 0;
        for line in example.lines() {
            let setting = line.strip_prefix("# ").filter(|l| {
                l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
            });
            let line = setting.unwrap_or(line);
            settings += usize::from(setting.is_some());
            // The alternatives to settings already made.
            if line.starts_with("servers = ") || line.starts_with("api_key = ") {
                continue;
            }
            text.push_str(
                &line
                    .replace("/etc/pushauth/api-key", &key.display().to_string())
                    .replace(
                        "/etc/pushauth/authorized_devices",
                        &pins.display().to_string(),
                    )
                    .replace("/etc/pushauth/ca.pem", &ca.display().to_string()),
            );
            text.push('\n');
        }
        assert!(settings >= 12, "{settings} commented settings");
        let cfg = Config::parse(&dir.path().join("example"), &text, me()).unwrap();
        assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
        assert_eq!(cfg.groups.len(), 3);
        assert_eq!(cfg.no_device, NoDevicePolicy::Deny);
        assert_eq!(cfg.server_unreachable, UnreachablePolicy::Secure);
        assert_eq!(cfg.authorized_devices.as_deref(), Some(pins.as_path()));
    }

    /// An API key file with a byte-order mark, a no-break space or a zero-width space is a
    /// config error naming the file, not a request that fails later and counts as "unreachable".
    #[test]
    fn issue9_item17_api_key_must_be_printable_ascii() {
        let dir = tempfile::tempdir().unwrap();
        for key in [
            "\u{feff}rp1.secret\n",
            "rp1.secret\u{a0}\n",
            "rp1.\u{200b}secret\n",
            "rp1.secret with space\n",
            " rp1.secret\n",
        ] {
            let key_file = write(dir.path(), "api-key", key, 0o600);
            let text = format!(
                "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n",
                key_file.display()
            );
            let conf = write(dir.path(), "c", &text, 0o600);
            let err = Config::load(&conf, me()).unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadApiKey { path } if path == &key_file),
                "{key:?}: {err}"
            );
            assert!(err.to_string().contains("api-key"), "{err}");
            assert!(err.to_string().contains("printable ASCII"), "{err}");
        }
        // The final newline (LF or CRLF) is not part of the key.
        for key in ["rp1.secret\n", "rp1.secret\r\n", "rp1.secret"] {
            let key_file = write(dir.path(), "api-key", key, 0o600);
            let text = format!(
                "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n",
                key_file.display()
            );
            let conf = write(dir.path(), "c", &text, 0o600);
            assert_eq!(
                Config::load(&conf, me()).unwrap().api_key.as_str(),
                "rp1.secret"
            );
        }
        let inline = write(
            dir.path(),
            "i",
            "server = \"http://127.0.0.1:1\"\napi_key = \"\u{feff}k\"\n",
            0o600,
        );
        assert!(matches!(
            Config::load(&inline, me()).unwrap_err(),
            ConfigError::BadApiKey { .. }
        ));
    }

    /// `ca_file`, the pinned-key directory and each pinned-key file get the config's owner and
    /// mode checks: whoever can write them decides which server or which device is trusted.
    #[test]
    fn issue9_item9_ca_file_and_pinned_keys_are_checked_like_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let other = Ownership {
            uid: me().uid.wrapping_add(4242),
        };
        let ca = write(dir.path(), "ca.pem", "pem", 0o644);
        let pins = dir.path().join("pins");
        fs::create_dir(&pins).unwrap();
        fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
        let base = |extra: &str| with_key(dir.path(), extra);
        let load = |extra: &str, owner: Ownership| {
            let conf = write(dir.path(), "c", &base(extra), 0o600);
            Config::load(&conf, owner)
        };
        let ca_line = format!("ca_file = \"{}\"\n", ca.display());
        let pins_line = format!("authorized_devices = \"{}\"\n", pins.display());
        assert!(load(&ca_line, me()).is_ok());
        assert!(load(&pins_line, me()).is_ok());

        for mode in [0o664, 0o646] {
            fs::set_permissions(&ca, fs::Permissions::from_mode(mode)).unwrap();
            let err = load(&ca_line, me()).unwrap_err();
            assert!(
                matches!(err, ConfigError::Writable { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("ca.pem"), "{err}");
        }
        fs::set_permissions(&ca, fs::Permissions::from_mode(0o644)).unwrap();
        // Not owned by root (the config file itself is checked first against `owner`, so
        // check the CA file alone through parse with that owner).
        let err = Config::parse(
            &dir.path().join("c"),
            &format!("server = \"https://x\"\napi_key = \"k\"\n{ca_line}"),
            other,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::NotOwnedByRoot { .. }), "{err}");
        let err = load("ca_file = \"/nonexistent/ca.pem\"\n", me()).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err}");

        for mode in [0o775, 0o757, 0o777] {
            fs::set_permissions(&pins, fs::Permissions::from_mode(mode)).unwrap();
            let err = load(&pins_line, me()).unwrap_err();
            assert!(err.to_string().contains("chmod go-w"), "{mode:o}: {err}");
        }
        fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
        let err = Config::parse(
            &dir.path().join("c"),
            &format!("server = \"https://x\"\napi_key = \"k\"\n{pins_line}"),
            other,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not root"), "{err}");

        // Each pinned-key file: owner and mode, and no name that leaves the directory.
        assert!(read_pinned_file(&pins, "alice", me()).unwrap().is_none());
        let alice = write(&pins, "alice", "# none\n", 0o644);
        assert!(read_pinned_file(&pins, "alice", me()).unwrap().is_some());
        fs::set_permissions(&alice, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            read_pinned_file(&pins, "alice", me()),
            Err(ConfigError::Writable { .. })
        ));
        fs::set_permissions(&alice, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_pinned_file(&pins, "alice", other),
            Err(ConfigError::NotOwnedByRoot { .. })
        ));
        for user in ["../alice", ".hidden", "a//b", "a/../b", "/a", ""] {
            assert!(read_pinned_file(&pins, user, me()).is_err(), "{user}");
        }
        // A `/` is a subdirectory (issue 10: one rule with the client), checked like the
        // directory: missing means not pinned; one others may write is refused.
        assert!(read_pinned_file(&pins, "kc/alice", me()).unwrap().is_none());
        let realm = pins.join("kc");
        fs::create_dir(&realm).unwrap();
        fs::set_permissions(&realm, fs::Permissions::from_mode(0o755)).unwrap();
        write(&realm, "alice", "# none\n", 0o644);
        assert!(read_pinned_file(&pins, "kc/alice", me()).unwrap().is_some());
        fs::set_permissions(&realm, fs::Permissions::from_mode(0o775)).unwrap();
        assert!(read_pinned_file(&pins, "kc/alice", me()).is_err());
    }

    /// Issue 10 item 3: the API key file gets the one secret rule of `pushauth_files`: any
    /// permission bit for group or others is refused with the shared fix-it message (0610 and
    /// 0620 used to pass or get another message), and the config, CA file and pinned keys keep
    /// the "owned by root, not writable by others" rule.
    #[test]
    fn issue10_item3_pam_push_refuses_a_group_readable_api_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = with_key(dir.path(), "");
        let conf = write(dir.path(), "c", &text, 0o644);
        let key = dir.path().join("api-key");
        for mode in [0o640, 0o604, 0o610, 0o620, 0o660, 0o400 | 0o040] {
            fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
            let err = Config::load(&conf, me()).unwrap_err();
            assert!(
                matches!(&err, ConfigError::SecretReadable { path, .. } if path == &key),
                "{mode:o}: {err}"
            );
            assert!(
                err.to_string()
                    .contains(&format!("chmod 600 {}", key.display())),
                "{mode:o}: {err}"
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                Config::load(&conf, me()).unwrap().api_key.as_str(),
                "secret-key"
            );
        }
        // The owner message is the shared one, naming root.
        let other = Ownership {
            uid: me().uid.wrapping_add(4242),
        };
        let err = Config::load(&conf, other).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("not root; chown root {}", conf.display())),
            "{err}"
        );
        // A config larger than 64 KiB is refused, naming the cap.
        let big = write(dir.path(), "big", &"#".repeat(70_000), 0o600);
        let err = Config::load(&big, me()).unwrap_err();
        assert!(matches!(err, ConfigError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
    }

    /// The client keys go through `pushauth_client::ClientSettings::validate`, the one
    /// validation the IdP sidecar uses too: plain HTTP to another machine and a proxy that is
    /// not `http://` are refused when the config is read, naming the key.
    #[test]
    fn issue10_item2_client_keys_use_the_shared_validation() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |text: &str| Config::parse(&dir.path().join("c"), text, me());
        let key = "api_key = \"k\"\n";
        for (text, needle) in [
            ("server = \"http://push.example\"\n", "allow_insecure_http"),
            (
                "server = \"https://a\"\nproxy = \"socks5://p:1\"\n",
                "proxy",
            ),
            (
                "server = \"https://a\"\nconnect_timeout = 0\n",
                "connect_timeout",
            ),
            ("server = \"https://a?x\"\n", "https://"),
        ] {
            let err = parse(&format!("{text}{key}")).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{text}: {err}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
        let cfg = parse(&format!(
            "server = \"http://push.example\"\nallow_insecure_http = true\n{key}"
        ))
        .unwrap();
        assert!(cfg.client_config().allow_insecure_http);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::parse(
            &dir.path().join("c"),
            "server = \"https://x\"\napi_key = \"super-secret\"\n",
            me(),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("super-secret"));
    }
}

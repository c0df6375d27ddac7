//! `/etc/pam_push.conf`: parsing, defaults, and the ownership and permission checks that make a
//! broken or tampered config fail closed (never the pam_duo surprise of letting everyone in).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pushauth_client::settings::ApiKeySource;
use pushauth_client::{ClientConfig, ClientSettings};
use pushauth_files::{FileError, Owner, ReadPolicy};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::approval::rules::ApprovalPolicy;
use crate::policy::{GroupRule, NoDevicePolicy, UnreachablePolicy, UserMap};
use crate::prompt::PromptMode;

mod error;
pub use error::ConfigError;

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
    /// Issue 14: `approval`, `approvers` and `[[approval_rules]]`: who must approve, the
    /// person, someone else, or both ([`crate::approval::rules`]).
    pub approval: ApprovalPolicy,
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
            .field("approval", &self.approval)
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
    approval: Option<String>,
    approvers: Option<Vec<String>>,
    approval_rules: Option<Vec<crate::approval::rules::RawRule>>,
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
        let approval = ApprovalPolicy::parse(
            raw.approval.as_deref(),
            raw.approvers.take(),
            raw.approval_rules.take(),
        )
        .map_err(invalid)?;
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
            approval,
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
mod tests;

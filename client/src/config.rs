//! What a relying party configures: servers, API key, TLS trust, proxy, pinned device keys.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

/// Default time allowed to open a TCP (and TLS) connection to one server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Client configuration. `Debug` never shows the API key.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URLs (`https://push.example.com`), tried in order: the next one is used only when a
    /// server cannot be reached.
    pub servers: Vec<String>,
    /// The relying party's API key, sent as `Authorization: Bearer`.
    pub api_key: Zeroizing<String>,
    /// Extra PEM CA bundle (a private CA), trusted in addition to the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// HTTP proxy URL (`http://proxy:3128`).
    pub proxy: Option<String>,
    /// Time allowed to one server (connect, TLS and its answer) before the next one is tried,
    /// when there is a next one; each server also gets at most an equal share of what is left
    /// of the caller's deadline, so a hung server cannot eat the budget of the ones after it.
    pub connect_timeout: Duration,
    /// Allow `http://` servers that are not on this machine (loopback: `localhost`,
    /// `127.0.0.0/8`, `::1`). Off by default: over plain HTTP a man in the middle decides every
    /// answer that pinned device keys do not cover.
    pub allow_insecure_http: bool,
    /// Directory of pinned device keys, one file per user (`<dir>/<user>`), in the style of
    /// sshd's `authorized_keys`.
    pub authorized_devices_dir: Option<PathBuf>,
    /// Take backup codes (issue 12) for users with a pinned-key file. Off by default: pins
    /// exist so that only a pinned device's own signature lets such a user in, even against a
    /// broken-into server, and a backup code is the server's word alone. pam_push sets it from
    /// its `pinned_backup_codes`, the sidecar from its own key of that name.
    pub pinned_backup_codes: bool,
}

impl ClientConfig {
    /// A configuration with the defaults: no extra CA, no proxy, 5 s connect timeout, no pinning.
    pub fn new(servers: Vec<String>, api_key: impl Into<String>) -> Self {
        ClientConfig {
            servers,
            api_key: Zeroizing::new(api_key.into()),
            ca_file: None,
            proxy: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            authorized_devices_dir: None,
            allow_insecure_http: false,
            pinned_backup_codes: false,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("servers", &self.servers)
            .field("api_key", &"<redacted>")
            .field("ca_file", &self.ca_file)
            // A proxy URL may carry credentials.
            .field(
                "proxy",
                &self.proxy.as_deref().map(crate::settings::redact_proxy),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("authorized_devices_dir", &self.authorized_devices_dir)
            .field("pinned_backup_codes", &self.pinned_backup_codes)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

//! [`Settings`]: everything the running sidecar needs, resolved from the config file by
//! [`crate::config::FileConfig::resolve`] (or built in code by tests and benchmarks). The
//! pushauthd client part is the shared [`ClientConfig`] (servers, API key, CA file, proxy,
//! connect timeout, pinned device keys), the same type `pam_push` builds its client from.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::time::Duration;

use pushauth_client::ClientConfig;
use pushauth_proto::DeviceSigningKey;
use zeroize::Zeroizing;

use crate::config_error::ConfigError;
use crate::realms::Realms;

/// `[ciba]` resolved: Keycloak's HTTP authentication channel.
pub struct CibaSettings {
    /// The secret in the channel URL Keycloak posts to (`/ciba/<secret>`), 16 characters or more.
    pub key: Zeroizing<String>,
    /// Keycloak's base URL, without a trailing `/`; callbacks go only to realms under it.
    pub keycloak_url: String,
    /// Challenge lifetime for CIBA requests.
    pub ttl: Duration,
}

/// `[tls]` resolved: where the listener's certificate chain and key are.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key; a secret file only the sidecar's user can read.
    pub key: PathBuf,
}

/// Everything the running sidecar needs. Derefs to its [`ClientConfig`], so `settings.servers`
/// and `settings.api_key` read (and are set) as the sidecar's own settings.
pub struct Settings {
    /// Where the shim API listens.
    pub listen: SocketAddr,
    /// How the sidecar reaches pushauthd: servers, API key, TLS trust, proxy, connect timeout,
    /// pinned device keys (`authorized_devices_dir`).
    pub client: ClientConfig,
    /// How IdP realms map to pushauthd users; a realm not here is refused.
    pub realms: Realms,
    /// HTTPS for the shim API; plain HTTP when `None`.
    pub tls: Option<TlsSettings>,
    /// Hard deadline for one call to pushauthd made for a shim request (not a login's wait,
    /// which has its own deadline: the challenge lifetime plus a few seconds).
    pub call_timeout: Duration,
    /// The secret IdP shims send as `Authorization: Bearer`.
    pub shared_secret: Zeroizing<String>,
    /// The Ed25519 key that signs result tokens.
    pub signing_key: DeviceSigningKey,
    /// Challenge lifetime for a login.
    pub login_ttl: Duration,
    /// How long a result token stays valid.
    pub result_ttl: Duration,
    /// Bound on logins held in memory (pending or recently ended).
    pub max_pending: usize,
    /// The CIBA channel, when configured.
    pub ciba: Option<CibaSettings>,
}

impl Deref for Settings {
    type Target = ClientConfig;

    fn deref(&self) -> &ClientConfig {
        &self.client
    }
}

impl DerefMut for Settings {
    fn deref_mut(&mut self) -> &mut ClientConfig {
        &mut self.client
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("client", &self.client)
            .field("signing_key", &self.signing_key)
            .field("realms", &self.realms)
            .field("tls", &self.tls)
            .field("ciba", &self.ciba.as_ref().map(|c| &c.keycloak_url))
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings with every default: loopback port 8787, 120 s logins, 60 s result tokens,
    /// 2,000 logins in memory, 20 s per pushauthd call, plain HTTP, no realm (set
    /// [`Settings::realms`]: without one every login is refused), no CIBA, and the client
    /// defaults of [`ClientConfig::new`] (no extra CA, no proxy, 5 s connect timeout, no pins).
    pub fn new(
        servers: Vec<String>,
        api_key: Zeroizing<String>,
        shared_secret: Zeroizing<String>,
        signing_key: DeviceSigningKey,
    ) -> Self {
        let mut client = ClientConfig::new(servers, "");
        client.api_key = api_key;
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            client,
            realms: Realms::default(),
            tls: None,
            call_timeout: Duration::from_secs(20),
            shared_secret,
            signing_key,
            login_ttl: Duration::from_secs(120),
            result_ttl: Duration::from_secs(60),
            max_pending: 2000,
            ciba: None,
        }
    }

    /// Checks the sidecar's own ranges: `login_ttl_secs` 1 to 300, `result_ttl_secs` 1 to 600,
    /// `call_timeout_secs` 1 to 60, `max_pending` 1 to 100,000, and the CIBA URL and key. (The
    /// client part is checked by `pushauth_client::ClientSettings::validate` and
    /// [`pushauth_client::Client::new`].)
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
        if self.call_timeout < Duration::from_secs(1) || self.call_timeout > Duration::from_secs(60)
        {
            return Err(ConfigError::Invalid(
                "call_timeout_secs must be 1 to 60".into(),
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

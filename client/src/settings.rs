//! [`ClientSettings`]: the relying-party client keys as a config file writes them (servers, API
//! key, TLS trust, proxy, timeouts, pinned device keys), with one validation for every program
//! that embeds them (`pam_push`'s `/etc/pam_push.conf`, the IdP sidecar's TOML file).
//!
//! Embed it with `#[serde(flatten)]`: its keys then sit at the top level of the embedding file,
//! as they always have. The API key file is read by the embedding program (each has its own
//! owner and permission policy for secret files); [`ClientSettings::client_config`] takes the
//! key it read and gives the [`ClientConfig`] a [`crate::Client`] is built from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::config::{ClientConfig, DEFAULT_CONNECT_TIMEOUT};

/// Accepted `connect_timeout` values, in seconds.
pub const CONNECT_TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=60;

/// Why client settings are unusable. Each message names the key and says what to write instead.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// Both `server` and `servers` are set.
    #[error("set either server or servers, not both")]
    ServerAndServers,
    /// Neither `server` nor `servers` is set.
    #[error("no server is set (server = \"https://…\" or servers = [\"https://…\"])")]
    NoServer,
    /// `servers = []`.
    #[error("servers is empty; name at least one pushauthd URL")]
    EmptyServers,
    /// A server that is not an `http://` or `https://` base URL with a host.
    #[error("server {0:?} must start with https:// (or http:// for tests) and name a host, with no query, fragment, user or space")]
    BadServer(String),
    /// A plain `http://` server on another machine without `allow_insecure_http = true`.
    #[error("server {0:?} uses plain http:// to another machine: a man in the middle would decide every answer; use https:// (http:// is accepted only for localhost, 127.0.0.0/8 and ::1, or with allow_insecure_http = true)")]
    InsecureServer(String),
    /// A `proxy` that is not an `http://host:port` URL.
    #[error("proxy must be an http://host:port URL")]
    BadProxy,
    /// A setting's text holds a character that does not show as itself.
    #[error("{key} holds the character U+{code:04X} (a control, bidi, zero-width or space character that does not show as itself); retype the value")]
    HiddenCharacter {
        /// The key (`server`, `servers`, `proxy`).
        key: &'static str,
        /// The character's code point.
        code: u32,
    },
    /// `connect_timeout` outside [`CONNECT_TIMEOUT_SECS`].
    #[error("connect_timeout = {0} must be 1 to 60 seconds")]
    ConnectTimeout(u64),
    /// Both `api_key` and `api_key_file` are set.
    #[error("set either api_key or api_key_file, not both")]
    ApiKeyTwice,
    /// Neither `api_key` nor `api_key_file` is set.
    #[error("no api_key_file is set")]
    NoApiKey,
    /// An inline `api_key` where the embedding program accepts only a key file.
    #[error("api_key is not accepted here; put the key in a file only this service can read (chmod 600) and set api_key_file")]
    InlineApiKeyRefused,
    /// The API key is empty.
    #[error("the API key is empty")]
    EmptyApiKey,
    /// The API key holds something other than printable ASCII.
    #[error("the API key holds characters other than printable ASCII (0x21-0x7E): a byte-order mark, a no-break or zero-width space, a space? Write the key alone on one line")]
    BadApiKey,
}

/// Where the API key comes from.
#[derive(Clone, Copy)]
pub enum ApiKeySource<'a> {
    /// Written in the config file itself (`api_key = "…"`); the file must then be private.
    Inline(&'a Zeroizing<String>),
    /// A file holding the key (`api_key_file = "/etc/pushauth/api-key"`).
    File(&'a Path),
}

impl fmt::Debug for ApiKeySource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKeySource::Inline(_) => f.write_str("Inline(<redacted>)"),
            ApiKeySource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The relying-party client keys of a config file. Every field is optional as written;
/// [`ClientSettings::validate`] says what is missing or wrong. `Debug` never shows the API key.
#[derive(Clone, Default, Deserialize)]
pub struct ClientSettings {
    /// One pushauthd base URL (`https://push.example.com`); the alternative to `servers`.
    pub server: Option<String>,
    /// pushauthd base URLs, tried in order: the next one only when a server cannot be reached.
    pub servers: Option<Vec<String>>,
    /// The relying-party API key written inline; only where the embedding program checks that
    /// the config file itself is private (`pam_push`).
    pub api_key: Option<Zeroizing<String>>,
    /// A file holding the relying-party API key (one line, printable ASCII).
    pub api_key_file: Option<PathBuf>,
    /// Extra PEM CA bundle (a private CA), trusted in addition to the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// HTTP proxy URL (`http://proxy:3128`).
    pub proxy: Option<String>,
    /// Seconds allowed to one server (connect, TLS and its answer) before the next one is
    /// tried; 1 to 60, default 5.
    pub connect_timeout: Option<u64>,
    /// Allow `http://` servers that are not on this machine (default false).
    pub allow_insecure_http: Option<bool>,
    /// Directory of pinned device keys, one file per user (`<dir>/<user>`), in the style of
    /// sshd's `authorized_keys`: an answer signed by a key the user's file does not list is
    /// refused even when pushauthd accepted it.
    pub authorized_devices: Option<PathBuf>,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("server", &self.server)
            .field("servers", &self.servers)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_file", &self.api_key_file)
            .field("ca_file", &self.ca_file)
            .field("proxy", &self.proxy.as_deref().map(redact_proxy))
            .field("connect_timeout", &self.connect_timeout)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("authorized_devices", &self.authorized_devices)
            .finish()
    }
}

/// A proxy URL as logs may show it: one with credentials is not shown.
pub(crate) fn redact_proxy(proxy: &str) -> &str {
    if proxy.contains('@') {
        "<proxy with credentials>"
    } else {
        proxy
    }
}

/// The checked settings, the API key aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSettings {
    /// The servers, as written.
    pub servers: Vec<String>,
    /// Time allowed to one server.
    pub connect_timeout: Duration,
    /// Whether plain HTTP to other machines is allowed.
    pub allow_insecure_http: bool,
}

impl ClientSettings {
    /// Checks every client key: `server` xor a non-empty `servers`; each server an `http(s)://`
    /// base URL with a host, plain HTTP only on loopback unless `allow_insecure_http`; no hidden
    /// characters in the URLs; `proxy` an `http://` URL; `connect_timeout` 1 to 60 s; exactly
    /// one of `api_key` and `api_key_file`. Files are not read here.
    pub fn validate(&self) -> Result<ValidSettings, SettingsError> {
        self.refuse_hidden()?;
        let servers = match (&self.server, &self.servers) {
            (Some(_), Some(_)) => return Err(SettingsError::ServerAndServers),
            (Some(one), None) => vec![one.clone()],
            (None, Some(list)) if list.is_empty() => return Err(SettingsError::EmptyServers),
            (None, Some(list)) => list.clone(),
            (None, None) => return Err(SettingsError::NoServer),
        };
        let allow_insecure_http = self.allow_insecure_http.unwrap_or(false);
        for server in &servers {
            check_server(server, allow_insecure_http)?;
        }
        if let Some(proxy) = &self.proxy {
            check_proxy(proxy)?;
        }
        let connect_timeout = match self.connect_timeout {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(secs) if CONNECT_TIMEOUT_SECS.contains(&secs) => Duration::from_secs(secs),
            Some(secs) => return Err(SettingsError::ConnectTimeout(secs)),
        };
        self.api_key_source()?;
        Ok(ValidSettings {
            servers,
            connect_timeout,
            allow_insecure_http,
        })
    }

    /// Where the API key is to be read from: exactly one of `api_key` and `api_key_file`.
    pub fn api_key_source(&self) -> Result<ApiKeySource<'_>, SettingsError> {
        match (&self.api_key, &self.api_key_file) {
            (Some(key), None) => Ok(ApiKeySource::Inline(key)),
            (None, Some(file)) => Ok(ApiKeySource::File(file)),
            (Some(_), Some(_)) => Err(SettingsError::ApiKeyTwice),
            (None, None) => Err(SettingsError::NoApiKey),
        }
    }

    /// The client configuration: [`ClientSettings::validate`], then `api_key` (read by the
    /// caller from [`ClientSettings::api_key_source`]) checked with [`check_api_key`].
    pub fn client_config(&self, api_key: Zeroizing<String>) -> Result<ClientConfig, SettingsError> {
        let valid = self.validate()?;
        check_api_key(&api_key)?;
        Ok(ClientConfig {
            servers: valid.servers,
            api_key,
            ca_file: self.ca_file.clone(),
            proxy: self.proxy.clone(),
            connect_timeout: valid.connect_timeout,
            allow_insecure_http: valid.allow_insecure_http,
            authorized_devices_dir: self.authorized_devices.clone(),
            pinned_backup_codes: false,
        })
    }

    /// Refuses a hidden character ([`pushauth_proto::text::is_hidden`]) or any white space in a
    /// URL setting, naming the key: such a URL reads as one thing and is another, and would only
    /// fail at login time (where it would count as "unreachable").
    fn refuse_hidden(&self) -> Result<(), SettingsError> {
        let values = self
            .server
            .iter()
            .map(|v| ("server", v))
            .chain(self.servers.iter().flatten().map(|v| ("servers", v)))
            .chain(self.proxy.iter().map(|v| ("proxy", v)));
        for (key, value) in values {
            if let Some(c) = value
                .chars()
                .find(|&c| pushauth_proto::text::is_hidden(c) || c.is_whitespace())
            {
                return Err(SettingsError::HiddenCharacter {
                    key,
                    code: u32::from(c),
                });
            }
        }
        Ok(())
    }
}

/// Checks one server base URL; the form [`crate::Client`] uses (no trailing `/`) on success.
/// Plain `http://` only to loopback (`localhost`, `127.0.0.0/8`, `::1`) unless
/// `allow_insecure_http`.
pub fn check_server(server: &str, allow_insecure_http: bool) -> Result<String, SettingsError> {
    let base = server.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ', '@']) => {
            let authority = host.split('/').next().unwrap_or(host);
            if base.starts_with("http://") && !allow_insecure_http && !is_loopback_host(authority) {
                return Err(SettingsError::InsecureServer(server.to_owned()));
            }
            Ok(base.to_owned())
        }
        _ => Err(SettingsError::BadServer(server.to_owned())),
    }
}

/// Checks a proxy URL: `http://host:port` (ureq's other proxy kinds are not offered).
pub fn check_proxy(proxy: &str) -> Result<(), SettingsError> {
    if !proxy.starts_with("http://") || ureq::Proxy::new(proxy).is_err() {
        return Err(SettingsError::BadProxy);
    }
    Ok(())
}

/// Checks an API key: not empty, printable ASCII only (0x21–0x7E; anything else, a byte-order
/// mark or a no-break space, cannot be sent in an HTTP header).
pub fn check_api_key(key: &str) -> Result<(), SettingsError> {
    if key.is_empty() {
        return Err(SettingsError::EmptyApiKey);
    }
    if !api_key_is_printable_ascii(key) {
        return Err(SettingsError::BadApiKey);
    }
    Ok(())
}

/// Whether an API key is plain printable ASCII (0x21–0x7E): anything else (a byte-order mark, a
/// no-break or zero-width space) cannot be sent in an HTTP header.
pub fn api_key_is_printable_ascii(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether the host of an `http://` or `https://` base URL is this machine: `localhost`,
/// `127.0.0.0/8` or `::1`. Only there may plain HTTP be used without an explicit opt-in.
pub(crate) fn is_loopback_host(host_and_port: &str) -> bool {
    let host = if let Some(rest) = host_and_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, _)) => inside,
            None => return false,
        }
    } else {
        host_and_port
            .split_once(':')
            .map_or(host_and_port, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedding file the way `pam_push` and the sidecar embed the settings.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Embedding {
        own: Option<u64>,
        #[serde(flatten)]
        client: ClientSettings,
    }

    fn parse(text: &str) -> Result<Embedding, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn issue10_item2_flattened_keys_parse_and_unknown_keys_are_refused() {
        let e = parse(
            "own = 3\nservers = [\"https://a.example\", \"http://127.0.0.1:8080\"]\n\
             api_key_file = \"/k\"\nca_file = \"/ca.pem\"\nproxy = \"http://proxy:3128\"\n\
             connect_timeout = 7\nauthorized_devices = \"/pins\"\n",
        )
        .unwrap();
        assert_eq!(e.own, Some(3));
        let valid = e.client.validate().unwrap();
        assert_eq!(valid.servers.len(), 2);
        assert_eq!(valid.connect_timeout, Duration::from_secs(7));
        let cfg = e.client.client_config(Zeroizing::new("k1".into())).unwrap();
        assert_eq!(cfg.proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(cfg.connect_timeout, Duration::from_secs(7));
        assert_eq!(cfg.authorized_devices_dir, Some(PathBuf::from("/pins")));
        assert_eq!(cfg.ca_file, Some(PathBuf::from("/ca.pem")));

        let err = parse("own = 1\nservers_x = 1\n").unwrap_err();
        assert!(err.contains("servers_x"), "{err}");
        let err = parse("connect_timeout = \"5\"\n").unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn issue10_item2_validation_names_the_problem() {
        let base = |extra: &str| {
            parse(&format!("api_key_file = \"/k\"\n{extra}"))
                .unwrap()
                .client
                .validate()
        };
        assert!(base("server = \"https://a\"\n").is_ok());
        for (extra, want) in [
            ("", SettingsError::NoServer),
            ("servers = []\n", SettingsError::EmptyServers),
            (
                "server = \"https://a\"\nservers = [\"https://b\"]\n",
                SettingsError::ServerAndServers,
            ),
            (
                "server = \"ftp://a\"\n",
                SettingsError::BadServer("ftp://a".into()),
            ),
            (
                "server = \"https://\"\n",
                SettingsError::BadServer("https://".into()),
            ),
            (
                "server = \"http://push.example\"\n",
                SettingsError::InsecureServer("http://push.example".into()),
            ),
            (
                "server = \"https://a\"\nproxy = \"socks5://p:1\"\n",
                SettingsError::BadProxy,
            ),
            (
                "server = \"https://a\"\nconnect_timeout = 0\n",
                SettingsError::ConnectTimeout(0),
            ),
            (
                "server = \"https://a\"\nconnect_timeout = 61\n",
                SettingsError::ConnectTimeout(61),
            ),
            (
                "server = \"https://a\u{200B}\"\n",
                SettingsError::HiddenCharacter {
                    key: "server",
                    code: 0x200B,
                },
            ),
            (
                "server = \"https://a\"\napi_key = \"k\"\n",
                SettingsError::ApiKeyTwice,
            ),
        ] {
            assert_eq!(base(extra), Err(want), "{extra}");
        }
        assert!(base("server = \"http://push.example\"\nallow_insecure_http = true\n").is_ok());
        assert!(base("server = \"http://[::1]:9\"\n").is_ok());
        let none = parse("server = \"https://a\"\n").unwrap().client;
        assert_eq!(none.validate(), Err(SettingsError::NoApiKey));
        let cfg = base("server = \"https://a\"\n");
        assert!(cfg.is_ok());
        let settings = parse("server = \"https://a\"\napi_key_file = \"/k\"\n")
            .unwrap()
            .client;
        assert_eq!(
            settings
                .client_config(Zeroizing::new("\u{feff}k".into()))
                .unwrap_err(),
            SettingsError::BadApiKey
        );
        assert_eq!(
            settings
                .client_config(Zeroizing::new(String::new()))
                .unwrap_err(),
            SettingsError::EmptyApiKey
        );
    }

    #[test]
    fn debug_hides_the_key_and_proxy_credentials() {
        let s = parse("api_key = \"super-secret\"\nproxy = \"http://u:pw@p:1\"\n")
            .unwrap()
            .client;
        let text = format!("{s:?}");
        assert!(!text.contains("super-secret"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }
}

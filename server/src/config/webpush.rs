//! `[web_push]`: Web Push (RFC 8030) to the devices' push services, and the allow-list of the
//! push service origins pushauthd may POST to.
//!
//! An origin entry is `scheme://host[:port]`, nothing else (no path, user or query). The host is
//! a DNS name, an IPv4 address or a bracketed IPv6 address, or `*.` followed by a DNS name of
//! at least two labels: the `*` then stands for exactly one DNS label (letters, digits,
//! hyphens), never for nothing and never for several labels, so `https://*.notify.windows.com`
//! allows `https://wns2-by3p.notify.windows.com` but neither `https://notify.windows.com` nor
//! `https://a.b.notify.windows.com`. Scheme and port must match exactly (the port defaults to
//! the scheme's). An endpoint with an IP address matches only an entry naming that address.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use url::{Host, Url};

use super::ConfigError;

/// The public push services of the browsers: Chrome and Android (FCM), Firefox (Mozilla
/// autopush), Safari on macOS and iOS (Apple), Edge (Windows Push Notification Services).
pub const DEFAULT_ORIGINS: &[&str] = &[
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.notify.windows.com",
];

/// Longest endpoint URL accepted, in bytes (the browsers' run to a few hundred).
pub const MAX_ENDPOINT_BYTES: usize = 2048;

/// `[web_push]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebPush {
    /// Send Web Push at all (default true; devices without a subscription get none anyway).
    pub enabled: Option<bool>,
    /// Push service origins allowed besides the defaults (an ntfy server for UnifiedPush).
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Keep [`DEFAULT_ORIGINS`] in the allow-list (default true).
    pub default_origins: Option<bool>,
    /// The VAPID `sub` claim: `mailto:` or an `https:` URL (RFC 8292 §2.1).
    pub subject: Option<String>,
    /// The VAPID key file (default `<data_dir>/vapid-key`).
    pub vapid_key_file: Option<PathBuf>,
    /// Sender threads (default 2, 1 to 16).
    pub senders: Option<usize>,
    /// Challenges waiting to be pushed before more are dropped (default 256, 1 to 65536).
    pub queue: Option<usize>,
    /// Time allowed for one push request, connect to answer, in milliseconds (default 5000).
    pub timeout_ms: Option<u64>,
}

/// The resolved `[web_push]` settings.
#[derive(Debug, Clone)]
pub struct WebPushConfig {
    /// Send Web Push at all.
    pub enabled: bool,
    /// Where pushes may go.
    pub allow: AllowList,
    /// The VAPID `sub` claim; `None`: derived from `public_url` at start.
    pub subject: Option<String>,
    /// The VAPID key file; `None`: `<data_dir>/vapid-key`.
    pub vapid_key_file: Option<PathBuf>,
    /// Sender threads.
    pub senders: usize,
    /// Queue capacity, in challenges.
    pub queue: usize,
    /// Time allowed for one push request, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WebPushConfig {
    fn default() -> Self {
        WebPushConfig {
            enabled: true,
            allow: AllowList::defaults(),
            subject: None,
            vapid_key_file: None,
            senders: 2,
            queue: 256,
            timeout_ms: 5000,
        }
    }
}

impl FileWebPush {
    /// The settings, every value checked.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and what is wrong.
    pub fn resolve(&self) -> Result<WebPushConfig, ConfigError> {
        let d = WebPushConfig::default();
        let mut entries: Vec<String> = Vec::new();
        if self.default_origins.unwrap_or(true) {
            entries.extend(DEFAULT_ORIGINS.iter().map(|s| (*s).to_owned()));
        }
        entries.extend(self.allow_origins.iter().cloned());
        let allow = AllowList::parse(&entries)
            .map_err(|e| ConfigError::Invalid(format!("[web_push] allow_origins: {e}")))?;
        if let Some(subject) = &self.subject {
            check_subject(subject)
                .map_err(|e| ConfigError::Invalid(format!("[web_push] subject: {e}")))?;
        }
        let senders = self.senders.unwrap_or(d.senders);
        if !(1..=16).contains(&senders) {
            return Err(ConfigError::Invalid(
                "[web_push] senders must be between 1 and 16".into(),
            ));
        }
        let queue = self.queue.unwrap_or(d.queue);
        if !(1..=65_536).contains(&queue) {
            return Err(ConfigError::Invalid(
                "[web_push] queue must be between 1 and 65536".into(),
            ));
        }
        let timeout_ms = self.timeout_ms.unwrap_or(d.timeout_ms);
        if !(100..=60_000).contains(&timeout_ms) {
            return Err(ConfigError::Invalid(
                "[web_push] timeout_ms must be between 100 and 60000".into(),
            ));
        }
        Ok(WebPushConfig {
            enabled: self.enabled.unwrap_or(true),
            allow,
            subject: self.subject.clone(),
            vapid_key_file: self.vapid_key_file.clone(),
            senders,
            queue,
            timeout_ms,
        })
    }
}

/// A VAPID subject is a `mailto:` address or an `https:` URL (RFC 8292 §2.1).
///
/// # Errors
/// What is wrong, for people.
pub fn check_subject(subject: &str) -> Result<(), String> {
    let ok = match subject.strip_prefix("mailto:") {
        Some(address) => address.contains('@') && !address.contains(char::is_whitespace),
        None => Url::parse(subject).is_ok_and(|u| u.scheme() == "https" && u.has_host()),
    };
    if ok && subject.len() <= 256 {
        Ok(())
    } else {
        Err(format!(
            "{subject:?} is not a mailto: address or an https: URL"
        ))
    }
}

/// The host part of an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this host (a lower-case DNS name or an address as `url` writes it).
    Exact(String),
    /// One DNS label, then `.` and this lower-case suffix.
    OneLabelUnder(String),
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: u16,
}

/// The push service origins pushauthd may send to (see the module notes for the syntax).
#[derive(Clone, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<OriginPattern>,
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(OriginPattern::to_string))
            .finish()
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::OneLabelUnder(s) => format!("*.{s}"),
        };
        write!(f, "{}://{}:{}", self.scheme, host, self.port)
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn parse_entry(entry: &str) -> Result<OriginPattern, String> {
    let bad = |why: &str| format!("{entry:?}: {why}");
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad("write it as https://host[:port]"))?;
    if scheme != "https" && scheme != "http" {
        return Err(bad("the scheme must be https (or http, for tests)"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad("an origin has no path, query or user part"));
    }
    if let Some(suffix_and_port) = authority.strip_prefix("*.") {
        // Parse the rest as if the `*` were a label, so port and case follow the URL rules.
        let url = Url::parse(&format!("{scheme}://x.{suffix_and_port}"))
            .map_err(|e| bad(&e.to_string()))?;
        let Some(Host::Domain(host)) = url.host() else {
            return Err(bad("a wildcard stands only before a DNS name"));
        };
        let suffix = host.strip_prefix("x.").unwrap_or(host).to_owned();
        if suffix.split('.').count() < 2 || !suffix.split('.').all(is_label) {
            return Err(bad(
                "a wildcard needs a DNS name of at least two labels after it",
            ));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        return Ok(OriginPattern {
            scheme: scheme.to_owned(),
            host: HostPattern::OneLabelUnder(suffix),
            port,
        });
    }
    if authority.contains('*') {
        return Err(bad(
            "a wildcard may only be the whole first label: *.example.com",
        ));
    }
    let url = Url::parse(&format!("{scheme}://{authority}")).map_err(|e| bad(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(0);
    Ok(OriginPattern {
        scheme: scheme.to_owned(),
        host: HostPattern::Exact(host),
        port,
    })
}

impl AllowList {
    /// [`DEFAULT_ORIGINS`].
    pub fn defaults() -> AllowList {
        let entries = DEFAULT_ORIGINS
            .iter()
            .filter_map(|e| parse_entry(e).ok())
            .collect();
        AllowList { entries }
    }

    /// The list made of these entries.
    ///
    /// # Errors
    /// The first bad entry, named, and why.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        let entries = entries
            .iter()
            .map(|e| parse_entry(e.as_ref().trim()))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// Checks an endpoint URL: well-formed, no user part or fragment, at most
    /// [`MAX_ENDPOINT_BYTES`], and its origin allowed. Returns the parsed URL and its origin
    /// (`scheme://host[:port]`, what logs and audit events may name).
    ///
    /// # Errors
    /// [`EndpointError`].
    pub fn check(&self, endpoint: &str) -> Result<(Url, String), EndpointError> {
        if endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(EndpointError::Malformed(format!(
                "the endpoint is longer than {MAX_ENDPOINT_BYTES} bytes"
            )));
        }
        let url = Url::parse(endpoint)
            .map_err(|e| EndpointError::Malformed(format!("the endpoint is not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(EndpointError::Malformed(
                "the endpoint may not have a user part or a fragment".into(),
            ));
        }
        let origin = url.origin().ascii_serialization();
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(EndpointError::Malformed(
                "the endpoint has no host or port".into(),
            ));
        };
        let allowed = self.entries.iter().any(|p| {
            p.scheme == url.scheme()
                && p.port == port
                && match (&p.host, &host) {
                    (HostPattern::Exact(h), _) => url.host_str() == Some(h.as_str()),
                    (HostPattern::OneLabelUnder(suffix), Host::Domain(name)) => name
                        .strip_suffix(suffix.as_str())
                        .and_then(|head| head.strip_suffix('.'))
                        .is_some_and(is_label),
                    (HostPattern::OneLabelUnder(_), _) => false,
                }
        });
        if !allowed || origin == "null" {
            return Err(EndpointError::NotAllowed(origin));
        }
        Ok((url, origin))
    }
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a usable URL.
    #[error("{0}")]
    Malformed(String),
    /// Its origin (the text) is not in `[web_push] allow_origins`.
    #[error(
        "push service origin {0} is not allowed; an administrator can add it to [web_push] \
         allow_origins"
    )]
    NotAllowed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &AllowList, url: &str) -> bool {
        list.check(url).is_ok()
    }

    #[test]
    fn defaults_allow_the_browsers_push_services_only() {
        let list = AllowList::defaults();
        for url in [
            "https://fcm.googleapis.com/fcm/send/abc:def",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
            "https://web.push.apple.com/QGhZ",
            "https://wns2-by3p.notify.windows.com/w/?token=AwYAAA",
            "https://FCM.googleapis.com:443/x",
        ] {
            assert!(allowed(&list, url), "{url}");
        }
        for url in [
            "http://fcm.googleapis.com/x",
            "https://fcm.googleapis.com:8443/x",
            "https://fcm.googleapis.com.evil.example/x",
            "https://evilfcm.googleapis.com/x",
            "https://notify.windows.com/x",
            "https://a.b.notify.windows.com/x",
            "https://-x.notify.windows.com/x",
            "https://x.notify.windows.com.evil/x",
            "https://127.0.0.1/x",
            "http://127.0.0.1:8080/x",
            "https://[::1]/x",
            "https://user@fcm.googleapis.com/x",
            "https://fcm.googleapis.com/x#frag",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!allowed(&list, url), "{url}");
        }
        let long = format!(
            "https://fcm.googleapis.com/{}",
            "a".repeat(MAX_ENDPOINT_BYTES)
        );
        assert!(matches!(
            list.check(&long),
            Err(EndpointError::Malformed(_))
        ));
        assert_eq!(
            list.check("https://127.0.0.1:9/x"),
            Err(EndpointError::NotAllowed("https://127.0.0.1:9".into()))
        );
    }

    #[test]
    fn entries_are_strict() {
        let list =
            AllowList::parse(&["http://127.0.0.1:8123", "https://ntfy.example.org/"]).unwrap();
        assert!(allowed(&list, "http://127.0.0.1:8123/up/abc"));
        assert!(!allowed(&list, "http://127.0.0.1:8124/up/abc"));
        assert!(!allowed(&list, "https://127.0.0.1:8123/up/abc"));
        assert!(allowed(&list, "https://ntfy.example.org/upXYZ?up=1"));
        for bad in [
            "fcm.googleapis.com",
            "ftp://x.example",
            "https://x.example/path",
            "https://user@x.example",
            "https://*.com",
            "https://*",
            "https://a*.example.com",
            "https://*.*.example.com",
            "https://*.127.0.0.1",
        ] {
            assert!(AllowList::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn issue11_the_web_push_section_is_checked_when_read() {
        let parse = |text: &str| {
            super::super::FileConfig::parse(text, std::path::Path::new("t.toml"))
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    f.web_push
                        .unwrap_or_default()
                        .resolve()
                        .map_err(|e| e.to_string())
                })
        };
        let c = parse("[web_push]\nallow_origins = [\"https://ntfy.example.org\"]\nsenders = 4\n")
            .unwrap();
        assert!(c.enabled);
        assert_eq!(c.senders, 4);
        assert!(c.allow.check("https://ntfy.example.org/upAbc?up=1").is_ok());
        assert!(c.allow.check("https://fcm.googleapis.com/x").is_ok());
        let c = parse(
            "[web_push]\ndefault_origins = false\nallow_origins = [\"https://ntfy.example.org\"]\n",
        )
        .unwrap();
        assert!(c.allow.check("https://fcm.googleapis.com/x").is_err());
        for (text, needle) in [
            (
                "[web_push]\nallow_origins = [\"https://*.com\"]\n",
                "allow_origins",
            ),
            (
                "[web_push]\nallow_origins = [\"https://x.example/path\"]\n",
                "allow_origins",
            ),
            ("[web_push]\nsubject = \"ops@example.org\"\n", "subject"),
            ("[web_push]\nsenders = 0\n", "senders"),
            ("[web_push]\nqueue = 0\n", "queue"),
            ("[web_push]\ntimeout_ms = 5\n", "timeout_ms"),
            ("[web_push]\nallow_origin = []\n", "allow_origin"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn subjects() {
        assert!(check_subject("mailto:ops@example.org").is_ok());
        assert!(check_subject("https://pushauth.example.org").is_ok());
        assert!(check_subject("http://pushauth.example.org").is_err());
        assert!(check_subject("mailto:nobody").is_err());
        assert!(check_subject("ops@example.org").is_err());
    }
}

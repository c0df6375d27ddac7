//! The allow-list of push service origins pushauthd may POST to (`[web_push] allow_origins`),
//! so that a device cannot make it send requests to internal addresses.
//!
//! An entry is `scheme://host[:port]`, nothing else (no path, user or query). The host is a DNS
//! name, an IPv4 address or a bracketed IPv6 address, or `*.` followed by a DNS name of at least
//! two labels: the `*` then stands for exactly one DNS label (letters, digits, hyphens), never
//! for nothing and never for several labels, so `https://*.notify.windows.com` allows
//! `https://wns2-by3p.notify.windows.com` but neither `https://notify.windows.com` nor
//! `https://a.b.notify.windows.com`. Scheme and port must match exactly (the port defaults to the
//! scheme's). An endpoint with an IP address matches only an entry naming that address.

use std::fmt;

use url::{Host, Url};

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
}

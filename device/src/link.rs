//! Enrollment links: `<server base URL>/enroll?token=<token>` (what pushauthd prints), and the
//! `pushauth://enroll?server=<url>&token=<token>` form a QR code may carry.

use url::Url;

use crate::DeviceError;

/// A parsed enrollment link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollLink {
    /// Server base URL, without a trailing slash.
    pub server: String,
    /// The single-use enrollment token (base64url, at most 256 characters).
    pub token: String,
}

fn bad(msg: impl Into<String>) -> DeviceError {
    DeviceError::BadLink(msg.into())
}

/// The one value of query parameter `name`: `Ok(None)` when absent, an error when repeated (the
/// URL parser would keep the first and drop the rest silently).
fn single_param(url: &Url, name: &str) -> Result<Option<String>, DeviceError> {
    let mut values = url.query_pairs().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.into_owned());
    if values.next().is_some() {
        return Err(bad(format!("the link gives {name}=… more than once")));
    }
    Ok(first)
}

/// Parses an enrollment link. Leading and trailing whitespace is ignored; a hidden character
/// anywhere else ([`pushauth_proto::text::is_hidden`]: controls such as tab and line breaks,
/// bidi and zero-width characters), a repeated parameter, or a token that is not the base64url
/// pushauthd makes is refused.
pub fn parse_enroll_link(link: &str) -> Result<EnrollLink, DeviceError> {
    let link = link.trim();
    if let Some(c) = pushauth_proto::text::first_hidden(link) {
        return Err(bad(format!(
            "the link holds the hidden character U+{:04X}; copy it again",
            u32::from(c)
        )));
    }
    let url = Url::parse(link).map_err(|e| bad(format!("{link:?} is not a URL: {e}")))?;
    let token = single_param(&url, "token")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("the link has no token=… parameter"))?;
    if token.len() > 256
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad(
            "the token=… parameter must be base64url (A-Z, a-z, 0-9, '-', '_'), as pushauthd makes it",
        ));
    }
    let server = match url.scheme() {
        "pushauth" => {
            let server = single_param(&url, "server")?
                .ok_or_else(|| bad("a pushauth:// link needs a server=… parameter"))?;
            base_url(&server)?
        }
        "http" | "https" => {
            let path = url.path();
            let prefix = path
                .strip_suffix("/enroll")
                .ok_or_else(|| bad("the link's path must end in /enroll"))?;
            let mut base = url.clone();
            base.set_query(None);
            base.set_fragment(None);
            base.set_path(prefix);
            base_url(base.as_str())?
        }
        other => return Err(bad(format!("unsupported scheme {other:?}; expected https"))),
    };
    Ok(EnrollLink { server, token })
}

/// Checks a server base URL and drops its trailing slash.
pub fn base_url(text: &str) -> Result<String, DeviceError> {
    let url = Url::parse(text.trim()).map_err(|e| bad(format!("server {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(format!(
            "server {text:?} must be an http:// or https:// URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad(format!(
            "server {text:?} must be a plain base URL (no query, fragment or user)"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_link_forms() {
        assert_eq!(
            parse_enroll_link("http://127.0.0.1:8443/enroll?token=abc_-1").unwrap(),
            EnrollLink {
                server: "http://127.0.0.1:8443".into(),
                token: "abc_-1".into()
            }
        );
        assert_eq!(
            parse_enroll_link("https://push.example.com/pa/enroll?token=T").unwrap(),
            EnrollLink {
                server: "https://push.example.com/pa".into(),
                token: "T".into()
            }
        );
        assert_eq!(
            parse_enroll_link("pushauth://enroll?server=https%3A%2F%2Fpush.example.com&token=T")
                .unwrap(),
            EnrollLink {
                server: "https://push.example.com".into(),
                token: "T".into()
            }
        );
    }

    #[test]
    fn refuses_bad_links() {
        for bad in [
            "",
            "push.example.com/enroll?token=x",
            "https://push.example.com/enroll",
            "https://push.example.com/enroll?token=",
            "https://push.example.com/other?token=x",
            "ftp://push.example.com/enroll?token=x",
            "pushauth://enroll?token=x",
        ] {
            assert!(
                matches!(parse_enroll_link(bad), Err(DeviceError::BadLink(_))),
                "{bad:?} should be refused"
            );
        }
    }
}

//! `[web_push]`: Web Push (RFC 8030) to the devices' push services: on or off, the allow-list of
//! push service origins ([`AllowList`]), the VAPID subject and key file, and the sender's pool,
//! queue and timeout.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use super::push_origins::{AllowList, DEFAULT_ORIGINS};
use super::ConfigError;

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

#[cfg(test)]
mod tests {
    use super::*;

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

//! `[offline]`: offline codes (issue 12, [`crate::offline`]): HOTP (RFC 4226) codes a device
//! shows when pushauthd cannot be reached.

use pushauth_proto::hotp::{HotpAlg, MAX_DIGITS, MIN_DIGITS};
use pushauth_proto::offline::MAX_WINDOW;
use serde::Deserialize;

use super::{ConfigError, FileConfig};

/// `[offline]`: HOTP (RFC 4226) codes a device shows when pushauthd cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineConfig {
    /// `enabled` (default true): new devices get a secret and hosts may fetch values.
    pub enabled: bool,
    /// `digits` (default 6, 6 to 8) of codes for devices enrolled from now on.
    pub digits: u32,
    /// `algorithm` (default `sha256`, or `sha1`) for devices enrolled from now on.
    pub algorithm: HotpAlg,
    /// `window` (default 20, at most 100): values a host may hold per device ahead of the
    /// last used counter.
    pub window: u64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig {
            enabled: true,
            digits: 6,
            algorithm: HotpAlg::Sha256,
            window: 20,
        }
    }
}

/// `[offline]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOffline {
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `digits`.
    pub digits: Option<u32>,
    /// `algorithm`: `sha256` or `sha1`.
    pub algorithm: Option<String>,
    /// `window`.
    pub window: Option<u64>,
}

impl FileOffline {
    /// The checked settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the allowed values.
    pub fn resolve(&self) -> Result<OfflineConfig, ConfigError> {
        let default = OfflineConfig::default();
        let digits = self.digits.unwrap_or(default.digits);
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
            return Err(ConfigError::Invalid(format!(
                "[offline] digits = {digits} must be {MIN_DIGITS} to {MAX_DIGITS}"
            )));
        }
        let algorithm = match &self.algorithm {
            None => default.algorithm,
            Some(text) => text
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("[offline] {e}")))?,
        };
        let window = self.window.unwrap_or(default.window);
        if !(1..=MAX_WINDOW).contains(&window) {
            return Err(ConfigError::Invalid(format!(
                "[offline] window = {window} must be 1 to {MAX_WINDOW}"
            )));
        }
        Ok(OfflineConfig {
            enabled: self.enabled.unwrap_or(default.enabled),
            digits,
            algorithm,
            window,
        })
    }
}

impl FileConfig {
    /// The `[offline]` settings (defaults when the section is absent).
    ///
    /// # Errors
    /// See [`FileOffline::resolve`].
    pub fn offline_config(&self) -> Result<OfflineConfig, ConfigError> {
        self.offline.clone().unwrap_or_default().resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            FileOffline::default().resolve().unwrap(),
            OfflineConfig::default()
        );
        let bad = |f: FileOffline| f.resolve().unwrap_err().to_string();
        assert!(bad(FileOffline {
            digits: Some(5),
            ..Default::default()
        })
        .contains("digits"));
        assert!(bad(FileOffline {
            digits: Some(9),
            ..Default::default()
        })
        .contains("digits"));
        assert!(bad(FileOffline {
            window: Some(101),
            ..Default::default()
        })
        .contains("window"));
        assert!(bad(FileOffline {
            window: Some(0),
            ..Default::default()
        })
        .contains("window"));
        assert!(bad(FileOffline {
            algorithm: Some("md5".into()),
            ..Default::default()
        })
        .contains("sha256"));
        let ok = FileOffline {
            enabled: Some(false),
            digits: Some(8),
            algorithm: Some("sha1".into()),
            window: Some(100),
        }
        .resolve()
        .unwrap();
        assert_eq!(ok.algorithm, HotpAlg::Sha1);
        assert!(!ok.enabled);
    }
}

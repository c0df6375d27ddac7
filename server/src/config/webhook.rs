//! `[webhook]`: where new challenges are announced, and the HMAC secret that signs them.

use std::fmt;
use std::path::PathBuf;

use pushauth_files::{Owner, ReadPolicy};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{ConfigError, FileConfig};

/// Where to POST a notification for every new challenge.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The URL notified (POST, JSON).
    pub url: String,
    /// HMAC-SHA256 key for the `X-PushAuth-Signature` header.
    pub secret: Zeroizing<String>,
    /// Time allowed for one notification, in milliseconds.
    pub timeout_ms: u64,
    /// Put the user name in notifications (`[webhook] include_user`, default false): only the
    /// challenge id and the device id are sent otherwise.
    pub include_user: bool,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .field("include_user", &self.include_user)
            .finish()
    }
}

/// `[webhook]` in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhook {
    /// The URL notified.
    pub url: String,
    /// The HMAC key itself, or
    pub secret: Option<String>,
    /// a file holding it.
    pub secret_file: Option<PathBuf>,
    /// Time allowed for one notification, in milliseconds (default 3000).
    pub timeout_ms: Option<u64>,
    /// Send the user name in notifications too (default false).
    #[serde(default)]
    pub include_user: bool,
}

impl fmt::Debug for FileWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWebhook")
            .field("url", &self.url)
            .field("secret_file", &self.secret_file)
            .field("include_user", &self.include_user)
            .finish()
    }
}

impl FileConfig {
    /// The webhook settings, reading the secret file when one is named. The secret file, or
    /// the config file holding the secret inline, must have no permission bit for group or
    /// others; the secret file must belong to the user pushauthd runs as.
    pub fn webhook_config(&self) -> Result<Option<WebhookConfig>, ConfigError> {
        let Some(hook) = &self.webhook else {
            return Ok(None);
        };
        let secret = match (&hook.secret, &hook.secret_file) {
            (Some(secret), None) => {
                if let (Some(mode), Some(path)) = (self.file_mode, &self.path) {
                    pushauth_files::require_private(path, mode).map_err(|e| {
                        ConfigError::Invalid(format!(
                            "{e}, or move the webhook secret to a 0600 file named by [webhook] \
                             secret_file"
                        ))
                    })?;
                }
                Zeroizing::new(secret.clone())
            }
            (None, Some(path)) => {
                // Checked on the opened file: a secret that others can read is no secret.
                let policy = ReadPolicy::secret(Owner::current());
                let text = pushauth_files::read(path, &policy)?.into_text()?;
                Zeroizing::new(text.trim().to_owned())
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "[webhook] needs exactly one of secret or secret_file".into(),
                ))
            }
        };
        if secret.is_empty() {
            return Err(ConfigError::Invalid("[webhook] secret is empty".into()));
        }
        Ok(Some(WebhookConfig {
            url: hook.url.clone(),
            secret,
            timeout_ms: hook.timeout_ms.unwrap_or(3000),
            include_user: hook.include_user,
        }))
    }
}

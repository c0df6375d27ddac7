//! Web Push (RFC 8030) to the devices' push services: the VAPID key ([`vapid`], RFC 8292) and
//! the sender ([`sender`]): a bounded queue and a fixed pool of threads that encrypt
//! (RFC 8291 `aes128gcm`) a payload holding only the challenge id and POST it to each target
//! device's subscription, if the push service's origin is allowed.
//!
//! A push only wakes the app sooner: the app fetches the challenge over its signed API, so no
//! login context passes through a push service, and a lost push costs seconds, not a login.

pub mod changes;
pub mod sender;
pub mod vapid;

use std::path::Path;
use std::sync::Arc;

pub use sender::{PushJob, Sender, SenderStats};
pub use vapid::{VapidError, VapidKey, VAPID_KEY_FILE};

use crate::config::{AllowList, ServerConfig, WebPushConfig};
use crate::metrics::PushMetrics;
use crate::store::SharedStore;

/// Subject used when neither `[web_push] subject` nor an `https` `public_url` is set.
pub const FALLBACK_SUBJECT: &str = "mailto:root@localhost";

/// Web Push as the server runs it.
#[derive(Debug)]
pub struct WebPush {
    key: Arc<VapidKey>,
    config: WebPushConfig,
    subject: String,
    sender: Option<Sender>,
}

impl WebPush {
    /// Loads (or makes, on first start) the VAPID key: `[web_push] vapid_key_file`, else
    /// `<data_dir>/vapid-key`.
    ///
    /// # Errors
    /// [`VapidError`].
    pub fn load_key(config: &ServerConfig) -> Result<VapidKey, VapidError> {
        VapidKey::load_or_create(&Self::key_path(config))
    }

    /// Where the VAPID key is: `[web_push] vapid_key_file`, else `<data_dir>/vapid-key`.
    pub fn key_path(config: &ServerConfig) -> std::path::PathBuf {
        match &config.web_push.vapid_key_file {
            Some(path) => Path::new(path).to_path_buf(),
            None => config.data_dir.join(VAPID_KEY_FILE),
        }
    }

    /// Web Push with this key; its sender threads start when `[web_push] enabled` (they stop
    /// when it drops). The VAPID subject is `[web_push] subject`, else `base_url` when it is
    /// `https`, else [`FALLBACK_SUBJECT`].
    ///
    /// # Errors
    /// The sender threads could not start.
    pub fn start(
        key: VapidKey,
        config: &ServerConfig,
        base_url: &str,
        store: SharedStore,
        metrics: PushMetrics,
    ) -> std::io::Result<WebPush> {
        let web_push = config.web_push.clone();
        let subject = web_push.subject.clone().unwrap_or_else(|| {
            if base_url.starts_with("https://") {
                base_url.to_owned()
            } else {
                FALLBACK_SUBJECT.to_owned()
            }
        });
        let key = Arc::new(key);
        let sender = if web_push.enabled {
            Some(Sender::start(
                sender::Settings {
                    key: Arc::clone(&key),
                    allow: web_push.allow.clone(),
                    subject: subject.clone(),
                    threads: web_push.senders,
                    queue: web_push.queue,
                    timeout_ms: web_push.timeout_ms,
                },
                store,
                metrics,
            )?)
        } else {
            None
        };
        Ok(WebPush {
            key,
            config: web_push,
            subject,
            sender,
        })
    }

    /// The VAPID public key (base64url of the 65-byte point).
    pub fn public_key(&self) -> &str {
        self.key.public_b64()
    }

    /// The allow-list of push service origins.
    pub fn allow(&self) -> &AllowList {
        &self.config.allow
    }

    /// The VAPID `sub` claim.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Queues a push for a new challenge; never blocks (a full queue drops it, counted).
    pub fn notify(&self, job: PushJob) {
        if let Some(sender) = &self.sender {
            sender.enqueue(job);
        }
    }

    /// The sender's counters and sizes (threads, queue depth), when it runs.
    pub fn stats(&self) -> Option<SenderStats> {
        self.sender.as_ref().map(Sender::stats)
    }
}

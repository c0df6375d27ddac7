//! Webhook notifier: for every device a new challenge targets, POST a
//! [`WebhookNotification`] signed with `X-PushAuth-Signature: sha256=<hex HMAC-SHA256>`.
//! Delivery is best effort: it runs in the background and failures are only logged.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use pushauth_proto::wire::WebhookNotification;
use sha2::Sha256;

use crate::config::WebhookConfig;

/// Header carrying the body's HMAC.
pub const SIGNATURE_HEADER: &str = "X-PushAuth-Signature";

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends one notification per device in the background; never blocks the caller. The body
/// names the challenge and the device only, and the user only with `include_user`.
pub fn notify(config: &Arc<WebhookConfig>, challenge_id: &str, user: &str, devices: &[String]) {
    for device_id in devices {
        let note = WebhookNotification {
            challenge_id: challenge_id.to_owned(),
            device_id: device_id.clone(),
            user: config.include_user.then(|| user.to_owned()),
        };
        let config = Arc::clone(config);
        // ureq is blocking; the blocking pool keeps slow hooks off the async workers.
        tokio::task::spawn_blocking(move || deliver(&config, &note));
    }
}

fn deliver(config: &WebhookConfig, note: &WebhookNotification) {
    let body = match serde_json::to_vec(note) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "webhook: cannot encode notification");
            return;
        }
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(config.timeout_ms.max(1)))
        .redirects(0)
        .build();
    let result = agent
        .post(&config.url)
        .set("Content-Type", "application/json")
        .set(
            SIGNATURE_HEADER,
            &signature(config.secret.as_bytes(), &body),
        )
        .send_bytes(&body);
    match result {
        Ok(_) => tracing::debug!(challenge = %note.challenge_id, "webhook delivered"),
        Err(ureq::Error::Status(status, _)) => {
            tracing::warn!(challenge = %note.challenge_id, status, "webhook refused the notification")
        }
        Err(e) => {
            tracing::warn!(challenge = %note.challenge_id, error = %e, "webhook delivery failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

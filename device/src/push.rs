//! Web Push on the device side: registering the subscription a push service gave this device
//! (`PUT /v1/device/push-subscription`), removing it, and reading the server's VAPID public key.
//! A browser makes the subscription itself; the CLI takes one made elsewhere (a test's own push
//! service, or a UnifiedPush distributor's endpoint).

use serde::Deserialize;
use serde_json::json;

use crate::transport::CALL_TIMEOUT;
use crate::{DeviceClient, DeviceError};

/// What the server says about a subscription it stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubscriptionSet {
    /// The push service's origin the pushes will go to.
    pub origin: String,
    /// An earlier subscription of this device was replaced.
    pub replaced: bool,
}

#[derive(Deserialize)]
struct Removed {
    removed: bool,
}

#[derive(Deserialize)]
struct VapidKey {
    public_key: String,
}

impl DeviceClient {
    /// Sets this device's one push subscription: the push service `endpoint`, the browser-side
    /// ECDH key `p256dh` (base64url of the 65-byte point) and the 16-byte `auth` secret
    /// (base64url), as RFC 8291 names them.
    ///
    /// # Errors
    /// [`DeviceError::Server`] with `push_origin_not_allowed` or `malformed_request` for a
    /// refused subscription; the usual transport errors.
    pub fn set_push_subscription(
        &self,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<SubscriptionSet, DeviceError> {
        let body = json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}});
        self.signed(
            "PUT",
            "/v1/device/push-subscription",
            Some(body.to_string().into_bytes()),
            CALL_TIMEOUT,
        )
    }

    /// Removes this device's push subscription; `true` if it had one.
    ///
    /// # Errors
    /// The usual transport and server errors.
    pub fn remove_push_subscription(&self) -> Result<bool, DeviceError> {
        let removed: Removed =
            self.signed("DELETE", "/v1/device/push-subscription", None, CALL_TIMEOUT)?;
        Ok(removed.removed)
    }

    /// The server's VAPID public key (base64url of the 65-byte point), `GET /v1/push/vapid`.
    ///
    /// # Errors
    /// The usual transport and server errors.
    pub fn vapid_public_key(&self) -> Result<String, DeviceError> {
        // The route takes no credentials; a signed request is simply not checked there.
        let key: VapidKey = self.signed("GET", "/v1/push/vapid", None, CALL_TIMEOUT)?;
        Ok(key.public_key)
    }
}

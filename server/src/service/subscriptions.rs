//! A device's Web Push subscription (RFC 8030 §5, RFC 8291 §2): checked (an allowed push
//! service origin, a real P-256 point, a 16-byte secret), set (one per device: a new one
//! replaces the old) and removed, each audited by the push service's origin only: the
//! endpoint's path is a capability for pushing to the device and the keys are secrets.

use pushauth_proto::b64;
use web_push_native::p256;

use super::{Error, Result};
use crate::clock::Millis;
use crate::config::{AllowList, EndpointError};
use crate::store::{DeviceRecord, PushSubscriptionRecord, Store};
use crate::webpush::changes;

/// Length of the uncompressed P-256 point `p256dh` (RFC 8291 §2: X9.62 uncompressed form).
pub const P256DH_BYTES: usize = 65;
/// Length of the authentication secret `auth` (RFC 8291 §2.1).
pub const AUTH_BYTES: usize = 16;

/// A subscription that passed [`check`], not yet stored.
#[derive(Clone)]
pub struct Checked {
    /// The endpoint URL as sent.
    pub endpoint: String,
    /// Its origin (`scheme://host[:port]`), what the audit log names.
    pub origin: String,
    /// base64url of the 65-byte point.
    pub p256dh: String,
    /// base64url of the 16-byte secret.
    pub auth: String,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The endpoint's origin if `allow` lets pushes go there.
///
/// # Errors
/// [`Error::Invalid`] for a malformed endpoint, [`Error::PushOriginNotAllowed`] naming the
/// origin.
pub fn allowed_origin(allow: &AllowList, endpoint: &str) -> Result<String> {
    match allow.check(endpoint) {
        Ok((_, origin)) => Ok(origin),
        Err(e @ EndpointError::Malformed(_)) => Err(Error::Invalid(e.to_string())),
        Err(e @ EndpointError::NotAllowed(_)) => Err(Error::PushOriginNotAllowed(e.to_string())),
    }
}

/// Checks a subscription as the browser's `PushSubscription` gives it, before any store work.
///
/// # Errors
/// [`Error::Invalid`] naming the bad field, [`Error::PushOriginNotAllowed`].
pub fn check(allow: &AllowList, endpoint: &str, p256dh: &str, auth: &str) -> Result<Checked> {
    let origin = allowed_origin(allow, endpoint)?;
    let point = b64::decode(p256dh, "keys.p256dh").map_err(|e| Error::Invalid(e.to_string()))?;
    if point.len() != P256DH_BYTES
        || point.first() != Some(&4)
        || p256::PublicKey::from_sec1_bytes(&point).is_err()
    {
        return Err(Error::Invalid(
            "keys.p256dh must be an uncompressed P-256 point (65 bytes, base64url)".into(),
        ));
    }
    let secret = b64::decode(auth, "keys.auth").map_err(|e| Error::Invalid(e.to_string()))?;
    if secret.len() != AUTH_BYTES {
        return Err(Error::Invalid(
            "keys.auth must be 16 bytes (base64url)".into(),
        ));
    }
    Ok(Checked {
        endpoint: endpoint.to_owned(),
        origin,
        p256dh: b64::encode(&point),
        auth: b64::encode(&secret),
    })
}

/// Sets `device`'s subscription (replacing any). `true` when it replaced one. The same
/// subscription again (the app registering on each start) writes nothing and is `false`; a
/// change is counted in the store ([`changes`]: on every replica), since each one is stored
/// and audited.
///
/// # Errors
/// [`Error::TooManyChanges`] past [`changes::MAX_CHANGES`] a day for this device (nothing
/// written), [`Error::Store`].
pub fn set(s: &dyn Store, device: &DeviceRecord, sub: Checked, now: Millis) -> Result<bool> {
    let current = s.push_subscriptions(std::slice::from_ref(&device.id))?;
    if current.iter().any(|c| {
        c.device_id == device.id
            && c.endpoint == sub.endpoint
            && c.p256dh == sub.p256dh
            && c.auth == sub.auth
    }) {
        return Ok(false);
    }
    if s.count_push_change(&device.id, now, changes::WINDOW_MS)? > changes::MAX_CHANGES {
        tracing::warn!(device = %device.id, "push subscription change refused: too many today");
        return Err(Error::TooManyChanges(format!(
            "this device changed its push subscription {} times today; try again tomorrow",
            changes::MAX_CHANGES
        )));
    }
    let record = PushSubscriptionRecord {
        device_id: device.id.clone(),
        endpoint: sub.endpoint,
        p256dh: sub.p256dh,
        auth: sub.auth,
        created_at: now,
    };
    let detail = format!("push subscription set: {}", sub.origin);
    let replaced = s.set_push_subscription(&record, &device.user, &detail)?;
    tracing::info!(device = %device.id, origin = %sub.origin, replaced, "push subscription set");
    Ok(replaced)
}

/// Removes `device`'s subscription. `false` when it had none.
///
/// # Errors
/// [`Error::Store`].
pub fn remove(s: &dyn Store, device: &DeviceRecord, now: Millis) -> Result<bool> {
    let removed = s.delete_push_subscription(
        &device.id,
        None,
        "push subscription removed by the device",
        now,
    )?;
    if removed {
        tracing::info!(device = %device.id, "push subscription removed by the device");
    }
    Ok(removed)
}

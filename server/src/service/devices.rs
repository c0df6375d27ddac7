//! Devices: checking a signed device request (known, active, fresh, signature, one-time nonce),
//! the parsed-key cache, and listing and revoking a user's devices.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use pushauth_proto::names::check_id;
use pushauth_proto::{DevicePublicKey, MAX_CLOCK_SKEW_SECS};

use super::keys::RpCaller;
use super::{Error, Result};
use crate::bounds::SignatureFailures;
use crate::clock::{self, Millis};
use crate::store::{DeviceRecord, NonceRefused, RequestNonce, Store};

/// Until when a request's nonce must be remembered (Unix milliseconds), for a request stamped
/// `ts` (Unix seconds). A replay is refused by the timestamp check once `ts` is more than
/// [`MAX_CLOCK_SKEW_SECS`] old on the replica that gets it; the sweeper that forgets nonces
/// may run on another replica whose clock is ahead. Remembering until `ts` plus twice the skew
/// (plus a second for rounding) keeps a nonce for every replica whose clock is up to the skew
/// behind the sweeper's. With once the skew, a sweeper ahead by more than a second forgot a
/// nonce that a replica behind it still accepted (attack review r10).
fn nonce_valid_until(ts: i64) -> Millis {
    (ts + 2 * MAX_CLOCK_SKEW_SECS + 1) * 1000
}

/// A signed device request as received (`Authorization: PushAuth`), parsed but not yet checked.
/// [`SignedRequest::verify`] checks it inside the store job that then serves the request, so a
/// device request costs one thread hand-off, not two.
#[derive(Debug)]
pub struct SignedRequest {
    /// The device it claims to come from.
    pub device: String,
    /// The one-time nonce.
    pub nonce: String,
    /// The signature (base64url) over `message`.
    pub sig: String,
    /// The request's timestamp, in Unix seconds.
    pub ts: i64,
    /// The signed bytes (method, path and query, ts, nonce, body).
    pub message: Vec<u8>,
    /// What the request was, for the audit log (`request GET /v1/...`).
    pub detail: String,
    /// The client's address, for aggregating failed signatures.
    pub source: String,
}

/// A device request whose signature holds, with its nonce not yet spent
/// ([`SignedRequest::check`]). The request may act only through [`CheckedRequest::spend`], or
/// through a store operation that spends [`CheckedRequest::nonce`] in its own statement or
/// transaction ([`Store::answer_spending`], [`Store::device_challenges_spending`]); a path
/// that refuses the request before such an operation still spends the nonce, so that a replay
/// is answered as one whatever its body.
#[derive(Debug)]
pub struct CheckedRequest {
    /// The device as the check found it (its key may come from a replica's cache; whether it
    /// may act is decided where the nonce is spent).
    pub device: DeviceRecord,
    /// The request's nonce, for the operation that spends it.
    pub nonce: RequestNonce,
}

impl CheckedRequest {
    /// Spends the nonce on its own: the device as it is now.
    ///
    /// # Errors
    /// [`Error::ReplayedNonce`], [`Error::DeviceRevoked`], [`Error::UnknownDevice`],
    /// [`Error::Store`].
    pub fn spend(&self, s: &dyn Store) -> Result<DeviceRecord> {
        match s.spend_request_nonce(&self.nonce, clock::now_ms())? {
            Ok(device) => Ok(*device),
            Err(refused) => Err(nonce_refused(refused)),
        }
    }
}

/// The error for a request whose nonce the store refused.
pub fn nonce_refused(refused: NonceRefused) -> Error {
    match refused {
        NonceRefused::Replayed => Error::ReplayedNonce,
        NonceRefused::Revoked => Error::DeviceRevoked,
        NonceRefused::Unknown => Error::UnknownDevice,
    }
}

impl SignedRequest {
    /// Checks the request and spends its nonce ([`SignedRequest::check`], then
    /// [`CheckedRequest::spend`]): the device as it is now.
    ///
    /// # Errors
    /// As [`SignedRequest::check`] and [`CheckedRequest::spend`].
    pub fn verify(self, s: &dyn Store, failures: &SignatureFailures) -> Result<DeviceRecord> {
        self.check(s, failures)?.spend(s)
    }

    /// Checks the request (runs on a store thread): known device, not revoked (as far as the
    /// key's cache knows), fresh timestamp, valid signature. A signature that does not verify
    /// is counted in `failures` (at most one audit row a minute per device and address). The
    /// nonce is left for the operation the request asks for ([`CheckedRequest`]).
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::DeviceRevoked`], [`Error::StaleTimestamp`],
    /// [`Error::BadSignature`], [`Error::Store`].
    pub fn check(self, s: &dyn Store, failures: &SignatureFailures) -> Result<CheckedRequest> {
        // The key may come from a cache (it never changes for an id); whether the device may
        // act is read afresh with the nonce, below, once the signature holds: nothing is
        // written for a request that is not the device's.
        let device = s.device_key(&self.device)?.ok_or(Error::UnknownDevice)?;
        if !device.is_active() {
            return Err(Error::DeviceRevoked);
        }
        let now = clock::now_ms();
        if (self.ts - now.div_euclid(1000)).abs() > MAX_CLOCK_SKEW_SECS {
            return Err(Error::StaleTimestamp(format!(
                "request timestamp is more than {MAX_CLOCK_SKEW_SECS} seconds from the server's clock; check the device's time"
            )));
        }
        if device_key(&device)?
            .verify_b64(&self.message, &self.sig)
            .is_err()
        {
            // The key may be a replica's cached copy of a device revoked since: read it afresh
            // (a read, like the one the cache saves) so that a revoked device is refused as
            // such and never counted (attack review r11).
            let current = s.get_device(&device.id)?.ok_or(Error::UnknownDevice)?;
            if !current.is_active() {
                return Err(Error::DeviceRevoked);
            }
            failures.record(s, &current, &self.source, None, self.detail);
            return Err(Error::BadSignature("the request signature does not verify"));
        }
        Ok(CheckedRequest {
            nonce: RequestNonce {
                device_id: device.id.clone(),
                alg: device.alg.clone(),
                public_key: device.public_key.clone(),
                nonce: self.nonce,
                valid_until: nonce_valid_until(self.ts),
            },
            device,
        })
    }
}

/// Parsed device keys by their stored text. Parsing decompresses the curve point (Ed25519: a
/// field square root, a sizeable part of a verification; ES256 checks the point is on the curve), and each login checks up to three
/// signatures by the same key. Text to key is a pure function, so the cache never goes stale.
static PARSED_KEYS: LazyLock<Mutex<HashMap<(String, String), DevicePublicKey>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Entries kept before the cache starts over (a few hundred bytes each).
const PARSED_KEYS_MAX: usize = 4096;

/// The stored public key of a device.
///
/// # Errors
/// [`Error::Internal`] when the stored key does not parse.
pub fn device_key(device: &DeviceRecord) -> Result<DevicePublicKey> {
    let lookup = (device.alg.clone(), device.public_key.clone());
    if let Some(key) = PARSED_KEYS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&lookup)
    {
        return Ok(key.clone());
    }
    let key = DevicePublicKey::from_wire(&device.alg, &device.public_key).map_err(|e| {
        Error::Internal(format!(
            "stored key of device {} is unusable: {e}",
            device.id
        ))
    })?;
    let mut cache = PARSED_KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= PARSED_KEYS_MAX {
        cache.clear();
    }
    cache.insert(lookup, key.clone());
    Ok(key)
}

/// All devices of a user, revoked ones included.
///
/// # Errors
/// [`Error::UnknownUser`] for a user never seen, [`Error::Store`].
pub fn of_user(s: &dyn Store, user: &str) -> Result<Vec<DeviceRecord>> {
    s.user_devices(user)?.ok_or(Error::UnknownUser)
}

/// A user's active devices, for a relying party with `user` in scope.
///
/// # Errors
/// [`Error::Forbidden`] out of scope, as [`of_user`] otherwise.
pub fn active_for_rp(s: &dyn Store, rp: &RpCaller, user: &str) -> Result<Vec<DeviceRecord>> {
    rp.require_user(user, "list the devices of")?;
    let mut devices = of_user(s, user)?;
    devices.retain(DeviceRecord::is_active);
    Ok(devices)
}

/// Revokes a device (the row stays, for the audit trail); `actor` is recorded (`admin`, `cli`,
/// `rp:<id>`). Returns the device as revoked.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id, [`Error::Store`].
pub fn revoke(s: &dyn Store, id: &str, actor: &str, now: Millis) -> Result<DeviceRecord> {
    check_id("device", id).map_err(|_| Error::NotFound("device"))?;
    let device = s
        .revoke_device(id, actor, now)?
        .ok_or(Error::NotFound("device"))?;
    tracing::info!(device = %device.id, user = %device.user, %actor, "device revoked");
    Ok(device)
}

/// Revokes one of `user`'s devices for a relying party with the `enroll` right and the user in
/// scope. Another user's device is "not found", as if it did not exist.
///
/// # Errors
/// [`Error::Forbidden`], [`Error::NotFound`], [`Error::Store`].
pub fn revoke_for_rp(
    s: &dyn Store,
    rp: &RpCaller,
    user: &str,
    id: &str,
    now: Millis,
) -> Result<DeviceRecord> {
    rp.require_enroll(user)?;
    check_id("device", id).map_err(|_| Error::NotFound("device"))?;
    super::keys::atomically_for(s, rp, |s| {
        match s.get_device(id)? {
            Some(d) if d.user == user => {}
            _ => return Err(Error::NotFound("device")),
        }
        revoke(s, id, &format!("rp:{}", rp.rp_id), now)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nonce outlives the replay window of every replica whose clock is at most the skew
    /// behind the sweeping replica's: the sweeper (clock `sweeper`) deletes it only after
    /// `valid_until`, and a replica (clock `replica`) accepts `ts` while its clock's second is
    /// within the skew of `ts`.
    #[test]
    fn a_nonce_is_kept_while_any_replica_within_the_skew_accepts_its_timestamp() {
        let ts = 1_800_000_000;
        let skew_ms = MAX_CLOCK_SKEW_SECS * 1000;
        let valid_until = nonce_valid_until(ts);
        let accepting = (ts - MAX_CLOCK_SKEW_SECS) * 1000..=(ts + MAX_CLOCK_SKEW_SECS) * 1000 + 999;
        for replica in accepting.step_by(997) {
            for ahead in [0, 1, 1_001, skew_ms / 2, skew_ms] {
                let sweeper = replica + ahead;
                // The sweep deletes `valid_until < now`.
                assert!(
                    valid_until >= sweeper,
                    "a sweeper {ahead} ms ahead forgets the nonce while a replica at {replica} accepts it"
                );
            }
        }
    }
}

//! Caller authentication: relying-party API keys, the admin token, and signed device requests
//! (with timestamp and one-time nonce checks).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, Uri};
use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::wire::ErrorCode;
use pushauth_proto::{DevicePublicKey, MAX_CLOCK_SKEW_SECS};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::SharedState;
use crate::bounds::SignatureFailures;
use crate::clock;
use crate::error::ApiError;
use crate::store::{DeviceRecord, Store};

/// The relying-party id recorded for requests made with the admin token.
pub const ADMIN_RP: &str = "admin";

/// SHA-256 of a secret, the only form in which API key secrets are stored.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares through hashes so the time taken says nothing about length or content.
fn secret_eq(given: &str, expected: &str) -> bool {
    bool::from(hash_secret(given).ct_eq(&hash_secret(expected)))
}

/// A request made with a valid relying-party API key (or the admin token), with what that
/// relying party may do.
#[derive(Debug, Clone)]
pub struct RpCaller {
    pub rp_id: String,
    /// User patterns it may act for ([`crate::rights`]).
    pub users: Vec<String>,
    /// May request enrollment links and revoke devices of users in scope.
    pub enroll: bool,
    /// May enroll a user without an active device.
    pub bootstrap: bool,
}

impl RpCaller {
    /// The admin token used as a relying party: every right.
    fn admin() -> RpCaller {
        RpCaller {
            rp_id: ADMIN_RP.to_owned(),
            users: vec!["*".to_owned()],
            enroll: true,
            bootstrap: true,
        }
    }

    /// True when this relying party may act for `user`.
    pub fn may_act_for(&self, user: &str) -> bool {
        crate::rights::user_in_scope(&self.users, user)
    }

    /// `forbidden` unless `user` is in scope; `verb` completes "this relying party may not …".
    pub fn require_user(&self, user: &str, verb: &str) -> Result<(), ApiError> {
        if self.may_act_for(user) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this relying party may not {verb} user {user:?}"),
            ))
        }
    }

    /// `forbidden` unless this relying party has the `enroll` right and `user` is in scope.
    pub fn require_enroll(&self, user: &str) -> Result<(), ApiError> {
        if !self.enroll {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this relying party may not enroll or revoke devices (it lacks the enroll right)",
            ));
        }
        self.require_user(user, "enroll or revoke devices of")
    }
}

impl FromRequestParts<SharedState> for RpCaller {
    type Rejection = ApiError;

    /// Looks the key up on every request (no cache): a relying party revoked or rotated, even
    /// by the CLI on the data directory while the server runs, is refused at once.
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        if secret_eq(key, &state.config.admin_token) {
            return Ok(RpCaller::admin());
        }
        let (rp_id, secret) = key.split_once('.').ok_or_else(ApiError::unauthorized)?;
        if rp_id.is_empty() || rp_id.len() > 64 {
            return Err(ApiError::unauthorized());
        }
        let id = rp_id.to_owned();
        let rp = state
            .db(move |s| s.get_relying_party(&id))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        // Compare first, so that a revoked key and a wrong one take the same time.
        let key_ok = bool::from(hash_secret(secret).ct_eq(&rp.key_hash));
        if !key_ok || rp.revoked_at.is_some() {
            return Err(ApiError::unauthorized());
        }
        Ok(RpCaller {
            rp_id: rp.id,
            users: rp.users,
            enroll: rp.enroll,
            bootstrap: rp.bootstrap,
        })
    }
}

/// The TCP peer of a request (`ip:port`), when the server records it (it serves with
/// `ConnectInfo`); `None` otherwise, never a failure.
#[derive(Debug, Clone)]
pub struct PeerAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A request made with the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller;

impl FromRequestParts<SharedState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        match bearer(&parts.headers) {
            Some(token) if secret_eq(token, &state.config.admin_token) => Ok(AdminCaller),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// A signed device request as received, parsed but not yet checked. [`DeviceRequest::verify`]
/// checks it inside the store job that then serves the request, so a device request costs one
/// thread hand-off, not two.
#[derive(Debug)]
pub struct DeviceRequest {
    auth: DeviceAuth,
    ts: i64,
    message: Vec<u8>,
    detail: String,
    /// The client's address, for aggregating failed signatures.
    source: String,
}

impl DeviceRequest {
    /// Parses the `Authorization: PushAuth` header and builds the signed message over method,
    /// path-and-query as received, ts, nonce and body. `peer` is the client's address.
    pub fn parse(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        peer: SocketAddr,
    ) -> Result<DeviceRequest, ApiError> {
        let header_text = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "device requests need an Authorization: PushAuth header",
                )
            })?;
        let auth = DeviceAuth::parse(header_text)
            .map_err(|e| ApiError::new(ErrorCode::Unauthorized, e.to_string()))?;
        let ts = auth
            .ts_secs()
            .map_err(|e| ApiError::new(ErrorCode::StaleTimestamp, e.to_string()))?;
        let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        let message = auth.message(method.as_str(), path_and_query, body);
        Ok(DeviceRequest {
            auth,
            ts,
            message,
            detail: format!("request {method} {}", uri.path()),
            // One client per IPv6 /64, as the connection caps count them (issue 9 item 12).
            source: crate::conn::client_label(peer.ip()),
        })
    }

    /// The client's address as text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The device the request claims to come from (not yet verified).
    pub fn claimed_device(&self) -> &str {
        &self.auth.device
    }

    /// Checks the request (runs on a store thread): known device, not revoked, fresh
    /// timestamp, valid signature, then a nonce never seen before. A signature that does not
    /// verify is counted in `failures` (at most one audit row a minute per device and address).
    pub fn verify(
        self,
        s: &dyn Store,
        failures: &SignatureFailures,
    ) -> Result<DeviceRecord, ApiError> {
        let DeviceRequest {
            auth,
            ts,
            message,
            detail,
            source,
        } = self;
        let device = s
            .get_device(&auth.device)?
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownDevice, "no such device"))?;
        if !device.is_active() {
            return Err(ApiError::new(
                ErrorCode::DeviceRevoked,
                "this device was revoked; enroll it again",
            ));
        }
        let now = clock::now_ms();
        if (ts - now.div_euclid(1000)).abs() > MAX_CLOCK_SKEW_SECS {
            return Err(ApiError::new(
                ErrorCode::StaleTimestamp,
                format!(
                    "request timestamp is more than {MAX_CLOCK_SKEW_SECS} seconds from the server's clock; check the device's time"
                ),
            ));
        }
        if device_key(&device)?
            .verify_b64(&message, &auth.sig)
            .is_err()
        {
            failures.record(s, &device, &source, None, detail);
            return Err(ApiError::new(
                ErrorCode::BadSignature,
                "the request signature does not verify",
            ));
        }
        // A replay is refused by the timestamp check once ts is more than the skew old, so
        // the nonce only needs remembering until then (plus a second for rounding).
        let valid_until = (ts + MAX_CLOCK_SKEW_SECS + 1) * 1000;
        if !s.use_device_nonce(&device.id, &auth.nonce, now, valid_until)? {
            return Err(ApiError::new(
                ErrorCode::ReplayedNonce,
                "this request nonce was used before",
            ));
        }
        Ok(device)
    }
}

/// Verifies a signed device request on its own (see [`DeviceRequest`]).
pub async fn verify_device(
    state: &SharedState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    peer: SocketAddr,
) -> Result<DeviceRecord, ApiError> {
    let request = DeviceRequest::parse(method, uri, headers, body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    state.db_try(move |s| request.verify(s, &failures)).await
}

/// Parsed device keys by their stored text. Parsing decompresses the curve point (a field
/// square root, a sizeable part of a verification), and each login checks up to three
/// signatures by the same key. Text to key is a pure function, so the cache never goes stale.
static PARSED_KEYS: LazyLock<Mutex<HashMap<(String, String), DevicePublicKey>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Entries kept before the cache starts over (a few hundred bytes each).
const PARSED_KEYS_MAX: usize = 4096;

/// The stored public key of a device.
pub fn device_key(device: &DeviceRecord) -> Result<DevicePublicKey, ApiError> {
    let lookup = (device.alg.clone(), device.public_key.clone());
    if let Some(key) = PARSED_KEYS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&lookup)
    {
        return Ok(key.clone());
    }
    let key = DevicePublicKey::from_wire(&device.alg, &device.public_key).map_err(|e| {
        tracing::error!(device = %device.id, error = %e, "stored device key is unusable");
        ApiError::internal()
    })?;
    let mut cache = PARSED_KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= PARSED_KEYS_MAX {
        cache.clear();
    }
    cache.insert(lookup, key.clone());
    Ok(key)
}

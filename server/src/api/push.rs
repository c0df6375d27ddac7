//! Web Push endpoints: the VAPID public key (public, unauthenticated: the app subscribes with
//! it), and a device's push subscription, set or removed over the signed device API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::DeviceRequest;
use super::{parse_json, ApiError, RawBody};
use crate::clock;
use crate::service::subscriptions;
use crate::state::SharedState;

/// `GET /v1/push/vapid` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VapidKeyView {
    /// The VAPID public key: base64url of the 65-byte uncompressed P-256 point (the app's
    /// `applicationServerKey`).
    pub public_key: String,
}

/// The keys of a push subscription, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    /// base64url of the browser's 65-byte uncompressed P-256 point.
    pub p256dh: String,
    /// base64url of the 16-byte authentication secret.
    pub auth: String,
}

/// `PUT /v1/device/push-subscription` body: `{"endpoint","keys":{"p256dh","auth"}}`
/// (`PushSubscription.toJSON()`; its `expirationTime`, if sent, is ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSubscription {
    /// The push service URL of the subscription.
    pub endpoint: String,
    /// Its keys.
    pub keys: SubscriptionKeys,
    /// Ignored (the browser's own expiry hint, often null).
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<serde_json::Value>,
}

/// `PUT /v1/device/push-subscription` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionSet {
    /// The push service's origin the pushes will go to.
    pub origin: String,
    /// A previous, different subscription of this device was replaced (`false` for the same
    /// subscription sent again, which changes nothing).
    pub replaced: bool,
}

/// `DELETE /v1/device/push-subscription` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRemoved {
    /// The device had a subscription (now gone).
    pub removed: bool,
}

/// `GET /v1/push/vapid`: the VAPID public key.
pub async fn vapid(State(state): State<SharedState>) -> Json<VapidKeyView> {
    Json(VapidKeyView {
        public_key: state.web_push.public_key().to_owned(),
    })
}

/// `PUT /v1/device/push-subscription` (signed): sets this device's one subscription, replacing
/// any. The body is checked (allowed origin, keys) only for a caller whose signature holds.
pub async fn set_subscription(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<SubscriptionSet>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let checked = parse_json::<SetSubscription>(&body).and_then(|req| {
        subscriptions::check(
            state.web_push.allow(),
            &req.endpoint,
            &req.keys.p256dh,
            &req.keys.auth,
        )
        .map_err(ApiError::from)
    });
    let (origin, replaced) = state
        .run(move |s| {
            let device = request.verify(s, &failures)?;
            let checked = checked?;
            let origin = checked.origin.clone();
            let replaced = subscriptions::set(s, &device, checked, clock::now_ms())?;
            Ok::<_, ApiError>((origin, replaced))
        })
        .await?;
    Ok(Json(SubscriptionSet { origin, replaced }))
}

/// `DELETE /v1/device/push-subscription` (signed): removes this device's subscription.
pub async fn remove_subscription(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<SubscriptionRemoved>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let removed = state
        .run(move |s| {
            let device = request.verify(s, &failures)?;
            Ok::<_, ApiError>(subscriptions::remove(s, &device, clock::now_ms())?)
        })
        .await?;
    Ok(Json(SubscriptionRemoved { removed }))
}

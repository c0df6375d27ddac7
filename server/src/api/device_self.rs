//! Device endpoints of issue 11 for the web authenticator: the unauthenticated enrollment-link
//! lookup (`GET /v1/device/enrollment?token=…`, read-only) and signed self-removal
//! (`DELETE /v1/device`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::DeviceRequest;
use super::{ApiError, Params, RawBody};
use crate::clock;
use crate::service::device_self;
use crate::state::SharedState;

/// `GET /v1/device/enrollment?token=…`: what an enrollment link is for, shown before the
/// person enrolls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentInfo {
    /// The user the link enrolls a device for.
    pub user: String,
    /// The server's base URL (`public_url`), the one the device will talk to.
    pub server: String,
    /// RFC 3339 time the link stops working.
    pub expires_at: String,
}

/// `DELETE /v1/device`: the device that removed itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRemoved {
    /// The device's id.
    pub device_id: String,
    /// Its user.
    pub user: String,
    /// RFC 3339 time of the revocation.
    pub revoked_at: String,
}

/// `GET /v1/device/enrollment?token=…` (unauthenticated, read-only): the link's user, the
/// server and the expiry; `unknown_enrollment` (404) alike for unknown, used and expired links.
pub async fn enrollment(
    State(state): State<SharedState>,
    params: Params,
) -> Result<Json<EnrollmentInfo>, ApiError> {
    let token = params.0.get("token").cloned().unwrap_or_default();
    let now = clock::now_ms();
    let link = state
        .run(move |s| device_self::lookup_link(s, &token, now))
        .await?;
    Ok(Json(EnrollmentInfo {
        user: link.user,
        server: state.base_url.clone(),
        expires_at: clock::rfc3339(link.expires_at),
    }))
}

/// `DELETE /v1/device` (signed): the calling device revokes itself.
pub async fn remove(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<DeviceRemoved>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let now = clock::now_ms();
    let device = state
        .run(move |s| {
            let device = request.verify(s, &failures)?;
            device_self::remove_self(s, &device, now)
        })
        .await?;
    Ok(Json(DeviceRemoved {
        device_id: device.id,
        user: device.user,
        revoked_at: clock::rfc3339(device.revoked_at.unwrap_or(now)),
    }))
}

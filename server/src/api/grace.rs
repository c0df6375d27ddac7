//! Ending grace windows (issue 12): the device's signed `DELETE /v1/device/grace` ("end all
//! grace windows") and the administrator's `DELETE /v1/admin/users/{user}/grace`. Both end
//! every window of the user at once; each is audited as `grace_ended`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use pushauth_proto::wire::GraceEnded;

use super::extract::DeviceRequest;
use super::{AdminCaller, ApiError, RawBody};
use crate::clock;
use crate::service::grace;
use crate::state::SharedState;

/// `DELETE /v1/device/grace` (signed): ends every grace window of the calling device's user.
pub async fn device_end(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<GraceEnded>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let now = clock::now_ms();
    let user = state
        .run(move |s| {
            let device = request.verify(s, &failures)?;
            grace::end(s, &device.user, "the device", Some(&device.id), now)?;
            Ok::<_, ApiError>(device.user)
        })
        .await?;
    Ok(Json(GraceEnded { user, ended: true }))
}

/// `DELETE /v1/admin/users/{user}/grace`: ends every grace window of the user; audited with
/// the caller's address (the admin token is shared). 404 `unknown_user` for a user never seen.
pub async fn admin_end(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(user): Path<String>,
) -> Result<Json<GraceEnded>, ApiError> {
    let name = user.clone();
    let now = clock::now_ms();
    let by = format!("admin API from {}", peer.ip());
    state
        .run(move |s| grace::end(s, &name, &by, None, now))
        .await?;
    Ok(Json(GraceEnded { user, ended: true }))
}

//! Ending grace windows (issue 12): the device's signed `DELETE /v1/device/grace` ("end all
//! grace windows") and the administrator's `DELETE /v1/admin/users/{user}/grace`. Both end
//! every window of the user at once; each is audited as `grace_ended` and announced to the
//! user's devices as a `grace_ended` notice.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use pushauth_proto::wire::{GraceEnded, NOTICE_GRACE_ENDED};

use super::extract::DeviceRequest;
use super::{AdminCaller, ApiError, RawBody};
use crate::clock;
use crate::service::grace::{self, EndedBy};
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
    let (user, devices) = state
        .run(move |s| {
            let device = request.verify(s, &failures)?;
            let via = format!("device:{}", device.id);
            let who = EndedBy {
                by: "the device",
                via: &via,
                device: Some(&device.id),
                source: None,
            };
            let devices = grace::end(s, &device.user, who, now)?;
            Ok::<_, ApiError>((device.user, devices))
        })
        .await?;
    state.announce_notice(&user, NOTICE_GRACE_ENDED, &devices);
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
    let source = peer.ip().to_string();
    let devices = state
        .run(move |s| {
            let who = EndedBy {
                by: &by,
                via: "admin",
                device: None,
                source: Some(&source),
            };
            grace::end(s, &name, who, now)
        })
        .await?;
    state.announce_notice(&user, NOTICE_GRACE_ENDED, &devices);
    Ok(Json(GraceEnded { user, ended: true }))
}

//! Device endpoints: enroll (unsigned, proof of possession), and the signed API to list,
//! acknowledge and answer challenges and to read notices. Each signed request is checked in
//! the same store job as its own work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use pushauth_proto::wire::{
    ChallengeStatus, DeviceResponse, EnrollRequest, EnrollResponse, NoticeList, PendingList,
};
use pushauth_proto::ChallengeState;
use tokio::time::Instant;

use super::extract::DeviceRequest;
use super::rp::instant_at;
use super::views::{challenge_status, notice, pending_view};
use super::{ApiError, JsonBody, Params, PeerAddr, RawBody};
use crate::clock;
use crate::service::challenges::{self, FailedSignatures, OpenChallenges};
use crate::service::{enrollments, notices};
use crate::state::SharedState;

/// `POST /v1/device/enroll`: the link is read (one job), the proof of possession checked off
/// the store thread, then the link redeemed and the user's other devices found (one job).
pub async fn enroll(
    State(state): State<SharedState>,
    PeerAddr(peer): PeerAddr,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let now = clock::now_ms();
    let token = req.token.clone();
    let link = state
        .run(move |s| enrollments::open_link(s, &token, now))
        .await?;
    let device = enrollments::prove(&req, &link.user)?;
    let source = peer.map(|p| p.to_string());
    let config = state.config.offline;
    let sealing = state.offline_key.clone();
    let (enrolled, offline) = state
        .run(move |s| {
            let enrolled = enrollments::redeem(s, &req.token, &device, source.as_deref(), now)?;
            // Issue 12: the device's offline secret, shown only in this answer. A failure
            // here leaves the device without offline codes, never without its enrollment.
            let offline =
                crate::service::offline::issue(s, &config, &sealing, &enrolled.device.id, now)
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "no offline secret for the new device");
                        None
                    });
            Ok::<_, ApiError>((enrolled, offline))
        })
        .await?;
    state.announce_binding(&enrolled.device, &enrolled.others);
    Ok(Json(EnrollResponse {
        device_id: enrolled.device.id,
        user: enrolled.device.user,
        offline,
    }))
}

/// `GET /v1/device/notices[?kinds=all]` (signed): what the caller's user should know from the
/// last 30 days, newest first: the bindings (without the caller itself), so the person sees
/// every device added to them, and with `kinds=all` every other kind (backup codes used or
/// issued…). Without it only `device_added`, the one kind older clients can read.
pub async fn notices(
    State(state): State<SharedState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Params,
    RawBody(body): RawBody,
) -> Result<Json<NoticeList>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let all = match params.0.get("kinds").map(String::as_str) {
        None | Some("device_added") => false,
        Some("all") => true,
        Some(_) => return Err(ApiError::malformed("kinds must be all or device_added")),
    };
    let failures = Arc::clone(&state.signature_failures);
    let now = clock::now_ms();
    let found = state
        .run(move |s| {
            let caller = request.verify(s, &failures)?;
            notices::for_device(s, &caller, now, all)
        })
        .await?;
    Ok(Json(NoticeList {
        notices: found.into_iter().map(notice).collect(),
    }))
}

/// The wire list of a device's open challenges, after the bookkeeping for those it expired.
/// `device`: the authenticated device they are listed to.
fn pending_list(state: &SharedState, device: &str, found: OpenChallenges) -> (bool, PendingList) {
    let OpenChallenges { open, expired } = found;
    state.expired(&expired);
    // Listed to an authenticated device: its answer goes ahead here (`shown.rs`).
    let now = clock::now_ms();
    for (c, _) in &open {
        state
            .waiters
            .shown_here()
            .shown(&c.id, device, c.expires_at, now);
    }
    let any_pending = open.iter().any(|(c, _)| c.state == ChallengeState::Pending);
    let challenges = open
        .iter()
        .map(|(c, name)| pending_view(c, name.clone()))
        .collect();
    (any_pending, PendingList { challenges })
}

/// `GET /v1/device/challenges?wait=SECS`: the device's open challenges. Answers at once if one
/// is `pending`; else after a challenge for this device is created or changes state, or the wait
/// ends.
pub async fn list(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    params: Params,
    RawBody(body): RawBody,
) -> Result<Json<PendingList>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let wait = params.wait_secs();
    // Subscribe before reading the store, to the claimed device: the same job verifies the
    // request before it reads anything, and an unverified caller gets only an error.
    let mut sub = state.waiters.watch_device(request.claimed_device());
    let now = clock::now_ms();
    let (device, found) = state
        .run(move |s| {
            // The nonce is spent by the read itself (one statement on PostgreSQL).
            let request = request.check(s, &failures)?;
            let found = challenges::open_for_request(s, &request, now)?;
            Ok::<_, ApiError>((request.device, found))
        })
        .await?;
    let wake_at: Vec<_> = found.open.iter().map(|(c, _)| c.expires_at).collect();
    let (any_pending, list) = pending_list(&state, &device.id, found);
    let wait = wait?;
    if any_pending || wait == 0 || state.stopping() {
        return Ok(Json(list));
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    let wake = wake_at
        .into_iter()
        .map(instant_at)
        .fold(deadline, Instant::min);
    drop(list);
    state.wait_for(sub.changed(), wake).await;
    let now = clock::now_ms();
    let device_id = device.id.clone();
    let found = state
        .run(move |s| challenges::open_for_device(s, &device.id, now))
        .await?;
    Ok(Json(pending_list(&state, &device_id, found).1))
}

/// `POST /v1/device/challenges/{id}/ack`: pending → acknowledged.
pub async fn ack(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<ChallengeStatus>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let claimed = request.claimed_device().to_owned();
    let outcome = state
        .run_announced(&id.clone(), Some(&claimed), move |s| {
            // The nonce is spent with the compare-and-set, or on its own when the challenge's
            // terms refuse the request first.
            let request = request.check(s, &failures)?;
            Ok::<_, ApiError>(challenges::acknowledge(s, &request, &id, clock::now_ms()))
        })
        .await?;
    Ok(Json(challenge_status(&state.settle(outcome)?)))
}

/// `POST /v1/device/challenges/{id}/response`: the signed answer that decides the challenge.
/// Request check, read, answer checks, signature and compare-and-set run as one store job.
pub async fn respond(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<ChallengeStatus>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    // A body that does not parse is one more refusal of the answer (it spends the nonce there).
    let req = serde_json::from_slice::<DeviceResponse>(&body)
        .map_err(|e| crate::service::Error::Invalid(format!("bad JSON body: {e}")));
    let limits = state.config.limits;
    let claimed = request.claimed_device().to_owned();
    let outcome = state
        .run_announced(&id.clone(), Some(&claimed), move |s| {
            let source = request.0.source.clone();
            // The nonce is spent with the answer's compare-and-set, or on its own when the
            // answer is refused first.
            let request = request.check(s, &failures)?;
            let failed = FailedSignatures {
                failures: &failures,
                source: &source,
            };
            let now = clock::now_ms();
            Ok::<_, ApiError>(challenges::answer(
                s, &request, &id, req, &limits, failed, now,
            ))
        })
        .await?;
    Ok(Json(challenge_status(&state.settle(outcome)?)))
}

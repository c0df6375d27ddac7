//! Device endpoints: enroll (unsigned, proof of possession), and the signed API to list,
//! acknowledge and answer challenges.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use pushauth_proto::challenge::decide;
use pushauth_proto::signing::{enroll_message, response_message, ResponseFields};
use pushauth_proto::wire::{
    ChallengeStatus, DeviceNotice, DeviceResponse, EnrollRequest, EnrollResponse, ErrorCode,
    NoticeList, PendingChallenge, PendingList,
};
use pushauth_proto::{b64, random, ChallengeState, Decision, DevicePublicKey};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::rp::{instant_at, wrong_state};
use super::{challenge_status, parse_json, printable, JsonBody, Params, RawBody};
use crate::app::SharedState;
use crate::auth::{device_key, verify_device, DeviceRequest, PeerAddr, ADMIN_RP};
use crate::bounds::SignatureFailures;
use crate::clock;
use crate::error::ApiError;
use crate::limits;
use crate::store::{AnswerRecord, Cas, ChallengeRecord, DeviceRecord, NewDevice, Redeem, Store};
use crate::webhook;

/// Longest device name, in characters.
pub const MAX_DEVICE_NAME: usize = 64;

fn redeem_error(outcome: &Redeem) -> ApiError {
    match outcome {
        Redeem::Used => ApiError::new(
            ErrorCode::EnrollmentUsed,
            "this enrollment link was already used",
        ),
        Redeem::Expired => ApiError::new(
            ErrorCode::EnrollmentExpired,
            "this enrollment link expired; ask for a new one",
        ),
        Redeem::Refused(refusal) => (*refusal).into(),
        _ => ApiError::new(ErrorCode::UnknownEnrollment, "no such enrollment token"),
    }
}

/// `POST /v1/device/enroll`.
pub async fn enroll(
    State(state): State<SharedState>,
    PeerAddr(peer): PeerAddr,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let token_hash: [u8; 32] = Sha256::digest(req.token.as_bytes()).into();
    let now = clock::now_ms();
    let enrollment = state
        .db(move |s| s.get_enrollment(&token_hash))
        .await?
        .ok_or_else(|| redeem_error(&Redeem::Unknown))?;
    if enrollment.used {
        return Err(redeem_error(&Redeem::Used));
    }
    if now >= enrollment.expires_at {
        return Err(redeem_error(&Redeem::Expired));
    }
    if !printable(&req.name, MAX_DEVICE_NAME) {
        return Err(ApiError::malformed(format!(
            "name must be 1 to {MAX_DEVICE_NAME} printable characters"
        )));
    }
    let public = DevicePublicKey::from_wire(&req.alg, &req.public_key)
        .map_err(|e| ApiError::malformed(e.to_string()))?;
    let proof = enroll_message(&req.token, public.alg().as_str(), &public.to_bytes());
    if public.verify_b64(&proof, &req.proof).is_err() {
        tracing::warn!(user = %enrollment.user, "enrollment proof does not verify");
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            "the proof of possession does not verify",
        ));
    }
    let device = NewDevice {
        id: random::id().map_err(|_| ApiError::internal())?,
        name: req.name,
        alg: public.alg().as_str().to_owned(),
        public_key: public.to_b64(),
    };
    let source = peer.map(|p| p.to_string());
    match state
        .db(move |s| s.redeem_enrollment(&token_hash, &device, source.as_deref(), now))
        .await?
    {
        Redeem::Enrolled(d) => {
            tracing::info!(user = %d.user, device = %d.id, source = ?d.source, via = ?d.via, "device enrolled");
            announce(&state, &d).await;
            Ok(Json(EnrollResponse {
                device_id: d.id,
                user: d.user,
            }))
        }
        other => Err(redeem_error(&other)),
    }
}

/// How far back `GET /v1/device/notices` reports new bindings: 30 days.
pub const NOTICE_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// Wakes the user's other active devices about a new binding: their long-polls return, and the
/// webhook (if configured) is told to wake them, so they fetch `GET /v1/device/notices`.
async fn announce(state: &SharedState, added: &DeviceRecord) {
    let user = added.user.clone();
    let others = match state.db(move |s| s.user_devices(&user)).await {
        Ok(Some(all)) => all
            .into_iter()
            .filter(|d| d.is_active() && d.id != added.id)
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        Ok(None) => Vec::new(),
        Err(_) => return,
    };
    if others.is_empty() {
        return;
    }
    state.waiters.devices_changed(&others);
    if let Some(hook) = &state.webhook {
        webhook::notify(hook, &format!("notice:{}", added.id), &added.user, &others);
    }
}

/// `GET /v1/device/notices` (signed): the bindings of the caller's user in the last 30 days,
/// newest first, without the caller itself, so the person sees every device added to them.
pub async fn notices(
    State(state): State<SharedState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<NoticeList>, ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let since = clock::now_ms().saturating_sub(NOTICE_WINDOW_MS);
    let failures = Arc::clone(&state.signature_failures);
    let (caller, mut devices) = state
        .db_try(move |s| {
            let caller = request.verify(s, &failures)?;
            let devices = s.user_devices(&caller.user)?.unwrap_or_default();
            Ok((caller, devices))
        })
        .await?;
    devices.retain(|d| d.id != caller.id && d.created_at >= since);
    devices.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(Json(NoticeList {
        notices: devices
            .into_iter()
            .map(|d| DeviceNotice {
                kind: "device_added".to_owned(),
                device_id: d.id,
                device_name: d.name,
                at: clock::rfc3339(d.created_at),
                source: d.source,
                via: d.via,
            })
            .collect(),
    }))
}

/// The device's view of a challenge; `rp_name` names the relying party that asked.
fn pending_view(c: &ChallengeRecord, rp_name: Option<String>) -> PendingChallenge {
    PendingChallenge {
        id: c.id.clone(),
        user: c.user.clone(),
        state: c.state,
        context: c.context.clone(),
        context_digest: b64::encode(c.context_digest),
        rp_nonce: b64::encode(&c.rp_nonce),
        created_at: clock::rfc3339(c.created_at),
        expires_at: clock::rfc3339(c.expires_at),
        code_required: c.code.is_some(),
        rp_name,
    }
}

/// The names of the relying parties that asked, read in the store job that found the
/// challenges (requests made with the admin token show as `admin`).
fn with_rp_names(s: &dyn Store, open: &[ChallengeRecord]) -> Result<PendingList, ApiError> {
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut challenges = Vec::with_capacity(open.len());
    for c in open {
        let name = match names.get(&c.rp_id) {
            Some(name) => name.clone(),
            None => {
                let name = if c.rp_id == ADMIN_RP {
                    Some(ADMIN_RP.to_owned())
                } else {
                    s.get_relying_party(&c.rp_id)?.map(|rp| rp.name)
                };
                names.insert(c.rp_id.clone(), name.clone());
                name
            }
        };
        challenges.push(pending_view(c, name));
    }
    Ok(PendingList { challenges })
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
    let (device, (open, expired), list) = state
        .db_try(move |s| {
            let device = request.verify(s, &failures)?;
            let found = s.device_challenges(&device.id, now)?;
            let list = with_rp_names(s, &found.0)?;
            Ok((device, found, list))
        })
        .await?;
    state.expired(&expired);
    let wait = wait?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    let any_pending = open.iter().any(|c| c.state == ChallengeState::Pending);
    if !any_pending && wait > 0 && !state.stopping() {
        let wake = open
            .iter()
            .map(|c| instant_at(c.expires_at))
            .fold(deadline, Instant::min);
        {
            let _waiting = state.metrics.waiting();
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                _ = sub.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = shutdown.changed() => {}
            }
        }
        return open_challenges(&state, &device.id).await.map(Json);
    }
    Ok(Json(list))
}

/// The device's open challenges, after expiring its due ones.
async fn open_challenges(state: &SharedState, device_id: &str) -> Result<PendingList, ApiError> {
    let id = device_id.to_owned();
    let now = clock::now_ms();
    let ((_, expired), list) = state
        .db_try(move |s| {
            let found = s.device_challenges(&id, now)?;
            let list = with_rp_names(s, &found.0)?;
            Ok((found, list))
        })
        .await?;
    state.expired(&expired);
    Ok(list)
}

/// Reads a challenge a device acts on: it must exist and have been sent to this device.
async fn targeted(
    state: &SharedState,
    device_id: &str,
    id: &str,
) -> Result<ChallengeRecord, ApiError> {
    let challenge = state
        .fetch_challenge(id, clock::now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("challenge"))?;
    if !challenge.devices.iter().any(|d| d == device_id) {
        return Err(not_targeted());
    }
    Ok(challenge)
}

fn not_targeted() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "this challenge was not sent to this device",
    )
}

fn expired_error() -> ApiError {
    ApiError::new(ErrorCode::Expired, "the challenge expired")
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
    let device = verify_device(&state, &method, &uri, &headers, &body, peer).await?;
    let current = targeted(&state, &device.id, &id).await?;
    match current.state {
        ChallengeState::Acknowledged => return Ok(Json(challenge_status(&current))),
        ChallengeState::Expired => return Err(expired_error()),
        s if s.is_terminal() => return Err(wrong_state(&current)),
        _ => {}
    }
    let now = clock::now_ms();
    match state.db(move |s| s.acknowledge(&id, now)).await? {
        Cas::Changed(c) => {
            state.changed(&c);
            Ok(Json(challenge_status(&c)))
        }
        Cas::Expired(c) => {
            state.changed(&c);
            Err(expired_error())
        }
        Cas::WrongState(c) if c.state == ChallengeState::Acknowledged => {
            Ok(Json(challenge_status(&c)))
        }
        Cas::WrongState(c) => Err(wrong_state(&c)),
        Cas::Missing => Err(ApiError::not_found("challenge")),
    }
}

/// `POST /v1/device/challenges/{id}/response`: the signed answer that decides the challenge.
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
    let req = parse_json::<DeviceResponse>(&body);
    let lockout = state.config.limits;
    // Request check, read, answer checks, signature and compare-and-set run as one store job;
    // what changed is returned so the waiters can be woken here.
    let (changed, result) = state
        .db_try(move |s| {
            let source = request.source().to_owned();
            let device = request.verify(s, &failures)?;
            let failed = Failed {
                failures: &failures,
                source: &source,
            };
            Ok(answer_job(s, &device, &id, req?, &lockout, &failed))
        })
        .await?;
    if let Some(c) = &changed {
        state.changed(c);
    }
    result.map(|c| Json(challenge_status(&c)))
}

/// What answering did: the challenge if its state changed (answered or found expired), and
/// the reply.
type AnswerOutcome = (
    Option<Box<ChallengeRecord>>,
    Result<Box<ChallengeRecord>, ApiError>,
);

/// Where a failed answer signature is counted.
struct Failed<'a> {
    failures: &'a SignatureFailures,
    source: &'a str,
}

fn answer_job(
    s: &dyn Store,
    device: &DeviceRecord,
    id: &str,
    req: DeviceResponse,
    limits: &crate::config::Limits,
    failed: &Failed<'_>,
) -> AnswerOutcome {
    let now = clock::now_ms();
    let (challenge, just_expired) = match s.get_challenge(id, now) {
        Ok(Some(found)) => found,
        Ok(None) => return (None, Err(ApiError::not_found("challenge"))),
        Err(e) => return (None, Err(e.into())),
    };
    let challenge = Box::new(challenge);
    let changed = just_expired.then(|| challenge.clone());
    if !challenge.devices.contains(&device.id) {
        return (changed, Err(not_targeted()));
    }
    if challenge.state == ChallengeState::Expired {
        return (changed, Err(expired_error()));
    }
    if challenge.state.is_terminal() {
        return (changed, Err(wrong_state(&challenge)));
    }
    if clock::parse_rfc3339(&req.responded_at).is_none() {
        return (
            None,
            Err(ApiError::malformed("responded_at must be RFC 3339 text")),
        );
    }
    let message = response_message(&ResponseFields {
        challenge_id: &challenge.id,
        user: &challenge.user,
        device_id: &device.id,
        rp_nonce: &challenge.rp_nonce,
        context_digest: &challenge.context_digest,
        decision: req.decision,
        code: &req.code,
        responded_at: &req.responded_at,
    });
    let key = match device_key(device) {
        Ok(key) => key,
        Err(e) => return (None, Err(e)),
    };
    if key.verify_b64(&message, &req.signature).is_err() {
        failed.failures.record(
            s,
            device,
            failed.source,
            Some(challenge.id.clone()),
            "response signature".to_owned(),
        );
        return (
            None,
            Err(ApiError::new(
                ErrorCode::BadSignature,
                "the response signature does not verify",
            )),
        );
    }
    let (outcome, reason) = decide(req.decision, challenge.code.as_deref(), &req.code);
    let answer = AnswerRecord {
        device_id: device.id.clone(),
        state: outcome,
        decision: req.decision,
        reason,
        typed_code: req.code,
        responded_at: req.responded_at,
        signature: req.signature,
        lock_user_until: (req.decision == Decision::Report)
            .then(|| limits::lock_until(limits, now)),
    };
    match s.answer(id, &answer, now) {
        Ok(Cas::Changed(c)) => {
            tracing::debug!(challenge = %c.id, device = %device.id, state = %c.state, "challenge answered");
            (Some(c.clone()), Ok(c))
        }
        Ok(Cas::Expired(c)) => (Some(c), Err(expired_error())),
        Ok(Cas::WrongState(c)) => (None, Err(wrong_state(&c))),
        Ok(Cas::Missing) => (None, Err(ApiError::not_found("challenge"))),
        Err(e) => (None, Err(e.into())),
    }
}

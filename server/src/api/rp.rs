//! Relying-party endpoints: list a user's devices, create, read (long-poll) and cancel
//! challenges.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pushauth_proto::challenge::generate_code;
use pushauth_proto::context::validate_context;
use pushauth_proto::wire::{
    ChallengeCreated, ChallengeStatus, CreateChallenge, CreateRpEnrollment, DeviceInfo, DeviceList,
    EnrollmentCreated, ErrorCode, ACTION_ADD_DEVICE,
};
use pushauth_proto::{b64, context_digest, random};
use tokio::time::Instant;

use super::{active_devices, challenge_status, device_info, JsonBody, Params};
use crate::app::SharedState;
use crate::auth::RpCaller;
use crate::clock::{self, Millis};
use crate::enrollment;
use crate::error::ApiError;
use crate::limits;
use crate::store::{Cas, ChallengeRecord, Create, NewChallenge};
use crate::webhook;

/// `GET /v1/users/{user}/devices`: the user's active devices (the user must be in the relying
/// party's scope).
pub async fn user_devices(
    State(state): State<SharedState>,
    rp: RpCaller,
    Path(user): Path<String>,
) -> Result<Json<DeviceList>, ApiError> {
    rp.require_user(&user, "list the devices of")?;
    active_devices(&state, user).await.map(Json)
}

/// `POST /v1/enrollments`: an enrollment link for a user in scope, under the rules of
/// [`crate::enrollment`].
pub async fn create_enrollment(
    State(state): State<SharedState>,
    rp: RpCaller,
    JsonBody(req): JsonBody<CreateRpEnrollment>,
) -> Result<(StatusCode, Json<EnrollmentCreated>), ApiError> {
    let created = enrollment::create_for_rp(&state, &rp, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /v1/users/{user}/devices/{id}`: revokes one of the user's devices (needs the `enroll`
/// right and the user in scope); returns the device as revoked.
pub async fn revoke_user_device(
    State(state): State<SharedState>,
    rp: RpCaller,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<DeviceInfo>, ApiError> {
    rp.require_enroll(&user)?;
    let actor = format!("rp:{}", rp.rp_id);
    let now = clock::now_ms();
    let device = state
        .db_try(move |s| {
            // Another user's device is "not found", as if it did not exist.
            match s.get_device(&id)? {
                Some(d) if d.user == user => {}
                _ => return Err(ApiError::not_found("device")),
            }
            s.revoke_device(&id, &actor, now)?
                .ok_or_else(|| ApiError::not_found("device"))
        })
        .await?;
    tracing::info!(device = %device.id, user = %device.user, rp = %rp.rp_id, "device revoked by a relying party");
    state
        .waiters
        .devices_changed(std::slice::from_ref(&device.id));
    Ok(Json(device_info(&device)))
}

fn secs_to_ms(secs: u64) -> Millis {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// `POST /v1/challenges`.
pub async fn create_challenge(
    State(state): State<SharedState>,
    rp: RpCaller,
    JsonBody(req): JsonBody<CreateChallenge>,
) -> Result<(StatusCode, Json<ChallengeCreated>), ApiError> {
    rp.require_user(&req.user, "push to")?;
    let adds_device = req.context.get("action").map(String::as_str) == Some(ACTION_ADD_DEVICE);
    if adds_device && !req.code {
        return Err(ApiError::malformed(
            "an add_device challenge always uses number matching; drop \"code\": false",
        ));
    }
    validate_context(&req.context)
        .map_err(|e| ApiError::new(ErrorCode::InvalidContext, e.to_string()))?;
    let rp_nonce = b64::decode_array::<32>(&req.rp_nonce, "rp_nonce")
        .map_err(|e| ApiError::malformed(e.to_string()))?;
    let config = &state.config;
    let ttl = req.ttl_secs.unwrap_or(config.default_ttl_secs);
    if ttl == 0 || ttl > config.max_ttl_secs {
        return Err(ApiError::malformed(format!(
            "ttl_secs must be 1 to {}",
            config.max_ttl_secs
        )));
    }
    if req.user.is_empty() {
        return Err(ApiError::malformed("user must not be empty"));
    }
    let code = if req.code {
        Some(generate_code().map_err(|_| ApiError::internal())?)
    } else {
        None
    };
    let now = clock::now_ms();
    let new = NewChallenge {
        id: random::id().map_err(|_| ApiError::internal())?,
        user: req.user,
        rp_id: rp.rp_id,
        context_digest: context_digest(&req.context),
        context: req.context,
        rp_nonce: rp_nonce.to_vec(),
        code,
        requested_devices: req.devices,
        created_at: now,
        expires_at: clock::ceil_to_second(now + secs_to_ms(ttl)),
        window_start: limits::window_start(&config.limits, now),
    };
    let limits = config.limits;
    let created = state
        .db(move |s| s.create_challenge(&new, &|push| limits::check(&limits, push, now)))
        .await?;
    let (challenge, devices) = match created {
        Create::Created { challenge, devices } => (challenge, devices),
        Create::UnknownUser => {
            return Err(ApiError::new(ErrorCode::UnknownUser, "no such user"));
        }
        Create::NoDevice => {
            return Err(ApiError::new(
                ErrorCode::NoDevice,
                "the user has no (matching) active device; enroll one first",
            ));
        }
        Create::Refused(refusal) => {
            tracing::info!(
                code = refusal.code().as_str(),
                "challenge refused by limits"
            );
            return Err(ApiError::new(refusal.code(), refusal.message()));
        }
    };
    state.metrics.challenge("created");
    state.waiters.devices_changed(&challenge.devices);
    if let Some(hook) = &state.webhook {
        webhook::notify(hook, &challenge.id, &challenge.user, &challenge.devices);
    }
    tracing::debug!(challenge = %challenge.id, user = %challenge.user, "challenge created");
    Ok((
        StatusCode::CREATED,
        Json(ChallengeCreated {
            id: challenge.id.clone(),
            user: challenge.user.clone(),
            devices: challenge.devices.clone(),
            device_info: devices.iter().map(device_info).collect(),
            code: challenge.code.clone(),
            expires_at: clock::rfc3339(challenge.expires_at),
            state: challenge.state,
        }),
    ))
}

/// Reads a challenge the caller owns (anyone else's is "not found").
async fn owned(state: &SharedState, rp: &RpCaller, id: &str) -> Result<ChallengeRecord, ApiError> {
    match state.fetch_challenge(id, clock::now_ms()).await? {
        Some(c) if c.rp_id == rp.rp_id => Ok(c),
        _ => Err(ApiError::not_found("challenge")),
    }
}

/// Instant at which a wall-clock time in milliseconds arrives (a little after, so the read that
/// follows sees it as past).
pub fn instant_at(at: Millis) -> Instant {
    let ms = at.saturating_sub(clock::now_ms()).max(0) + 5;
    Instant::now() + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `GET /v1/challenges/{id}?wait=SECS`: answers at once for a terminal challenge, else after
/// its state changes, its expiry arrives (it is then expired) or the wait ends.
pub async fn get_challenge(
    State(state): State<SharedState>,
    rp: RpCaller,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<ChallengeStatus>, ApiError> {
    let wait = params.wait_secs()?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut sub = state.waiters.watch_challenge(&id);
    let challenge = owned(&state, &rp, &id).await?;
    if challenge.state.is_terminal() || wait == 0 || state.stopping() {
        return Ok(Json(challenge_status(&challenge)));
    }
    // Only the expiry is needed while waiting; thousands of waits should not each hold a record.
    let wake = deadline.min(instant_at(challenge.expires_at));
    drop(challenge);
    drop(params);
    let news = {
        let _waiting = state.metrics.waiting();
        let mut shutdown = state.shutdown.clone();
        tokio::select! {
            news = sub.changed() => news,
            _ = tokio::time::sleep_until(wake) => None,
            _ = shutdown.changed() => None,
        }
    };
    // A change that ended the challenge came with the committed record, which can no longer
    // change (the first read checked that the caller owns it).
    if let Some(decided) = news.filter(|c| c.rp_id == rp.rp_id && c.state.is_terminal()) {
        return Ok(Json(challenge_status(&decided)));
    }
    // Whatever else woke us (an acknowledgement, the expiry, the deadline), the fresh state is
    // the answer.
    let challenge = owned(&state, &rp, &id).await?;
    Ok(Json(challenge_status(&challenge)))
}

/// `DELETE /v1/challenges/{id}`.
pub async fn cancel_challenge(
    State(state): State<SharedState>,
    rp: RpCaller,
    Path(id): Path<String>,
) -> Result<Json<ChallengeStatus>, ApiError> {
    let current = owned(&state, &rp, &id).await?;
    if current.state.is_terminal() {
        return Err(wrong_state(&current));
    }
    let now = clock::now_ms();
    match state.db(move |s| s.cancel(&id, now)).await? {
        Cas::Changed(c) => {
            state.changed(&c);
            Ok(Json(challenge_status(&c)))
        }
        Cas::Expired(c) => {
            state.changed(&c);
            Err(wrong_state(&c))
        }
        Cas::WrongState(c) => Err(wrong_state(&c)),
        Cas::Missing => Err(ApiError::not_found("challenge")),
    }
}

/// 409 naming the state the challenge is in.
pub fn wrong_state(c: &ChallengeRecord) -> ApiError {
    ApiError::new(
        ErrorCode::WrongState,
        format!("the challenge is already {}", c.state),
    )
}

//! Relying-party endpoints: list and revoke a user's devices, enrollment links, and create,
//! read (long-poll) and cancel challenges. Each checks the caller's key in the same store job
//! as its own work ([`crate::service::keys::authenticate`]): one job per request, and none for
//! a long-poll that starts from the view of a challenge created here ([`crate::created`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pushauth_proto::wire::{
    ChallengeCreated, ChallengeStatus, CreateChallenge, CreateRpEnrollment, DeviceInfo, DeviceList,
    EnrollmentCreated, GraceGrant,
};
use pushauth_proto::ChallengeState;
use tokio::time::Instant;

use super::views::{challenge_status, device_info, enrollment_created};
use super::{ApiError, JsonBody, Params};
use crate::clock::{self, Millis};
use crate::created::CreatedView;
use crate::service::keys::{authenticate, authenticate_kept, RpCaller, RpKey};
use crate::service::{challenges, devices, enrollments, grace};
use crate::state::SharedState;
use crate::store::ChallengeRecord;
use crate::waiters::{ChallengeNews, Subscription};

/// `GET /v1/users/{user}/devices`: the user's active devices (the user must be in the relying
/// party's scope).
pub async fn user_devices(
    State(state): State<SharedState>,
    key: RpKey,
    Path(user): Path<String>,
) -> Result<Json<DeviceList>, ApiError> {
    let list = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            devices::active_for_rp(s, &rp, &user)
        })
        .await?;
    Ok(Json(DeviceList {
        devices: list.iter().map(device_info).collect(),
    }))
}

/// `POST /v1/enrollments`: an enrollment link for a user in scope, under the rules of
/// [`crate::enrollment`], or approved by a backup code ([`super::backup::enroll_with_code`]).
pub async fn create_enrollment(
    State(state): State<SharedState>,
    key: RpKey,
    body: Result<JsonBody<CreateRpEnrollment>, ApiError>,
) -> Result<(StatusCode, Json<EnrollmentCreated>), ApiError> {
    // Issue 12: a backup code instead of an approval takes the slow path (Argon2id).
    let body = match body {
        Ok(JsonBody(req)) if req.backup_code.is_some() => {
            return super::backup::enroll_with_code(state, key, req).await;
        }
        other => other,
    };
    let ttl = state.config.enrollment_ttl_secs;
    let issued = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            let JsonBody(req) = body?;
            Ok::<_, ApiError>(enrollments::issue_for_rp(
                s,
                &rp,
                req,
                ttl,
                clock::now_ms(),
            )?)
        })
        .await?;
    let created = enrollment_created(&state.base_url, issued);
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /v1/users/{user}/devices/{id}`: revokes one of the user's devices (needs the `enroll`
/// right and the user in scope); returns the device as revoked.
pub async fn revoke_user_device(
    State(state): State<SharedState>,
    key: RpKey,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let now = clock::now_ms();
    let device = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            devices::revoke_for_rp(s, &rp, &user, &id, now)
        })
        .await?;
    state
        .waiters
        .devices_changed(std::slice::from_ref(&device.id));
    Ok(Json(device_info(&device)))
}

/// `POST /v1/challenges`: checks the request off the store thread, then the key, scope, limits
/// and size bound in the job that creates the challenge.
pub async fn create_challenge(
    State(state): State<SharedState>,
    key: RpKey,
    body: Result<JsonBody<CreateChallenge>, ApiError>,
) -> Result<(StatusCode, Json<ChallengeCreated>), ApiError> {
    let now = clock::now_ms();
    // Issue 12: the grace ask is checked here too, and decided in the creating job.
    let request = body.map(|JsonBody(req)| {
        let ask = grace::ask(&req);
        (challenges::check(&state.config, req, now), ask)
    });
    let limits = state.config.limits;
    let bound = Arc::clone(&state.size_bound);
    // Should the caller be gone once the challenge is committed, its devices' long-polls are
    // woken all the same (no push and no webhook for a login nobody waits on).
    let waiters = state.waiters.clone();
    let ticket = state.waiters.created_here().ticket();
    let created = state
        .run_or_else(
            move |s| {
                let rp = authenticate(s, &key)?;
                let (request, ask) = request?;
                Ok::<_, ApiError>(grace::create(s, &rp, request, ask, &limits, &bound)?)
            },
            move |created| {
                if let Ok(c) = created {
                    waiters.devices_changed(&c.challenge.devices);
                }
            },
        )
        .await?;
    let (challenge, devices) = (created.challenge, created.devices);
    // A grace login is already approved: nothing to push.
    if created.grace.is_none() {
        if challenge.state == ChallengeState::Pending {
            // The relying party's long-poll can start from it (`crate::created`).
            state.waiters.created_here().keep(
                ticket,
                &challenge.id,
                CreatedView {
                    rp_id: challenge.rp_id.clone(),
                    expires_at: challenge.expires_at,
                },
            );
        }
        state.created(&challenge, created.subscriptions);
    }
    Ok((
        StatusCode::CREATED,
        Json(ChallengeCreated {
            device_info: devices.iter().map(device_info).collect(),
            expires_at: clock::rfc3339(challenge.expires_at),
            id: challenge.id,
            user: challenge.user,
            devices: challenge.devices,
            code: challenge.code,
            state: challenge.state,
            grace: created.grace.map(|g| GraceGrant {
                of: g.of,
                until: clock::rfc3339(g.until),
            }),
        }),
    ))
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
    key: RpKey,
    Path(id): Path<String>,
    params: Result<Params, ApiError>,
) -> Result<Json<ChallengeStatus>, ApiError> {
    let wait = params.and_then(|p| p.wait_secs());
    let started = Instant::now();
    // Subscribed before the first read (or the view that stands for it), so a change after
    // either is seen.
    let mut sub = state.waiters.watch_challenge(&id);
    let now = clock::now_ms();
    // Kept to check again before answering with what the wait brought (see below).
    let again = key.clone();
    let (rp, wait, seen, expires_at) = match without_a_read(&state, &key, &id, &wait, now) {
        Some((rp, view)) => {
            state.metrics.started_unread();
            (rp, wait?, ChallengeState::Pending, view.expires_at)
        }
        None => {
            let read_id = id.clone();
            // The store jobs' futures are boxed (here and after the wait): inline, they would
            // size this future, which 10,000 waits each hold for their whole wait (1,792 bytes
            // against 1,104 boxed; the bench's memory phase).
            let (rp, wait, outcome) = Box::pin(state.run(move |s| {
                let rp = authenticate(s, &key)?;
                let wait = wait?;
                let outcome = challenges::get_owned(s, &rp, &read_id, now);
                Ok::<_, ApiError>((rp, wait, outcome))
            }))
            .await?;
            let challenge = state.settle(outcome)?;
            no_view_past(&state, &challenge);
            if challenge.state.is_terminal() || wait == 0 || state.stopping() {
                return Ok(Json(challenge_status(&challenge)));
            }
            // Only the state and expiry are needed while waiting; thousands of waits should
            // not each hold a record.
            (rp, wait, challenge.state, challenge.expires_at)
        }
    };
    let deadline = started + Duration::from_secs(wait);
    let wake = deadline.min(instant_at(expires_at));
    loop {
        let news = state.wait_for(sub.changed(), wake).await.flatten();
        // A change made here came with its committed record (the first read, or the view,
        // checked that the caller owns the challenge): one that ended the challenge can no
        // longer change; one that moved it on (an acknowledgement) is the answer as a read
        // made then would have given it, and the caller asks again at once (session 23: the
        // read cost every phone-app login a store job and a statement).
        if let Some(changed) =
            news.filter(|c| c.rp_id == rp.rp_id && (c.state.is_terminal() || c.state != seen))
        {
            Box::pin(authenticated_again(&state, &again)).await?;
            return Ok(Json(challenge_status(&changed)));
        }
        // Whatever else woke us (another replica's notice, the expiry, the deadline), the
        // fresh state is the answer.
        let fresh = Box::pin(read_again(&state, &again, &id, &mut sub, deadline)).await?;
        no_view_past(&state, &fresh);
        // Issue 13: woken with nothing new (every waiter is woken after the cross-replica
        // listener reconnects, and a replica hears its own notices): wait on.
        if fresh.state != seen
            || fresh.state.is_terminal()
            || Instant::now() >= wake
            || state.stopping()
        {
            return Ok(Json(challenge_status(&fresh)));
        }
    }
}

/// The caller and the view of challenge `id` when a long-poll may start waiting without
/// reading it (issue 13, [`crate::created`]): it waits (`wait` > 0, the server not stopping),
/// the store holds the caller's relying party in memory and the key holds, and this replica
/// created the challenge for that relying party and nothing changed it since. `None` sends
/// the long-poll through the read, which gives every refusal.
fn without_a_read(
    state: &SharedState,
    key: &RpKey,
    id: &str,
    wait: &Result<u64, ApiError>,
    now: Millis,
) -> Option<(RpCaller, CreatedView)> {
    if !matches!(wait, Ok(secs) if *secs > 0) || state.stopping() {
        return None;
    }
    let view = state.waiters.created_here().view(id, now)?;
    let rp = authenticate_kept(state.store.as_ref(), key)?;
    (view.rp_id == rp.rp_id).then_some((rp, view))
}

/// A view of a challenge created here that a read contradicts goes (a change the listener
/// missed must not start every later long-poll from "pending" again).
fn no_view_past(state: &SharedState, read: &ChallengeRecord) {
    if read.state != ChallengeState::Pending {
        state.waiters.created_here().forget(&read.id);
    }
}

/// Checks `key` again before a long-poll answers with a record it did not read: a relying
/// party revoked or rotated while the request waited is refused as a new request would be
/// (the change's CLI or admin call returns only once every replica refuses the old key). From
/// the kept record when the store holds it (PostgreSQL), else in a store job. The admin token
/// is read once at start, so it needs no check.
///
/// # Errors
/// `unauthorized`, or the store's error.
pub(super) async fn authenticated_again(state: &SharedState, key: &RpKey) -> Result<(), ApiError> {
    if matches!(key, RpKey::Admin) || authenticate_kept(state.store.as_ref(), key).is_some() {
        return Ok(());
    }
    let key = key.clone();
    state
        .run_ahead(move |s| Ok::<_, ApiError>(authenticate(s, &key).map(drop)?))
        .await
}

/// Reads challenge `id` for a long-poll, checking the caller's key again in the same job (it
/// may have been revoked while the request waited). While the database cannot be reached (a
/// failover), reads again until `deadline` instead of failing (issue 13); a wake-up on `sub`
/// ends a pause early. At the deadline: `store_unavailable`.
async fn read_again(
    state: &SharedState,
    key: &RpKey,
    id: &str,
    sub: &mut Subscription<ChallengeNews>,
    deadline: Instant,
) -> Result<ChallengeRecord, ApiError> {
    let mut pause = FIRST_RETRY;
    loop {
        let now = clock::now_ms();
        let (key, id) = (key.clone(), id.to_owned());
        let read = state
            .run_ahead(move |s| {
                let rp = authenticate(s, &key)?;
                Ok::<_, ApiError>(challenges::get_owned(s, &rp, &id, now))
            })
            .await;
        match read.and_then(|outcome| Ok(state.settle(outcome)?)) {
            Err(e) if e.is_store_unavailable() && !state.stopping() => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
                let wake = deadline.min(Instant::now() + pause);
                let _ = state.wait_for(sub.changed(), wake).await;
                pause = (pause * 2).min(MAX_RETRY);
            }
            other => return other,
        }
    }
}

/// First pause before a long-poll reads a challenge again after `store_unavailable`.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest such pause (doubling from [`FIRST_RETRY`]).
const MAX_RETRY: Duration = Duration::from_millis(500);

/// `DELETE /v1/challenges/{id}`.
pub async fn cancel_challenge(
    State(state): State<SharedState>,
    key: RpKey,
    Path(id): Path<String>,
) -> Result<Json<ChallengeStatus>, ApiError> {
    let now = clock::now_ms();
    let outcome = state
        .run_announced(&id.clone(), None, move |s| {
            let rp = authenticate(s, &key)?;
            Ok::<_, ApiError>(challenges::cancel(s, &rp, &id, now))
        })
        .await?;
    Ok(Json(challenge_status(&state.settle(outcome)?)))
}

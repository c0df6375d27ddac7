//! Administrator endpoints (admin token): enrollment links, devices, revocation, relying
//! parties, unlocking users and the audit log. `pushauthd`'s admin subcommands call the same
//! service functions.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::Json;
use pushauth_proto::wire::{
    AuditList, CreateEnrollment, CreateRelyingParty, DeviceBindingList, DeviceInfo,
    EnrollmentCreated, RelyingPartyCreated, RelyingPartyInfo, RelyingPartyList, UserUnlocked,
};

use super::views::{device_binding, device_info, enrollment_created, relying_party_info};
use super::{AdminCaller, ApiError, JsonBody, Params};
use crate::auth::ADMIN_RP;
use crate::clock;
use crate::service::users::DEFAULT_AUDIT_LIMIT;
use crate::service::{devices, enrollments, keys, users};
use crate::state::SharedState;
use crate::store::RelyingPartyRecord;

/// `POST /v1/admin/enrollments`: a single-use enrollment link (creates the user if new).
pub async fn create_enrollment(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    JsonBody(req): JsonBody<CreateEnrollment>,
) -> Result<(StatusCode, Json<EnrollmentCreated>), ApiError> {
    let ttl = req.ttl_secs.unwrap_or(state.config.enrollment_ttl_secs);
    let now = clock::now_ms();
    let issued = state
        .run(move |s| enrollments::issue(s, &req.user, ttl, now))
        .await?;
    let created = enrollment_created(&state.base_url, issued);
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /v1/admin/users/{user}/devices[?all=true]`: the user's active devices (with
/// `all=true` revoked ones too: the record of every binding), each with how it was bound.
pub async fn user_devices(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(user): Path<String>,
    params: Params,
) -> Result<Json<DeviceBindingList>, ApiError> {
    let all = match params.0.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::malformed("all must be true or false")),
    };
    let list = state.run(move |s| devices::of_user(s, &user)).await?;
    Ok(Json(DeviceBindingList {
        devices: list
            .iter()
            .filter(|d| all || d.is_active())
            .map(device_binding)
            .collect(),
    }))
}

/// `DELETE /v1/admin/devices/{id}`: revokes a device (the row stays, for the audit trail).
pub async fn revoke_device(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let now = clock::now_ms();
    let device = state
        .run(move |s| devices::revoke(s, &id, ADMIN_RP, now))
        .await?;
    // Its long-polls see the revocation on their next request.
    state
        .waiters
        .devices_changed(std::slice::from_ref(&device.id));
    Ok(Json(device_info(&device)))
}

fn key_shown_once(rp: RelyingPartyRecord, api_key: String) -> RelyingPartyCreated {
    RelyingPartyCreated {
        id: rp.id,
        name: rp.name,
        api_key,
    }
}

/// `POST /v1/admin/relying-parties`: the key is shown once.
pub async fn create_relying_party(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    JsonBody(req): JsonBody<CreateRelyingParty>,
) -> Result<(StatusCode, Json<RelyingPartyCreated>), ApiError> {
    let now = clock::now_ms();
    let (rp, api_key) = state.run(move |s| keys::add(s, &req, now)).await?;
    Ok((StatusCode::CREATED, Json(key_shown_once(rp, api_key))))
}

/// `GET /v1/admin/relying-parties`: every relying party, revoked ones included, oldest first.
pub async fn list_relying_parties(
    State(state): State<SharedState>,
    _admin: AdminCaller,
) -> Result<Json<RelyingPartyList>, ApiError> {
    let all = state.run(keys::list).await?;
    Ok(Json(RelyingPartyList {
        relying_parties: all.iter().map(relying_party_info).collect(),
    }))
}

/// `DELETE /v1/admin/relying-parties/{id}`: revokes it; its key is refused from the next
/// request on, by every replica (the answer waits for that: up to 1 s on PostgreSQL). Returns
/// it as revoked.
pub async fn revoke_relying_party(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<RelyingPartyInfo>, ApiError> {
    let now = clock::now_ms();
    let rp = state.run(move |s| keys::revoke(s, &id, now)).await?;
    tokio::time::sleep(state.store.relying_party_change_spread()).await;
    Ok(Json(relying_party_info(&rp)))
}

/// `POST /v1/admin/relying-parties/{id}/rotate`: a new key, shown once; the old one is refused
/// from the next request on, by every replica, which all take the new one (the answer waits
/// for that: up to 1 s on PostgreSQL). A revoked relying party cannot be rotated (409).
pub async fn rotate_relying_party(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<RelyingPartyCreated>, ApiError> {
    let now = clock::now_ms();
    let (rp, api_key) = state.run(move |s| keys::rotate(s, &id, now)).await?;
    tokio::time::sleep(state.store.relying_party_change_spread()).await;
    Ok(Json(key_shown_once(rp, api_key)))
}

/// `GET /v1/admin/audit?limit=N&user=U`: newest first.
pub async fn audit(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    params: Params,
) -> Result<Json<AuditList>, ApiError> {
    let limit = params.number("limit")?.unwrap_or(DEFAULT_AUDIT_LIMIT);
    let user = params.0.get("user").cloned();
    let events = state
        .run(move |s| users::audit(s, limit, user.as_deref()))
        .await?;
    Ok(Json(AuditList { events }))
}

/// `POST /v1/admin/users/{user}/unlock`: lifts the user's report lock-outs and wrong-code lock
/// and resets their push counters at once; audited as `user_unlocked` with the caller's address
/// (the admin token is shared, so the address is who). 404 `unknown_user` for a user never seen.
pub async fn unlock_user(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(user): Path<String>,
) -> Result<Json<UserUnlocked>, ApiError> {
    let name = user.clone();
    let now = clock::now_ms();
    let actor = format!("admin API from {}", peer.ip());
    state
        .run(move |s| users::unlock(s, &name, &actor, now))
        .await?;
    Ok(Json(UserUnlocked {
        user,
        unlocked: true,
    }))
}

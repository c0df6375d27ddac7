//! Administrator endpoints (admin token): enrollment links, devices, revocation, relying
//! parties and the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pushauth_proto::random;
use pushauth_proto::wire::{
    AuditList, CreateEnrollment, CreateRelyingParty, DeviceBinding, DeviceBindingList, DeviceInfo,
    EnrollmentCreated, ErrorCode, RelyingPartyCreated, RelyingPartyInfo, RelyingPartyList,
};
use sha2::{Digest, Sha256};

use super::{device_info, printable, JsonBody, Params};
use crate::app::SharedState;
use crate::auth::{hash_secret, AdminCaller, ADMIN_RP};
use crate::clock;
use crate::error::ApiError;
use crate::rights::validate_patterns;
use crate::store::{DeviceRecord, RelyingPartyRecord};

/// Longest user name, in characters.
pub const MAX_USER: usize = 256;
/// Longest enrollment link lifetime.
pub const MAX_ENROLLMENT_TTL_SECS: u64 = 7 * 24 * 3600;
/// Default and largest page of the audit log.
pub const DEFAULT_AUDIT_LIMIT: u64 = 100;
pub const MAX_AUDIT_LIMIT: u64 = 1000;

/// `POST /v1/admin/enrollments`: a single-use enrollment link (creates the user if new).
pub async fn create_enrollment(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    JsonBody(req): JsonBody<CreateEnrollment>,
) -> Result<(StatusCode, Json<EnrollmentCreated>), ApiError> {
    let ttl = req.ttl_secs.unwrap_or(state.config.enrollment_ttl_secs);
    let created = issue_enrollment(&state, req.user, ttl).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Issues an enrollment token for `user` (shared with nothing else; the CLI has its own path
/// through the store).
async fn issue_enrollment(
    state: &SharedState,
    user: String,
    ttl: u64,
) -> Result<EnrollmentCreated, ApiError> {
    if !printable(&user, MAX_USER) {
        return Err(ApiError::malformed(format!(
            "user must be 1 to {MAX_USER} printable characters"
        )));
    }
    if ttl == 0 || ttl > MAX_ENROLLMENT_TTL_SECS {
        return Err(ApiError::malformed(format!(
            "ttl_secs must be 1 to {MAX_ENROLLMENT_TTL_SECS}"
        )));
    }
    let token = random::secret_token().map_err(|_| ApiError::internal())?;
    let token_hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let now = clock::now_ms();
    let expires_at = clock::ceil_to_second(now + i64::try_from(ttl * 1000).unwrap_or(i64::MAX));
    state
        .db(move |s| s.create_enrollment(&user, &token_hash, now, expires_at))
        .await?;
    Ok(EnrollmentCreated {
        url: enrollment_url(&state.base_url, &token),
        token,
        expires_at: clock::rfc3339(expires_at),
    })
}

/// `<public_url>/enroll?token=<token>`.
pub fn enrollment_url(base_url: &str, token: &str) -> String {
    format!("{}/enroll?token={token}", base_url.trim_end_matches('/'))
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
    let devices = state
        .db(move |s| s.user_devices(&user))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownUser, "no such user"))?;
    Ok(Json(DeviceBindingList {
        devices: devices
            .iter()
            .filter(|d| all || d.is_active())
            .map(device_binding)
            .collect(),
    }))
}

/// A device with how it was bound.
pub fn device_binding(d: &DeviceRecord) -> DeviceBinding {
    DeviceBinding {
        device: device_info(d),
        revoked_at: d.revoked_at.map(clock::rfc3339),
        source: d.source.clone(),
        via: d.via.clone(),
        approved_by: d.approved_by.clone(),
    }
}

/// `DELETE /v1/admin/devices/{id}`: revokes a device (the row stays, for the audit trail).
pub async fn revoke_device(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let now = clock::now_ms();
    let device = state
        .db(move |s| s.revoke_device(&id, ADMIN_RP, now))
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    tracing::info!(device = %device.id, user = %device.user, "device revoked");
    // Its long-polls see the revocation on their next request.
    state
        .waiters
        .devices_changed(std::slice::from_ref(&device.id));
    Ok(Json(device_info(&device)))
}

/// A fresh API key `<rp_id>.<secret>` and the hash of its secret.
fn new_key(id: &str) -> Result<(String, [u8; 32]), ApiError> {
    let secret = random::secret_token().map_err(|_| ApiError::internal())?;
    Ok((format!("{id}.{secret}"), hash_secret(&secret)))
}

/// Makes a relying party with its rights and its API key `<rp_id>.<secret>`; only the secret's
/// hash is kept. `bootstrap` needs `enroll`.
pub fn new_relying_party(
    req: &CreateRelyingParty,
) -> Result<(RelyingPartyRecord, String), ApiError> {
    if !printable(&req.name, 64) {
        return Err(ApiError::malformed(
            "name must be 1 to 64 printable characters",
        ));
    }
    validate_patterns(&req.users).map_err(ApiError::malformed)?;
    if req.bootstrap && !req.enroll {
        return Err(ApiError::malformed("bootstrap needs enroll"));
    }
    let id = random::id().map_err(|_| ApiError::internal())?;
    let (api_key, key_hash) = new_key(&id)?;
    Ok((
        RelyingPartyRecord {
            id,
            name: req.name.clone(),
            key_hash,
            users: req.users.clone(),
            enroll: req.enroll,
            bootstrap: req.bootstrap,
            created_at: clock::now_ms(),
            revoked_at: None,
        },
        api_key,
    ))
}

/// `POST /v1/admin/relying-parties`: the key is shown once.
pub async fn create_relying_party(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    JsonBody(req): JsonBody<CreateRelyingParty>,
) -> Result<(StatusCode, Json<RelyingPartyCreated>), ApiError> {
    let (rp, api_key) = new_relying_party(&req)?;
    let now = clock::now_ms();
    let stored = rp.clone();
    state
        .db(move |s| s.create_relying_party(&stored, now))
        .await?;
    tracing::info!(rp = %rp.id, "relying party created");
    Ok((
        StatusCode::CREATED,
        Json(RelyingPartyCreated {
            id: rp.id,
            name: rp.name,
            api_key,
        }),
    ))
}

/// A relying party as listed (never its key).
pub fn relying_party_info(rp: &RelyingPartyRecord) -> RelyingPartyInfo {
    RelyingPartyInfo {
        id: rp.id.clone(),
        name: rp.name.clone(),
        users: rp.users.clone(),
        enroll: rp.enroll,
        bootstrap: rp.bootstrap,
        created_at: clock::rfc3339(rp.created_at),
        revoked_at: rp.revoked_at.map(clock::rfc3339),
    }
}

/// `GET /v1/admin/relying-parties`: every relying party, revoked ones included, oldest first.
pub async fn list_relying_parties(
    State(state): State<SharedState>,
    _admin: AdminCaller,
) -> Result<Json<RelyingPartyList>, ApiError> {
    let all = state.db(|s| s.list_relying_parties()).await?;
    Ok(Json(RelyingPartyList {
        relying_parties: all.iter().map(relying_party_info).collect(),
    }))
}

/// `DELETE /v1/admin/relying-parties/{id}`: revokes it; its key is refused from the next
/// request on. Returns it as revoked.
pub async fn revoke_relying_party(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<RelyingPartyInfo>, ApiError> {
    let now = clock::now_ms();
    let rp = state
        .db(move |s| s.revoke_relying_party(&id, now))
        .await?
        .ok_or_else(|| ApiError::not_found("relying party"))?;
    tracing::info!(rp = %rp.id, "relying party revoked");
    Ok(Json(relying_party_info(&rp)))
}

/// `POST /v1/admin/relying-parties/{id}/rotate`: a new key, shown once; the old one is refused
/// from the next request on. A revoked relying party cannot be rotated (409).
pub async fn rotate_relying_party(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<RelyingPartyCreated>, ApiError> {
    let (api_key, key_hash) = new_key(&id)?;
    let now = clock::now_ms();
    let rp = state
        .db(move |s| s.rotate_relying_party(&id, &key_hash, now))
        .await?
        .ok_or_else(|| ApiError::not_found("relying party"))?;
    if rp.revoked_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::WrongState,
            "this relying party is revoked; add a new one",
        ));
    }
    tracing::info!(rp = %rp.id, "relying party key rotated");
    Ok(Json(RelyingPartyCreated {
        id: rp.id,
        name: rp.name,
        api_key,
    }))
}

/// `GET /v1/admin/audit?limit=N&user=U`: newest first.
pub async fn audit(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    params: Params,
) -> Result<Json<AuditList>, ApiError> {
    let limit = params.number("limit")?.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if limit == 0 || limit > MAX_AUDIT_LIMIT {
        return Err(ApiError::malformed(format!(
            "limit must be 1 to {MAX_AUDIT_LIMIT}"
        )));
    }
    let limit = u32::try_from(limit).unwrap_or(1000);
    let user = params.0.get("user").cloned();
    let events = state
        .db(move |s| s.list_audit(limit, user.as_deref()))
        .await?;
    Ok(Json(AuditList { events }))
}

//! Backup-code endpoints (issue 12): a new set for the administrator, for a device (the device
//! itself approves) and for a relying party on an `issue_backup_codes` approval; and a
//! relying party's use of a code instead of a push. Each reads in one store job, hashes off
//! the runtime ([`crate::hashing`]), and writes in a second job that checks again
//! ([`crate::service::backup_codes`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::Json;
use pushauth_proto::wire::{
    BackupCodeSet, BackupCodeVerified, BackupCodesVoided, CreateRpEnrollment, EnrollmentCreated,
    IssueBackupCodes, IssueBackupCodesForRp, VerifyBackupCode, NOTICE_BACKUP_CODES_ISSUED,
    NOTICE_BACKUP_CODES_VOIDED, NOTICE_BACKUP_CODE_USED,
};

use super::extract::DeviceRequest;
use super::views::enrollment_created;
use super::{parse_json, AdminCaller, ApiError, JsonBody, RawBody};
use crate::bounds::SignatureFailures;
use crate::clock;
use crate::service::backup_codes::{self, Attempt, Bounds, IssuedSet};
use crate::service::backup_enroll;
use crate::service::keys::{self, authenticate, RpKey};
use crate::state::SharedState;

/// A body that may be empty (then `T::default()`).
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

fn shown(
    state: &SharedState,
    user: String,
    issued: IssuedSet,
) -> (StatusCode, Json<BackupCodeSet>) {
    state.announce_notice(&user, NOTICE_BACKUP_CODES_ISSUED, &issued.devices);
    (
        StatusCode::CREATED,
        Json(BackupCodeSet {
            user,
            codes: issued.codes,
            created_at: clock::rfc3339(issued.created_at),
        }),
    )
}

/// `POST /v1/admin/users/{user}/backup-codes` `{"count"?}`: a new set for a known user, voiding
/// the old; the codes are in the answer only.
pub async fn admin_issue(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(user): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<BackupCodeSet>), ApiError> {
    let req: IssueBackupCodes = optional_json(&body)?;
    let count = backup_codes::check_count(req.count, state.config.backup_codes.count)?;
    let known = user.clone();
    state
        .run(move |s| Ok::<_, ApiError>(backup_codes::require_known(s, &known)?))
        .await?;
    let set = state
        .hashing
        .run(move || backup_codes::draw_set(count))
        .await??;
    let now = clock::now_ms();
    let for_user = user.clone();
    let issued = state
        .run(move |s| backup_codes::store_set(s, &for_user, &set, "admin", now))
        .await?;
    Ok(shown(&state, user, issued))
}

/// `DELETE /v1/admin/users/{user}/backup-codes`: voids every code of a known user (a lost
/// sheet) without issuing new ones; 404 `unknown_user` for a user never seen.
pub async fn admin_void(
    State(state): State<SharedState>,
    _admin: AdminCaller,
    Path(user): Path<String>,
) -> Result<Json<BackupCodesVoided>, ApiError> {
    let now = clock::now_ms();
    let for_user = user.clone();
    let devices = state
        .run(move |s| Ok::<_, ApiError>(backup_codes::void(s, &for_user, "admin", now)?))
        .await?;
    state.announce_notice(&user, NOTICE_BACKUP_CODES_VOIDED, &devices);
    Ok(Json(BackupCodesVoided {
        user,
        voided_at: clock::rfc3339(now),
    }))
}

/// `POST /v1/device/backup-codes` (signed) `{"count"?}`: a new set for the device's own user;
/// the signed request from an active device is the approval.
pub async fn device_issue(
    State(state): State<SharedState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<BackupCodeSet>), ApiError> {
    let request = DeviceRequest::parse(&method, &uri, &headers, &body, peer)?;
    let failures = Arc::clone(&state.signature_failures);
    let default = state.config.backup_codes.count;
    let (device, count) = state
        .run(move |s| {
            let device = request.verify(s, &failures)?;
            let req: IssueBackupCodes = optional_json(&body)?;
            let count = backup_codes::check_count(req.count, default)?;
            Ok::<_, ApiError>((device, count))
        })
        .await?;
    let set = state
        .hashing
        .run(move || backup_codes::draw_set(count))
        .await??;
    let now = clock::now_ms();
    let user = device.user.clone();
    let via = format!("device:{}", device.id);
    let issued = state
        .run(move |s| backup_codes::store_set(s, &device.user, &set, &via, now))
        .await?;
    Ok(shown(&state, user, issued))
}

/// `POST /v1/users/{user}/backup-codes` `{"approval","count"?}` (relying party): a new set for
/// a person who approved an `issue_backup_codes` challenge of this relying party with the code
/// in the last 5 minutes; each approval serves once.
pub async fn rp_issue(
    State(state): State<SharedState>,
    key: RpKey,
    Path(user): Path<String>,
    body: Result<JsonBody<IssueBackupCodesForRp>, ApiError>,
) -> Result<(StatusCode, Json<BackupCodeSet>), ApiError> {
    let default = state.config.backup_codes.count;
    let now = clock::now_ms();
    let checked_user = user.clone();
    let refusals = Arc::clone(&state.signature_failures);
    let (rp, req, count) = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            let JsonBody(req) = body?;
            pushauth_proto::names::check_user(&checked_user)
                .map_err(crate::service::Error::from)?;
            let count = backup_codes::check_count(req.count, default)?;
            // Used up before the slow draw: one approval pays for one set of hashes.
            backup_codes::claim_rp_approval(s, &rp, &refusals, &checked_user, &req.approval, now)?;
            Ok::<_, ApiError>((rp, req, count))
        })
        .await?;
    let set = state
        .hashing
        .run(move || backup_codes::draw_set(count))
        .await??;
    let for_user = user.clone();
    let now = clock::now_ms();
    let issued = state
        .run(move |s| backup_codes::store_set_for_rp(s, &rp, &for_user, &req.approval, &set, now))
        .await?;
    Ok(shown(&state, user, issued))
}

fn bounds(max_failures: u32, refusals: &SignatureFailures) -> Bounds<'_> {
    Bounds {
        max_failures,
        refusals,
    }
}

/// The slow part of an attempt: one verify, and the replacement when it matched.
async fn check(
    state: &SharedState,
    attempt: &Attempt,
    hash: Option<String>,
) -> Result<backup_codes::Checked, ApiError> {
    let code = attempt.code.clone();
    Ok(state
        .hashing
        .run(move || backup_codes::check_code(&code, hash.as_deref()))
        .await??)
}

/// `POST /v1/users/{user}/backup-codes/verify` `{"code","context"}` (relying party, with the
/// right to push to the user): uses the code once. 200 with its replacement; 403
/// `backup_code_invalid` for a wrong, used or missing code; 429 `user_locked` at
/// `max_backup_code_failures`.
pub async fn rp_verify(
    State(state): State<SharedState>,
    key: RpKey,
    Path(user): Path<String>,
    body: Result<JsonBody<VerifyBackupCode>, ApiError>,
) -> Result<Json<BackupCodeVerified>, ApiError> {
    let max = state.config.limits.max_backup_code_failures;
    let for_user = user.clone();
    let refusals = Arc::clone(&state.signature_failures);
    let again = Arc::clone(&refusals);
    let (rp, attempt, facts) = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            let JsonBody(req) = body?;
            let attempt = backup_codes::rp_attempt(&rp, &for_user, &req.code, req.context)?;
            let facts = backup_codes::attempt_facts(s, &attempt, bounds(max, &refusals))?;
            Ok::<_, ApiError>((rp, attempt, facts))
        })
        .await?;
    let checked = check(&state, &attempt, facts.hash.clone()).await?;
    let used = state
        .run(move |s| {
            keys::atomically_for(s, &rp, |s| {
                backup_codes::consume(
                    s,
                    &attempt,
                    facts.hash.as_deref(),
                    checked,
                    bounds(max, &again),
                    clock::now_ms(),
                )
            })
        })
        .await?;
    state.announce_notice(&user, NOTICE_BACKUP_CODE_USED, &used.devices);
    Ok(Json(BackupCodeVerified {
        user,
        replacement: used.replacement,
        remaining: used.remaining,
    }))
}

/// `POST /v1/enrollments` with `backup_code` (called by [`super::rp::create_enrollment`]): the
/// code approves the link and is used up in the unit that records it; the answer carries the
/// code's replacement.
pub async fn enroll_with_code(
    state: SharedState,
    key: RpKey,
    req: CreateRpEnrollment,
) -> Result<(StatusCode, Json<EnrollmentCreated>), ApiError> {
    let max = state.config.limits.max_backup_code_failures;
    let ttl = state.config.enrollment_ttl_secs;
    let refusals = Arc::clone(&state.signature_failures);
    let again = Arc::clone(&refusals);
    let (rp, attempt, ttl, facts) = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            let (attempt, ttl) = backup_enroll::check(&rp, &req, ttl)?;
            let facts = backup_codes::attempt_facts(s, &attempt, bounds(max, &refusals))?;
            Ok::<_, ApiError>((rp, attempt, ttl, facts))
        })
        .await?;
    let checked = check(&state, &attempt, facts.hash.clone()).await?;
    let user = attempt.user.clone();
    let (issued, used) = state
        .run(move |s| {
            backup_enroll::issue(
                s,
                &rp,
                &attempt,
                ttl,
                (facts.hash.as_deref(), checked),
                bounds(max, &again),
                clock::now_ms(),
            )
        })
        .await?;
    state.announce_notice(&user, NOTICE_BACKUP_CODE_USED, &used.devices);
    let mut created = enrollment_created(&state.base_url, issued);
    created.replacement = Some(used.replacement);
    created.remaining = Some(used.remaining);
    Ok((StatusCode::CREATED, Json(created)))
}

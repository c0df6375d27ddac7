//! The relying-party calls for enrollment, device removal and backup codes (pushauthd's `POST
//! /v1/enrollments`, `DELETE /v1/users/{user}/devices/{id}`, `/v1/users/{user}/backup-codes…`, made with the sidecar's own relying-party key,
//! whose rights pushauthd checks), with the sidecar's meaning of their failures. Blocking: run
//! them through [`crate::blocking::blocking`].

use std::time::{Duration, Instant};

use pushauth_client::{BackupCodeVerified, Client, ClientError, Context, DeviceInfo};
use pushauth_proto::wire::{EnrollmentCreated, ErrorCode as UpstreamCode};

use crate::error::{ApiError, ErrorCode};

/// A single-use enrollment link for `user`; `approval` is the id of the approved `add_device`
/// challenge when the user already has a device.
pub fn create_enrollment(
    client: &Client,
    user: &str,
    approval: Option<&str>,
    ttl: Duration,
) -> Result<EnrollmentCreated, ApiError> {
    client
        .create_enrollment(user, approval, Some(ttl.as_secs()))
        .map_err(ApiError::from)
}

/// Revokes one of `user`'s devices; returns it as it was.
pub fn revoke_device(client: &Client, user: &str, device_id: &str) -> Result<DeviceInfo, ApiError> {
    client
        .revoke_device(user, device_id)
        .map_err(ApiError::from)
}

/// What a backup-code refusal means to the shim: wrong, used or none at all is one answer (403
/// `backup_code_invalid`, passed on from pushauthd, so nothing tells whether the user has codes);
/// too many failures is pushauthd's 429 `user_locked`; anything else as any pushauthd failure.
fn backup_refusal(err: ClientError) -> ApiError {
    match err {
        ClientError::Rejected {
            status: 403,
            code: Some(UpstreamCode::BackupCodeInvalid),
            ..
        } => ApiError::new(
            ErrorCode::BackupCodeInvalid,
            "that backup code is not valid (wrong, or already used)",
        ),
        // Not a code at all (wrong length, a letter outside the alphabet): to the person the
        // same "not valid"; the log keeps pushauthd's reason.
        ClientError::Rejected {
            status: 400,
            code: Some(UpstreamCode::MalformedRequest),
            message,
        } => ApiError::new(
            ErrorCode::BackupCodeInvalid,
            "that backup code is not valid (wrong, or already used)",
        )
        .noted(format!("pushauthd refused the code's shape: {message}")),
        other => ApiError::from(other),
    }
}

/// Consumes one of `user`'s backup codes for a login step (pushauthd verifies, throttles and
/// replaces it); returns the replacement.
pub fn verify_backup_code(
    client: &Client,
    user: &str,
    code: &str,
    context: &Context,
    deadline: Instant,
) -> Result<BackupCodeVerified, ApiError> {
    client
        .verify_backup_code_until(user, code, context, deadline)
        .map_err(backup_refusal)
}

/// A single-use enrollment link for `user` approved by one of their backup codes; returns it
/// with the replacement code.
pub fn create_enrollment_with_backup_code(
    client: &Client,
    user: &str,
    code: &str,
    ttl: Duration,
) -> Result<(EnrollmentCreated, String), ApiError> {
    let created = client
        .enroll_with_backup_code(user, code, Some(ttl.as_secs()))
        .map_err(backup_refusal)?;
    let replacement = created.replacement.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::UpstreamError,
            "the pushauth server issued the link without a replacement code",
        )
    })?;
    Ok((created, replacement))
}

/// A new set of backup codes for `user`, approved by the `issue_backup_codes` challenge
/// `approval` (pushauthd checks and consumes it).
pub fn issue_backup_codes(
    client: &Client,
    user: &str,
    approval: &str,
) -> Result<Vec<String>, ApiError> {
    client
        .issue_backup_codes(user, approval, None)
        .map(|set| set.codes)
        .map_err(ApiError::from)
}

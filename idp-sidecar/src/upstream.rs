//! The relying-party calls for enrollment and device removal (pushauthd's `POST /v1/enrollments`
//! and `DELETE /v1/users/{user}/devices/{id}`, made with the sidecar's own relying-party key,
//! whose rights pushauthd checks), with the sidecar's meaning of their failures. Blocking: run
//! them through [`crate::blocking::blocking`].

use std::time::Duration;

use pushauth_client::{Client, DeviceInfo};
use pushauth_proto::wire::EnrollmentCreated;

use crate::error::ApiError;

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

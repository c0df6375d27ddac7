//! The relying-party calls for enrollment and device removal (pushauthd's `POST /v1/enrollments`
//! and `DELETE /v1/users/{user}/devices/{id}`, made with the sidecar's own relying-party key,
//! whose rights pushauthd checks), with the sidecar's meaning of their failures, and
//! [`blocking`], which runs such blocking work off the async workers under the call deadline.

use std::time::Duration;

use pushauth_client::{Client, DeviceInfo};
use pushauth_proto::wire::EnrollmentCreated;

use crate::app::SharedState;
use crate::error::ApiError;

/// Runs blocking client work on the blocking pool, answering 504 `upstream_timeout` if it takes
/// longer than `call_timeout` (the work itself then finds its deadline passed and undoes what
/// it started: see `Logins::start`).
pub async fn blocking<T: Send + 'static>(
    state: &SharedState,
    f: impl FnOnce(SharedState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    let task = state.runtime.spawn_blocking(move || f(st));
    match tokio::time::timeout(state.call_timeout, task).await {
        Ok(done) => done.map_err(|e| {
            tracing::error!(error = %e, "blocking task failed");
            ApiError::internal()
        })?,
        Err(_) => {
            tracing::warn!(
                timeout_secs = state.call_timeout.as_secs(),
                "pushauthd call took longer than call_timeout_secs"
            );
            Err(ApiError::upstream_timeout())
        }
    }
}

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

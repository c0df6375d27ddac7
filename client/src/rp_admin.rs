//! Relying-party calls that manage a user's devices (issue 9 items 1 and 2): enrollment links
//! under the approval rules, and revocation. They need a relying-party key with the `enroll`
//! right and the user in its scope; the IdP sidecar uses them instead of the admin token.

use pushauth_proto::wire::{CreateRpEnrollment, DeviceInfo, EnrollmentCreated};

use crate::http::path_segment;
use crate::{Client, ClientError};

impl Client {
    /// `POST /v1/enrollments`: a single-use enrollment link for `user`.
    ///
    /// `approval` is the id of an `add_device` challenge this client started for `user` (context
    /// `action = "add_device"`, number matching on) and that one of the user's devices approved
    /// within the last 10 minutes; it is required when the user already has an active device
    /// and serves one enrollment only. `ttl_secs` is the link's lifetime (server default when
    /// `None`).
    ///
    /// Errors: [`ClientError`] carrying the server's code: `forbidden` (no `enroll` right or the
    /// user out of scope), `approval_required`, `approval_invalid`, `approval_used` (409),
    /// `bootstrap_not_allowed`.
    pub fn create_enrollment(
        &self,
        user: &str,
        approval: Option<&str>,
        ttl_secs: Option<u64>,
    ) -> Result<EnrollmentCreated, ClientError> {
        let body = CreateRpEnrollment {
            user: user.to_owned(),
            ttl_secs,
            approval: approval.map(str::to_owned),
            backup_code: None,
        };
        let (created, _) = self.call_with_failover("POST", "/v1/enrollments", Some(&body))?;
        Ok(created)
    }

    /// `DELETE /v1/users/{user}/devices/{device_id}`: revokes one of the user's devices and
    /// returns it. Needs the `enroll` right and the user in scope (`forbidden`); a device of
    /// another user is `not_found`.
    pub fn revoke_device(&self, user: &str, device_id: &str) -> Result<DeviceInfo, ClientError> {
        let path = format!(
            "/v1/users/{}/devices/{}",
            path_segment(user),
            path_segment(device_id)
        );
        let (device, _) = self.call_with_failover("DELETE", &path, None::<&()>)?;
        Ok(device)
    }
}

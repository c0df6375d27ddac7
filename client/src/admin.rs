//! The administrator calls that services beside pushauthd need (the IdP sidecar enrolls users who
//! just logged in and manages their devices): the same transport, failover and typed errors as
//! the relying-party client, authenticated with the admin token instead of an API key.

use pushauth_proto::wire::{CreateEnrollment, DeviceInfo, DeviceList, EnrollmentCreated};

use crate::http::path_segment;
use crate::{Client, ClientConfig, ClientError};

/// A pushauthd administrator session. Build it from a [`ClientConfig`] whose `api_key` is the
/// admin token.
#[derive(Debug)]
pub struct AdminClient {
    client: Client,
}

impl AdminClient {
    /// Checks the configuration and builds the HTTP agent, as [`Client::new`].
    pub fn new(cfg: ClientConfig) -> Result<AdminClient, ClientError> {
        Ok(AdminClient {
            client: Client::new(cfg)?,
        })
    }

    /// `POST /v1/admin/enrollments`: a single-use enrollment link for `user`.
    pub fn create_enrollment(
        &self,
        user: &str,
        ttl_secs: Option<u64>,
    ) -> Result<EnrollmentCreated, ClientError> {
        let body = CreateEnrollment {
            user: user.to_owned(),
            ttl_secs,
        };
        let (created, _) =
            self.client
                .call_with_failover("POST", "/v1/admin/enrollments", Some(&body))?;
        Ok(created)
    }

    /// `GET /v1/admin/users/{user}/devices`: the user's active devices.
    pub fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, ClientError> {
        let path = format!("/v1/admin/users/{}/devices", path_segment(user));
        let (list, _): (DeviceList, _) =
            self.client.call_with_failover("GET", &path, None::<&()>)?;
        Ok(list.devices)
    }

    /// `DELETE /v1/admin/devices/{id}`: revokes a device; returns it as it was.
    pub fn revoke_device(&self, id: &str) -> Result<DeviceInfo, ClientError> {
        let path = format!("/v1/admin/devices/{}", path_segment(id));
        let (device, _) = self
            .client
            .call_with_failover("DELETE", &path, None::<&()>)?;
        Ok(device)
    }
}

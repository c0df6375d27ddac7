//! The pushauthd admin calls the sidecar needs for enrollment and device removal, through
//! `pushauth_client::AdminClient`, with the sidecar's meaning of their failures. Blocking, like the
//! client: run them on the blocking pool.

use std::path::Path;

use pushauth_client::{AdminClient, ClientConfig, ClientError, DeviceInfo};
use pushauth_proto::wire::EnrollmentCreated;

use crate::error::ApiError;

/// An admin-token session with pushauthd.
#[derive(Debug)]
pub struct Admin {
    client: AdminClient,
}

/// A refused admin token names the setting to check, not the API key.
fn admin_error(err: ClientError) -> ApiError {
    match err {
        ClientError::Unauthorized => {
            tracing::error!("pushauthd refused the sidecar's admin token");
            ApiError::new(
                502,
                "upstream_refused",
                "pushauthd refused the sidecar's admin token; check admin_token_file",
            )
        }
        other => ApiError::from(other),
    }
}

impl Admin {
    /// `ca_file` is the same extra PEM CA the relying-party client trusts.
    pub fn new(
        servers: &[String],
        token: &str,
        ca_file: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let mut config = ClientConfig::new(servers.to_vec(), token);
        config.ca_file = ca_file.map(Path::to_path_buf);
        Ok(Admin {
            client: AdminClient::new(config)?,
        })
    }

    /// A single-use enrollment link for `user`.
    pub fn create_enrollment(
        &self,
        user: &str,
        ttl_secs: Option<u64>,
    ) -> Result<EnrollmentCreated, ApiError> {
        self.client
            .create_enrollment(user, ttl_secs)
            .map_err(admin_error)
    }

    /// The user's active devices; a user pushauthd does not know yet has none.
    pub fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
        match self.client.devices(user) {
            Ok(devices) => Ok(devices),
            Err(ClientError::UnknownUser | ClientError::NoDevice) => Ok(Vec::new()),
            Err(e) => Err(admin_error(e)),
        }
    }

    /// Revokes a device.
    pub fn remove_device(&self, id: &str) -> Result<(), ApiError> {
        self.client
            .revoke_device(id)
            .map(|_| ())
            .map_err(admin_error)
    }
}

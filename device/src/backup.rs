//! Backup codes from the device side (issue 12): the device asks for a new set for its own
//! user (`POST /v1/device/backup-codes`); its signed request is the approval. The server voids
//! the old set and answers the codes, once.

use pushauth_proto::wire::{BackupCodeSet, IssueBackupCodes};

use crate::transport::CALL_TIMEOUT;
use crate::{DeviceClient, DeviceError};

impl DeviceClient {
    /// A new set of backup codes for this device's user (`count` codes, the server's default
    /// when `None`), voiding every earlier code. The codes are text from the server: check or
    /// sanitise them before printing.
    ///
    /// # Errors
    /// [`DeviceError::Server`] with `malformed_request` for a count out of range,
    /// `device_revoked`; the usual transport errors.
    pub fn issue_backup_codes(&self, count: Option<u32>) -> Result<BackupCodeSet, DeviceError> {
        let body = serde_json::to_vec(&IssueBackupCodes { count })
            .map_err(|e| DeviceError::Profile(format!("cannot encode the request: {e}")))?;
        self.signed("POST", "/v1/device/backup-codes", Some(body), CALL_TIMEOUT)
    }
}

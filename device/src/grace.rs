//! Ending grace windows from the device (issue 12): "end all grace windows" of this device's
//! user at once (`DELETE /v1/device/grace`, signed), so the next login on every host pushes
//! again.

use pushauth_proto::wire::GraceEnded;

use crate::transport::CALL_TIMEOUT;
use crate::{DeviceClient, DeviceError};

impl DeviceClient {
    /// Ends every grace window of this device's user; the server audits it as `grace_ended`.
    ///
    /// # Errors
    /// The usual transport and server errors (`device_revoked` for a revoked device).
    pub fn end_grace(&self) -> Result<GraceEnded, DeviceError> {
        self.signed("DELETE", "/v1/device/grace", None, CALL_TIMEOUT)
    }
}

//! Wire bodies of the offline codes (issue 12): what enrollment hands the device, and the two
//! relying-party routes through which a PAM host fills its cache and reports a code it accepted
//! while pushauthd was down. The codes themselves are [`crate::hotp`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most values a host may hold per device ahead of the last used counter (`[offline] window`
/// is at most this).
pub const MAX_WINDOW: u64 = 100;

/// The offline secret in the enroll response (`"offline"`), shown once: the device keeps it and
/// computes [`crate::hotp::hotp`] for counters 1, 2, … (its next counter is `counter + 1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollOffline {
    /// base64url of the HOTP secret (20 bytes for `sha1`, 32 for `sha256`).
    pub secret: String,
    /// Digits per code, 6 to 8.
    pub digits: u32,
    /// `sha1` or `sha256`.
    pub algorithm: String,
    /// The last counter used (0 at enrollment: the first code is counter 1).
    pub counter: u64,
}

/// `POST /v1/challenges/{id}/offline`: what the host already holds, per device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineRequest {
    /// Device id -> the highest counter the host holds a value for.
    #[serde(default)]
    pub have: BTreeMap<String, u64>,
}

/// One cached value: the counter and an Argon2id PHC hash of its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineValue {
    /// The HOTP counter.
    pub counter: u64,
    /// Argon2id PHC string of the code (its own salt).
    pub hash: String,
}

/// The values of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineDevice {
    /// The device.
    pub device_id: String,
    /// Its last used counter: the host drops every value it holds at or below it.
    pub last_used: u64,
    /// Digits of its codes (devices enrolled under another `[offline] digits` keep theirs).
    pub digits: u32,
    /// The values the host did not hold, ascending by counter.
    pub values: Vec<OfflineValue>,
}

/// Answer to `POST /v1/challenges/{id}/offline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineResponse {
    /// The challenge's user.
    pub user: String,
    /// Digits per code for devices enrolled now (each device says its own).
    pub digits: u32,
    /// Every active device of the user that has an offline secret (a device not listed has
    /// none any more: the host drops it).
    pub devices: Vec<OfflineDevice>,
}

/// `POST /v1/users/{user}/offline-used`: a code the host accepted while the server was down,
/// with the code itself as proof (pushauthd computes the device's value for `counter` and
/// refuses a report whose `code` differs, so a relying party cannot move a counter or write
/// audit rows and notices for a code it never saw).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineUsedRequest {
    /// The device whose code it was.
    pub device_id: String,
    /// Its counter.
    pub counter: u64,
    /// The code the person typed: the device's digits, ASCII (spaces and dashes removed).
    pub code: String,
    /// When the host accepted it (RFC 3339 UTC).
    pub used_at: String,
}

impl std::fmt::Debug for OfflineUsedRequest {
    // The code stays out of logs and error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineUsedRequest")
            .field("device_id", &self.device_id)
            .field("counter", &self.counter)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

/// Answer to `POST /v1/users/{user}/offline-used`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineUsedResponse {
    /// The device's last used counter after the report (never lower than before).
    pub counter: u64,
}

//! Offline codes (issue 12) for a relying party: after an approved push, the Argon2id hashes of
//! the offline values this host lacks ([`Client::offline_values_until`]); once a server is back,
//! the report of a code accepted while none could be reached
//! ([`Client::report_offline_used_until`]).

use std::collections::BTreeMap;
use std::time::Instant;

use pushauth_proto::hotp::{MAX_DIGITS, MIN_DIGITS};
use pushauth_proto::offline::{
    OfflineRequest, OfflineResponse, OfflineUsedRequest, OfflineUsedResponse, MAX_WINDOW,
};

use crate::http::path_segment;
use crate::{Client, ClientError, PendingLogin};

/// Longest PHC string accepted for one value (an Argon2id hash is about 100 characters).
const MAX_HASH_CHARS: usize = 256;
/// Most devices accepted in one answer.
const MAX_DEVICES: usize = 64;

impl Client {
    /// `POST /v1/challenges/{id}/offline`: for the approved challenge `login`, the values of each
    /// of the user's active devices that this host does not hold (`have`: device id -> highest
    /// counter held), as Argon2id PHC hashes. Call it right after [`Outcome::Approved`]
    /// (within 5 minutes of the challenge's start); gives up at `deadline`.
    ///
    /// # Errors
    /// [`ClientError`]; an answer for another user, with ids that are not URL-safe, counters
    /// out of order or beyond the window, or values that are not Argon2id hashes is
    /// [`ClientError::BadAnswer`].
    ///
    /// [`Outcome::Approved`]: crate::Outcome::Approved
    pub fn offline_values_until(
        &self,
        login: &PendingLogin,
        have: &BTreeMap<String, u64>,
        deadline: Instant,
    ) -> Result<OfflineResponse, ClientError> {
        let path = format!("/v1/challenges/{}/offline", path_segment(&login.id));
        let body = OfflineRequest { have: have.clone() };
        let (answer, _): (OfflineResponse, _) =
            self.call_with_failover_until("POST", &path, Some(&body), deadline)?;
        check_values(&answer, &login.user)?;
        Ok(answer)
    }

    /// `POST /v1/users/{user}/offline-used`: reports that this host accepted the offline code
    /// `report.code` of `report.device_id` (counter `report.counter`) at `report.used_at`
    /// (RFC 3339 UTC) while no server could be reached. Returns the device's last used counter
    /// on the server (never lower than before).
    ///
    /// # Errors
    /// [`ClientError`]; `Rejected` with `not_found` when the device is gone (revoked), or
    /// `forbidden` when the code is not the device's value for that counter: such a report
    /// can be dropped.
    pub fn report_offline_used_until(
        &self,
        user: &str,
        report: &OfflineUsedRequest,
        deadline: Instant,
    ) -> Result<u64, ClientError> {
        let path = format!("/v1/users/{}/offline-used", path_segment(user));
        let (answer, _): (OfflineUsedResponse, _) =
            self.call_with_failover_until("POST", &path, Some(report), deadline)?;
        Ok(answer.counter)
    }
}

/// What a host stores from the answer must be well formed: it decides who logs in later.
fn check_values(answer: &OfflineResponse, user: &str) -> Result<(), ClientError> {
    let bad = |msg: String| Err(ClientError::BadAnswer(format!("offline values: {msg}")));
    if answer.user != user {
        return bad(format!("for user {:?}, not {user:?}", answer.user));
    }
    if answer.devices.len() > MAX_DEVICES {
        return bad(format!("more than {MAX_DEVICES} devices"));
    }
    for device in &answer.devices {
        if pushauth_proto::names::check_id("device", &device.device_id).is_err() {
            return bad("a device id is not URL-safe".into());
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&device.digits) {
            return bad(format!("{} digits", device.digits));
        }
        if device.values.len() as u64 > MAX_WINDOW {
            return bad("more values than a window holds".into());
        }
        let mut previous = device.last_used;
        for value in &device.values {
            if value.counter <= previous || value.counter > device.last_used + MAX_WINDOW {
                return bad("counters out of order or beyond the window".into());
            }
            previous = value.counter;
            if !value.hash.starts_with("$argon2id$")
                || value.hash.len() > MAX_HASH_CHARS
                || !value.hash.bytes().all(|b| b.is_ascii_graphic())
            {
                return bad("a value is not an Argon2id hash".into());
            }
        }
    }
    Ok(())
}

//! A device enrolled through the real API, and waiting for a challenge to reach it.

use std::ops::Deref;
use std::time::{Duration, Instant};

use pushauth_device::{ChallengeStatus, Decision, DeviceClient, PendingChallenge, Profile};
use pushauth_proto::DeviceSigningKey;

/// How long [`find_challenge`] waits for a challenge to reach a device.
const FIND_TIMEOUT: Duration = Duration::from_secs(20);

/// An enrolled device: its profile (what `pushauth-device enroll` stores) and a client for
/// it. Derefs to [`DeviceClient`] for `pending`, `respond`, `ack`, `notices`.
pub struct TestDevice {
    /// What the device stored at enrollment (server, user, device id, name, key seed).
    pub profile: Profile,
    /// The device's signed API client.
    pub client: DeviceClient,
}

impl TestDevice {
    /// A device from an enrollment's profile.
    pub fn new(profile: Profile) -> TestDevice {
        let client = DeviceClient::new(&profile)
            .unwrap_or_else(|e| panic!("a client for the enrolled device: {e}"));
        TestDevice { profile, client }
    }

    /// The device id pushauthd gave it.
    pub fn id(&self) -> &str {
        &self.profile.device_id
    }

    /// Its key (Ed25519 or ES256, as enrolled), for tests that sign requests or answers by hand.
    pub fn signing_key(&self) -> DeviceSigningKey {
        self.profile
            .signing_key()
            .unwrap_or_else(|e| panic!("the profile's key: {e}"))
    }

    /// The profile and the client, for harnesses that keep them apart.
    pub fn into_parts(self) -> (Profile, DeviceClient) {
        (self.profile, self.client)
    }

    /// Waits (up to 20 s) until challenge `id` is pending on this device.
    #[track_caller]
    pub fn find(&self, id: &str) -> PendingChallenge {
        find_challenge(&self.client, id)
    }

    /// Waits for challenge `id` and approves it, typing `code`; the server's answer.
    #[track_caller]
    pub fn approve(&self, id: &str, code: &str) -> ChallengeStatus {
        self.answer(id, Decision::Approve, code)
    }

    /// Waits for challenge `id` and denies it; the server's answer.
    #[track_caller]
    pub fn deny(&self, id: &str) -> ChallengeStatus {
        self.answer(id, Decision::Deny, "")
    }

    /// Waits for challenge `id` and answers it with `decision` and `code`; the server's answer.
    #[track_caller]
    pub fn answer(&self, id: &str, decision: Decision, code: &str) -> ChallengeStatus {
        let challenge = self.find(id);
        self.client
            .respond(&challenge, decision, code)
            .unwrap_or_else(|e| panic!("answering {id}: {e}"))
    }
}

impl Deref for TestDevice {
    type Target = DeviceClient;

    fn deref(&self) -> &DeviceClient {
        &self.client
    }
}

/// Long-polls `device` (up to 20 s) until challenge `id` is among its pending ones.
#[track_caller]
pub fn find_challenge(device: &DeviceClient, id: &str) -> PendingChallenge {
    let started = Instant::now();
    while started.elapsed() < FIND_TIMEOUT {
        let pending = device
            .pending(2)
            .unwrap_or_else(|e| panic!("listing pending challenges: {e}"));
        if let Some(found) = pending.into_iter().find(|c| c.id == id) {
            return found;
        }
    }
    panic!("challenge {id} never reached the device");
}

//! Offline codes on the CLI device (issue 12): the HOTP (RFC 4226) secret pushauthd handed out
//! at enrollment, kept in the 0600 profile with the last counter used, and the next code,
//! computed without any network.

use std::path::Path;

use pushauth_proto::b64;
use pushauth_proto::hotp::{hotp, HotpAlg};
use pushauth_proto::offline::EnrollOffline;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::profile::{load_profile, save_profile};
use crate::DeviceError;

/// The offline secret as the profile keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineSecret {
    /// base64url HOTP secret. Never printed.
    pub secret: Zeroizing<String>,
    /// Digits per code, 6 to 8.
    pub digits: u32,
    /// `sha1` or `sha256`.
    pub algorithm: String,
    /// The last counter a code was shown for (0: none yet).
    pub counter: u64,
}

impl std::fmt::Debug for OfflineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineSecret")
            .field("digits", &self.digits)
            .field("algorithm", &self.algorithm)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl OfflineSecret {
    /// From the enroll response's `offline` field (checked: algorithm, digits, secret length).
    ///
    /// # Errors
    /// [`DeviceError::BadAnswer`] for a field the device could not use.
    pub fn from_enroll(offline: &EnrollOffline) -> Result<OfflineSecret, DeviceError> {
        let bad = |why: String| DeviceError::BadAnswer(format!("offline secret: {why}"));
        let alg: HotpAlg = offline.algorithm.parse().map_err(|e| bad(format!("{e}")))?;
        let secret =
            Zeroizing::new(b64::decode(&offline.secret, "secret").map_err(|e| bad(e.to_string()))?);
        if secret.len() < 16 {
            return Err(bad("shorter than 128 bits".into()));
        }
        hotp(alg, &secret, 1, offline.digits).map_err(|e| bad(e.to_string()))?;
        Ok(OfflineSecret {
            secret: Zeroizing::new(offline.secret.clone()),
            digits: offline.digits,
            algorithm: offline.algorithm.clone(),
            counter: offline.counter,
        })
    }

    /// The code for `counter`.
    ///
    /// # Errors
    /// [`DeviceError::Profile`] when the stored secret is unusable.
    pub fn code(&self, counter: u64) -> Result<Zeroizing<String>, DeviceError> {
        let bad = |why: String| DeviceError::Profile(format!("offline secret: {why}"));
        let alg: HotpAlg = self.algorithm.parse().map_err(|e| bad(format!("{e}")))?;
        let secret =
            Zeroizing::new(b64::decode(&self.secret, "secret").map_err(|e| bad(e.to_string()))?);
        hotp(alg, &secret, counter, self.digits).map_err(|e| bad(e.to_string()))
    }
}

/// The next offline code of profile `name` in `dir`: its counter is advanced and the profile
/// saved (atomically) before the code is returned, so a code is never shown twice.
///
/// # Errors
/// [`DeviceError::Profile`] when the profile has no offline secret (enrolled before issue 12,
/// or the server has offline codes off) or cannot be saved.
pub fn next_code(dir: &Path, name: &str) -> Result<(u64, Zeroizing<String>), DeviceError> {
    let mut profile = load_profile(dir, name)?;
    let Some(offline) = profile.offline.as_mut() else {
        return Err(DeviceError::Profile(
            "this device has no offline secret (enrolled before offline codes, or the server has them off); enroll it again to get one".into(),
        ));
    };
    let counter = offline.counter.saturating_add(1);
    let code = offline.code(counter)?;
    offline.counter = counter;
    save_profile(dir, name, &profile, true)?;
    Ok((counter, code))
}

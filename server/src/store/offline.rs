//! The store's part of the offline codes (issue 12): one sealed HOTP secret per device and the
//! last counter used. A supertrait of [`Store`](super::Store), so the additions stay here.

use crate::clock::Millis;
use crate::store::StoreResult;

/// A device's offline secret as stored: sealed (AES-256-GCM, see
/// [`crate::offline::OfflineKey`]), never the plain secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OfflineSecretRecord {
    /// The device.
    pub device_id: String,
    /// Nonce ‖ ciphertext ‖ tag; the device id is the associated data.
    pub sealed: Vec<u8>,
    /// `sha1` or `sha256`.
    pub algorithm: String,
    /// Digits per code, 6 to 8.
    pub digits: u32,
    /// The highest counter used so far (0: none yet; the first code is counter 1).
    pub last_used: u64,
    /// The highest counter whose value was handed out to a host (0: none yet); a host can
    /// only report the use of a value it was given.
    pub served_to: u64,
}

impl std::fmt::Debug for OfflineSecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineSecretRecord")
            .field("device_id", &self.device_id)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("last_used", &self.last_used)
            .field("served_to", &self.served_to)
            .finish_non_exhaustive()
    }
}

/// What [`OfflineStore::advance_offline_counter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineAdvance {
    /// The last used counter before.
    pub before: u64,
    /// The last used counter after (`max(before, counter)`: never lower).
    pub after: u64,
}

/// Offline-code storage.
pub trait OfflineStore {
    /// Stores (or replaces) `device_id`'s sealed secret with counter 0.
    fn set_offline_secret(&self, record: &OfflineSecretRecord, now: Millis) -> StoreResult<()>;
    /// The offline secrets of `user`'s active devices, by device creation order.
    fn offline_secrets(&self, user: &str) -> StoreResult<Vec<OfflineSecretRecord>>;
    /// Moves `device_id`'s last used counter up to `counter` (never down); `None` when the
    /// device has no secret (unknown, revoked, or enrolled with offline codes off).
    fn advance_offline_counter(
        &self,
        device_id: &str,
        counter: u64,
    ) -> StoreResult<Option<OfflineAdvance>>;
    /// Records that values of `device_id` up to `counter` were handed out (its `served_to`
    /// moves up to it, never down).
    fn offline_served_to(&self, device_id: &str, counter: u64) -> StoreResult<()>;
    /// Whether any offline secret is stored (sealed under the key in `<data_dir>/offline-key`).
    fn any_offline_secret(&self) -> StoreResult<bool>;
}

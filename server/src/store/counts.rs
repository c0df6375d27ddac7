//! What bounds a relying party or a device between requests, counted in the database so that
//! every replica sees the same counts and a restart forgets none (issue 13 review): the one
//! batch of offline values an approval pays for, the offline-code reports already recorded
//! and the wrong ones per host, and the push subscription changes per device. The service
//! decides (the limits are its); these operations only count, each atomically. A supertrait
//! of [`Store`](super::Store), so the additions stay here.
//!
//! Bounds on the tables: every row comes from an authenticated caller (a relying party's key
//! or a device's signature) after the service checked the request, so an unauthenticated
//! request writes none. `offline_batches` holds one row per approved challenge whose values
//! were fetched, each deleted by the sweeper at its `keep_until`; `push_changes` one row per
//! device, deleted by the sweeper when its window ends; `offline_checks` one row per device
//! and relying party that reported a code of it (at most devices times relying parties;
//! [`Store::unlock_user`](super::Store::unlock_user) deletes the user's); `offline_reports`
//! one row per value a host reported, no more than the values handed out, pruned with the
//! audit events (`[retention] audit_days`) whose copies they prevent.

use crate::clock::Millis;
use crate::store::StoreResult;

/// Counts shared by the replicas.
pub trait CountStore {
    /// Claims the one batch of offline values `challenge_id` (an approved challenge) pays for,
    /// kept until `keep_until` (ms since the epoch; the sweeper deletes it after). `true` when
    /// this call claimed it, `false` when it was claimed before (by any replica).
    fn claim_offline_batch(&self, challenge_id: &str, keep_until: Millis) -> StoreResult<bool>;
    /// Gives a claim back (its hashing failed), so the host may try again on the approval.
    fn release_offline_batch(&self, challenge_id: &str) -> StoreResult<()>;
    /// Records that relying party `rp_id` reported `device_id`'s offline code `counter` at
    /// `now`. `true` the first time, `false` for a copy (nothing written).
    fn record_offline_report(
        &self,
        device_id: &str,
        rp_id: &str,
        counter: u64,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Counts one check of an offline code `rp_id` reported for `device_id`, before it is
    /// made: returns the checks counted so far, this one included (the wrong ones stay
    /// counted; take a right one back with [`CountStore::uncount_offline_check`]). Counting
    /// first means concurrent reports on several replicas cannot all see a count below the
    /// limit.
    fn count_offline_check(&self, device_id: &str, rp_id: &str) -> StoreResult<u64>;
    /// Takes back one check counted by [`CountStore::count_offline_check`] (the code was
    /// right, or could not be checked).
    fn uncount_offline_check(&self, device_id: &str, rp_id: &str) -> StoreResult<()>;
    /// Counts one push subscription change of `device_id` at `now` in its current window,
    /// which starts at the device's first change and lasts `window_ms` (a change after it
    /// starts a new one). Returns the changes in the window, this one included.
    fn count_push_change(
        &self,
        device_id: &str,
        now: Millis,
        window_ms: Millis,
    ) -> StoreResult<u64>;
}

//! The fingerprints of a site's keys, recorded when first used (issue 13 review): every
//! replica of a site must hold the same VAPID key and offline-code key (files in each
//! replica's data directory), and one that holds another refuses to start
//! (`crate::site_keys`). A supertrait of [`Store`](super::Store). The `site_keys` table holds
//! one row per key name (two).

use crate::clock::Millis;
use crate::store::StoreResult;

/// The keys' recorded fingerprints.
pub trait SiteKeyStore {
    /// Records `fingerprint` for the key `name` (`vapid`, `offline`) at `now` unless one is
    /// recorded, and returns the recorded one (the first replica's; equal to `fingerprint`
    /// when this call recorded it). Replicas starting together agree on one.
    fn pin_site_key(&self, name: &str, fingerprint: &str, now: Millis) -> StoreResult<String>;
}

//! Every replica of a site holds the same keys (issue 13 review): the VAPID key (a Web Push
//! subscription is bound to the key of the replica it was made through, so pushes from a
//! replica with another key fail) and the offline-code key (secrets sealed by one replica do
//! not open on another). Each key's fingerprint is recorded in the database when first used;
//! a replica whose key differs refuses to start, naming the key, its file and the fix.

use std::path::Path;

use thiserror::Error;

use crate::clock::Millis;
use crate::offline::OfflineKey;
use crate::store::{Store, StoreError};
use crate::webpush::VapidKey;

/// Why a replica's keys were refused.
#[derive(Debug, Error)]
pub enum SiteKeyError {
    /// The key file holds another key than the one the site's database recorded.
    #[error(
        "{what} in {path} is not this site's: its fingerprint {ours} differs from {site}, \
         which the database recorded when the first replica used it. Every replica of a site \
         must hold the same key ({why}); stop this replica, copy {path} from the first \
         replica's data directory (mode 0600, owned by the user pushauthd runs as) and start \
         it again"
    )]
    Differs {
        /// Which key, for people.
        what: &'static str,
        /// What goes wrong with two keys.
        why: &'static str,
        /// The key file.
        path: String,
        /// This replica's fingerprint.
        ours: String,
        /// The site's recorded fingerprint.
        site: String,
    },
    /// The fingerprints could not be read or recorded.
    #[error("recording the key fingerprints: {0}")]
    Store(#[from] StoreError),
}

/// Records the keys' fingerprints if the site has none yet, else checks this replica's keys
/// against them.
///
/// # Errors
/// [`SiteKeyError::Differs`] for the first key that differs (VAPID, then offline),
/// [`SiteKeyError::Store`].
pub fn check(
    store: &dyn Store,
    vapid: (&VapidKey, &Path),
    offline: (&OfflineKey, &Path),
    now: Millis,
) -> Result<(), SiteKeyError> {
    let keys = [
        (
            "vapid",
            vapid.0.fingerprint(),
            vapid.1,
            "the VAPID key",
            "Web Push subscriptions made through one replica fail on another",
        ),
        (
            "offline",
            offline.0.fingerprint().to_owned(),
            offline.1,
            "the offline-code key",
            "offline secrets sealed by one replica do not open on another",
        ),
    ];
    for (name, ours, path, what, why) in keys {
        let site = store.pin_site_key(name, &ours, now)?;
        if site != ours {
            return Err(SiteKeyError::Differs {
                what,
                why,
                path: path.display().to_string(),
                ours,
                site,
            });
        }
    }
    Ok(())
}

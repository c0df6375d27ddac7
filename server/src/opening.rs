//! Opening a replica's site: the store, then this replica's keys checked against the ones the
//! site's database recorded. One step, so that whatever of it fails only because the database
//! cannot answer yet is retried as a whole while the port refuses with 503
//! ([`crate::starting`]), instead of exiting and closing the port (which clients with
//! `server_unreachable = "safe"` read as "unreachable" and let in).

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::offline::{OfflineKey, OFFLINE_KEY_FILE};
use crate::store::open::Opened;
use crate::webpush::{VapidKey, WebPush};

/// The store open and the keys checked.
pub struct Site {
    /// The store.
    pub opened: Opened,
    /// The Web Push (VAPID) key, made on first start.
    pub vapid: VapidKey,
    /// The key sealing the devices' offline-code secrets, made on first start.
    pub offline_key: OfflineKey,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site").finish_non_exhaustive()
    }
}

/// Opens the store (migrating unless `config.migrate` is off), loads or makes the keys in the
/// data directory, and checks them against the site's (blocking).
///
/// # Errors
/// The store's ([`ServerError::is_transient`] tells those that waiting can fix), a missing
/// offline key while secrets sealed by one are stored, key files that cannot be read or made,
/// [`crate::site_keys::SiteKeyError`].
pub fn open(config: &ServerConfig) -> Result<Site, ServerError> {
    let opened = crate::store::open::open(&config.store, &config.data_dir, config.migrate)?;
    let store = opened.store.as_ref();
    let key_path = config.data_dir.join(OFFLINE_KEY_FILE);
    // A new key would open none of the stored secrets: every fetch of values would fail.
    // Checked before a VAPID key is made: a new replica started without the site's keys
    // made one of its own first, which then had to be replaced too (session 22).
    if !key_path.exists() && store.any_offline_secret()? {
        return Err(crate::offline::OfflineKeyError::Missing {
            path: key_path.display().to_string(),
        }
        .into());
    }
    // Made on first start, in the data directory `server::prepare` (or SQLite's store) made.
    let vapid = WebPush::load_key(config)?;
    let offline_key = OfflineKey::load_or_create(&key_path)?;
    // Replicas of a site share both keys: one with another key refuses to start.
    crate::site_keys::check(
        store,
        (&vapid, &WebPush::key_path(config)),
        (&offline_key, &key_path),
        crate::clock::now_ms(),
    )?;
    Ok(Site {
        opened,
        vapid,
        offline_key,
    })
}

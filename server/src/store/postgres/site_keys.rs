//! [`SiteKeyStore`](crate::store::SiteKeyStore) on PostgreSQL: the `site_keys` table
//! (migration 10). A replica inserting at the same time waits for the other's row and then
//! reads it.

use super::db::Db;
use super::error::get;
use crate::clock::Millis;
use crate::store::StoreResult;

/// [`SiteKeyStore::pin_site_key`](crate::store::SiteKeyStore::pin_site_key).
pub(super) fn pin<D: Db>(
    db: &D,
    name: &str,
    fingerprint: &str,
    now: Millis,
) -> StoreResult<String> {
    db.write(|c| {
        c.exec(
            "INSERT INTO site_keys (name, fingerprint, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
            &[&name, &fingerprint, &now],
        )?;
        get(
            &c.one(
                "SELECT fingerprint FROM site_keys WHERE name = $1",
                &[&name],
            )?,
            0,
        )
    })
}

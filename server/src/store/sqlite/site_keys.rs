//! [`SiteKeyStore`] on SQLite: the `site_keys` table (migration 10).

use rusqlite::params;

use super::connection::Db;
use crate::clock::Millis;
use crate::store::{SiteKeyStore, StoreResult};

impl<D: Db> SiteKeyStore for D {
    fn pin_site_key(&self, name: &str, fingerprint: &str, now: Millis) -> StoreResult<String> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO site_keys (name, fingerprint, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, fingerprint, now])?;
            tx.prepare_cached("SELECT fingerprint FROM site_keys WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
        })
    }
}

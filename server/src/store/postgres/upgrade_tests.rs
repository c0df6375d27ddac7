//! Upgrading a PostgreSQL database made by an older pushauthd (issue 13 review: migration 10).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use super::tests::{database, settings};
use super::PgStore;

#[test]
fn issue13_a_version_9_database_moves_to_the_current_version() {
    use crate::store::{CountStore, SiteKeyStore};
    if database("issue13_a_version_9_database").is_none() {
        return;
    }
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let name = format!("v9_{}", std::process::id());
    pg.create_database(&name);
    // A database as the first PostgreSQL release left it.
    pg.psql_db(&name, super::schema::BASELINE);
    pg.psql_db(
        &name,
        "CREATE TABLE schema_version (version BIGINT NOT NULL); \
         INSERT INTO schema_version VALUES (9)",
    );
    let store = PgStore::open(&settings(&pg.url(&name)), true).unwrap();
    assert_eq!(
        pg.psql_db(&name, "SELECT version FROM schema_version"),
        super::SCHEMA_VERSION.to_string()
    );
    assert!(store.claim_offline_batch("c1", 1_000).unwrap());
    assert_eq!(store.count_push_change("d1", 1, 10).unwrap(), 1);
    assert_eq!(store.pin_site_key("vapid", "aa", 1).unwrap(), "aa");
}

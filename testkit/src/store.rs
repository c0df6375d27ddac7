//! Which store the tests run on (issue 13): SQLite by default, PostgreSQL when
//! `PUSHAUTH_TEST_STORE=postgresql`. Then every [`TestServer`](crate::TestServer) (and every
//! store test that asks [`test_database`]) gets a database of its own in the one
//! [`PgCluster::shared`] cluster of the test process, copied from a migrated template
//! (`CREATE DATABASE … TEMPLATE`, much faster than migrating each).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use pushauth_server::config::StoreConfig;
use pushauth_server::store::postgres::{PgSettings, PgStore};

use crate::postgres::PgCluster;

/// The variable that picks the backend: `postgresql`, or unset (or `sqlite`) for SQLite.
pub const STORE_ENV: &str = "PUSHAUTH_TEST_STORE";

/// The migrated database every test database is copied from.
const TEMPLATE: &str = "pushauth_template";

/// Whether this test process runs on PostgreSQL (`PUSHAUTH_TEST_STORE=postgresql`; any other
/// value but `sqlite` panics, so a typo cannot quietly run the SQLite suite twice).
pub fn on_postgres() -> bool {
    match std::env::var(STORE_ENV).as_deref() {
        Ok("postgresql") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{STORE_ENV}={other}: use postgresql or sqlite"),
    }
}

/// The shared cluster, which must be there when PostgreSQL was asked for.
fn cluster() -> &'static PgCluster {
    PgCluster::shared("PUSHAUTH_TEST_STORE=postgresql")
        .unwrap_or_else(|| panic!("{STORE_ENV}=postgresql but PostgreSQL is not installed"))
}

/// A new, empty, migrated database in the shared cluster; its URL (no password: the test
/// cluster trusts loopback).
pub fn test_database() -> String {
    static TEMPLATE_READY: OnceLock<()> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pg = cluster();
    TEMPLATE_READY.get_or_init(|| {
        pg.create_database(TEMPLATE);
        let settings = settings(&pg.url(TEMPLATE));
        let store = PgStore::open(&settings, true)
            .unwrap_or_else(|e| panic!("cannot migrate the template database: {e}"));
        drop(store);
    });
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE {TEMPLATE}");
    // The template's last connection may still be closing.
    let mut tries = 0;
    loop {
        match pg.try_psql_db("postgres", &sql) {
            Ok(_) => break,
            Err(e) if tries < 50 && e.contains("being accessed") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    pg.url(&name)
}

fn settings(url: &str) -> PgSettings {
    PgSettings::parse(url, None, None).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The store a test server uses: a fresh PostgreSQL database on PostgreSQL runs, else the
/// default (SQLite in the data directory).
pub fn test_store_config() -> StoreConfig {
    if on_postgres() {
        StoreConfig::Postgres(Box::new(settings(&test_database())))
    } else {
        StoreConfig::DataDir
    }
}

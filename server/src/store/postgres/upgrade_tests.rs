//! Upgrading a PostgreSQL database made by an older pushauthd (issue 13 review: migration 10).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use super::tests::{database, settings};
use super::PgStore;

/// The shared test cluster and a new database `PREFIX_PID` as the first PostgreSQL release
/// left it (schema version 9).
fn version_9_database(prefix: &str) -> (&'static pushauth_testkit::PgCluster, String) {
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let name = format!("{prefix}_{}", std::process::id());
    pg.create_database(&name);
    pg.psql_db(&name, super::schema::BASELINE);
    pg.psql_db(
        &name,
        "CREATE TABLE schema_version (version BIGINT NOT NULL); \
         INSERT INTO schema_version VALUES (9)",
    );
    (pg, name)
}

#[test]
fn issue13_a_version_9_database_moves_to_the_current_version() {
    use crate::store::{CountStore, SiteKeyStore};
    if database("issue13_a_version_9_database").is_none() {
        return;
    }
    let (pg, name) = version_9_database("v9");
    let store = PgStore::open(&settings(&pg.url(&name)), true).unwrap();
    assert_eq!(
        pg.psql_db(&name, "SELECT version FROM schema_version"),
        super::SCHEMA_VERSION.to_string()
    );
    // Replicas of the older release may still run: a stand-in counts as their listener.
    assert_eq!(
        pg.psql_db(
            &name,
            "SELECT count(*) FROM replicas WHERE lock_key IS NULL AND until_ms > 0"
        ),
        "1"
    );
    assert!(store.claim_offline_batch("c1", 1_000).unwrap());
    assert_eq!(store.count_push_change("d1", 1, 10).unwrap(), 1);
    assert_eq!(store.pin_site_key("vapid", "aa", 1).unwrap(), "aa");
}

/// Replicas of a release before schema version 11 listen without registering (review of
/// session 15): a database migrated from an older version keeps notifying every login for
/// [`OLDER_RELEASES_FOR`](super::OLDER_RELEASES_FOR) (the rolling restart of the documented
/// upgrade), then stops; the next registration deletes the stand-in.
#[test]
fn issue13_replicas_of_an_older_release_hear_logins_after_the_migration() {
    use std::time::Duration;

    use pushauth_proto::{ChallengeState, Decision};

    use super::tests::{listener, replica, runtime};
    use crate::store::tests::{answer, challenge, enrolled};
    use crate::store::Store;
    if database("issue13_replicas_of_an_older_release").is_none() {
        return;
    }
    let (pg, name) = version_9_database("older");
    let url = pg.url(&name);
    // Migrated by a replica of this release.
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let runtime = runtime();
    let (own, _own_rx) = listener(&runtime, &url, Some(&store.listener_parts().replica));
    // A replica of the older release: LISTEN, no registration.
    let (old, old_rx) = listener(&runtime, &url, None);
    challenge(store.as_ref(), "c1", 1_000, 60_000);
    assert!(
        old_rx.recv_timeout(Duration::from_secs(2)).is_ok(),
        "an older replica did not hear a creation"
    );
    store
        .answer(
            "c1",
            &answer(Decision::Approve, ChallengeState::Approved),
            2_000,
        )
        .unwrap();
    // Both of the answer's notices (the challenge's and its device's), so that none of them
    // arrives late below, where silence is asserted.
    let mut waiting_for = vec![
        ("pushauth_challenge".to_owned(), "c1".to_owned()),
        ("pushauth_device".to_owned(), "d1".to_owned()),
    ];
    while !waiting_for.is_empty() {
        let (channel, payload, _) = old_rx
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|_| panic!("an older replica did not hear {waiting_for:?}"));
        waiting_for.retain(|heard| *heard != (channel.clone(), payload.clone()));
    }
    while old_rx.try_recv().is_ok() {}
    // Its day is over (as an admin may end it early): the logins are quiet, and the next
    // registration deletes the stand-in.
    pg.psql_db(
        &name,
        "UPDATE replicas SET until_ms = 0 WHERE lock_key IS NULL",
    );
    challenge(store.as_ref(), "c2", 3_000, 60_000);
    assert!(old_rx.recv_timeout(Duration::from_millis(300)).is_err());
    let (again, _again_rx) = listener(&runtime, &url, Some(&store.listener_parts().replica));
    assert_eq!(
        pg.psql_db(
            &name,
            "SELECT count(*) FROM replicas WHERE lock_key IS NULL"
        ),
        "0"
    );
    drop((own, old, again));
}

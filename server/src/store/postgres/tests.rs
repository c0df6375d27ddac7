//! What only the PostgreSQL store has to prove (issue 13): rules that hold across replicas
//! (two [`PgStore`]s on one database stand for two pushauthd processes), the NOTIFY contract,
//! the advisory locks, migrations, and "no primary" as [`DbErrorKind::Unavailable`]. They run
//! whenever PostgreSQL is installed (skipped, saying so, when not), on either test run.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::db::{ATOMIC_LOCK, SWEEP_LOCK};
use super::{connect_one, PgSettings, PgStore, CHALLENGE_CHANNEL, DEVICE_CHANNEL};
use crate::limits::Refusal;
use crate::store::tests::{answer, challenge, enrolled, enrolled_with, note};
use crate::store::{Cas, Create, DbError, DbErrorKind, NewChallenge, Store, StoreError};
use pushauth_proto::{ChallengeState, Decision};

/// A fresh migrated database's URL, or `None` (skipped) without PostgreSQL.
pub(crate) fn database(test: &str) -> Option<String> {
    if !pushauth_testkit::PgCluster::available()
        && std::env::var_os(pushauth_testkit::REQUIRE_ENV).is_none()
    {
        eprintln!("SKIPPED {test}: PostgreSQL is not installed");
        return None;
    }
    Some(pushauth_testkit::test_database())
}

pub(super) fn settings(url: &str) -> PgSettings {
    PgSettings::parse(url, None, Some(4)).unwrap()
}

pub(crate) fn replica(url: &str) -> Arc<PgStore> {
    Arc::new(PgStore::open(&settings(url), true).unwrap())
}

/// [`replica`] whose connections wait `ms` milliseconds for a lock (the URL's `options`).
fn replica_with_lock_timeout(url: &str, ms: u64) -> Arc<PgStore> {
    let join = if url.contains('?') { '&' } else { '?' };
    replica(&format!("{url}{join}options=-c%20lock_timeout%3D{ms}"))
}

/// A session of its own on `url` (another replica's connection, outside any store), on a
/// runtime whose worker drives it all the time. (A connection made on one runtime only
/// progresses while that runtime is driven: made on the test thread's runtime and polled on
/// another thread, it missed the server ending it, and the test hung in CI.)
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Session {
    pub(crate) fn open(url: &str) -> Session {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let s = settings(url);
        let client = runtime.block_on(async {
            let (client, connection) = connect_one(&s).await.unwrap();
            tokio::spawn(connection);
            client
        });
        Session { runtime, client }
    }

    /// Runs `sql` (simple protocol); no answer within 60 s fails the test.
    pub(crate) fn run(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        // The timer is made inside the runtime, which it needs.
        self.runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), self.client.batch_execute(sql)).await
            })
            .unwrap_or_else(|_| panic!("no answer to {sql:?} within 60 s"))
    }

    /// The first column of the first row `sql` returns, as text.
    fn value(&self, sql: &str) -> String {
        let rows = self
            .runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), self.client.simple_query(sql)).await
            })
            .unwrap_or_else(|_| panic!("no answer to {sql:?} within 60 s"))
            .unwrap();
        rows.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no row from {sql:?}"))
    }
}

fn kind(err: &StoreError) -> DbErrorKind {
    match err {
        StoreError::Db(DbError { kind, .. }) => *kind,
        other => panic!("not a database error: {other:?}"),
    }
}

/// [`tests::new_challenge`](crate::store::tests::new_challenge) without a code, open for a
/// minute.
pub(super) fn new_challenge(id: &str, now: i64) -> NewChallenge {
    NewChallenge {
        code: None,
        ..crate::store::tests::new_challenge(id, now, now + 60_000)
    }
}

#[test]
fn issue13_the_open_cap_holds_across_replicas() {
    let Some(url) = database("issue13_the_open_cap_holds_across_replicas") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    // Eight creations at once, half on each replica, for a cap of three open challenges: the
    // user's row lock makes each count see the others' inserts.
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let new = new_challenge(&format!("c{i}"), 1_000);
                store
                    .create_challenge(
                        &new,
                        std::sync::Arc::new(move |s| {
                            if s.open_user >= 3 {
                                Err(Refusal::TooManyOpenForUser)
                            } else {
                                Ok(())
                            }
                        }),
                    )
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<Create> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let created = results
        .iter()
        .filter(|r| matches!(r, Create::Created { .. }))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Create::Refused(Refusal::TooManyOpenForUser)))
        .count();
    assert_eq!((created, refused), (3, 5));
    assert_eq!(b.open_challenges(2_000).unwrap(), 3);
}

/// Session 11: replica A keeps active devices' keys; a revocation on B must still stop the
/// device's very next request on A. The key A answers may be the cached one, but spending the
/// nonce reads the device afresh, refuses it, stores nothing, and A forgets the key.
#[test]
fn issue13_a_device_revoked_on_one_replica_is_refused_by_the_other_despite_its_key_cache() {
    let Some(url) = database("issue13_a_device_revoked_on_one_replica_is_refused") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    assert!(a.device_key("d1").unwrap().unwrap().is_active());
    assert!(a
        .spend_device_nonce("d1", "n1", 1_000, 10_000)
        .unwrap()
        .is_fresh());
    b.revoke_device("d1", "admin", 2_000).unwrap();
    // A's cache may still say active: that is all device_key promises.
    let cached = a.device_key("d1").unwrap().unwrap();
    assert_eq!(
        cached.public_key,
        b.get_device("d1").unwrap().unwrap().public_key
    );
    assert_eq!(
        a.spend_device_nonce("d1", "n2", 2_001, 10_000).unwrap(),
        crate::store::Spent::Revoked
    );
    assert_eq!(
        Session::open(&url).value("SELECT count(*)::text FROM device_nonces WHERE nonce = 'n2'"),
        "0"
    );
    // And forgotten: the next look reads the revocation.
    assert!(!a.device_key("d1").unwrap().unwrap().is_active());
}

#[test]
fn issue13_a_nonce_used_on_one_replica_is_refused_on_the_other() {
    let Some(url) = database("issue13_a_nonce_used_on_one_replica_is_refused_on_the_other") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    assert!(a
        .spend_device_nonce("d1", "n1", 1_000, 10_000)
        .unwrap()
        .is_fresh());
    assert!(!b
        .spend_device_nonce("d1", "n1", 1_001, 10_000)
        .unwrap()
        .is_fresh());
    assert!(!a
        .spend_device_nonce("d1", "n1", 1_002, 10_000)
        .unwrap()
        .is_fresh());
    // Wrong codes counted on both replicas reach one lock.
    challenge(a.as_ref(), "c1", 1_000, 60_000);
    challenge(b.as_ref(), "c2", 1_000, 60_000);
    let mut wrong = answer(Decision::Approve, ChallengeState::Denied);
    wrong.code_tally = crate::store::CodeTally::Failed { lock_at: 2 };
    a.answer("c1", &wrong, 2_000).unwrap();
    b.answer("c2", &wrong, 2_000).unwrap();
    let facts = std::sync::Arc::new(std::sync::Mutex::new(0));
    let new = new_challenge("c3", 3_000);
    let seen = std::sync::Arc::clone(&facts);
    a.create_challenge(
        &new,
        std::sync::Arc::new(move |s| {
            *seen.lock().unwrap() = s.code_failures;
            Ok(())
        }),
    )
    .unwrap();
    assert_eq!(*facts.lock().unwrap(), 2);
}

/// A runtime for a test's own connections.
pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A notice as a listener receives it: channel, payload, sending server process.
pub(super) type Heard = (String, String, i32);

/// A session listening on the challenge and device channels, registered as the listener of
/// replica `registered` (`replicas.rs`) if given, and the notices it receives.
pub(super) fn listener(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    registered: Option<&super::ReplicaId>,
) -> (tokio_postgres::Client, mpsc::Receiver<Heard>) {
    let (tx, rx) = mpsc::channel();
    let s = settings(url);
    let client = runtime.block_on(async move {
        let (client, mut connection) = connect_one(&s).await.unwrap();
        tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if let tokio_postgres::AsyncMessage::Notification(n) = message {
                    let _ = tx.send((
                        n.channel().to_owned(),
                        n.payload().to_owned(),
                        n.process_id(),
                    ));
                }
            }
        });
        if let Some(id) = registered {
            super::register(&client, id).await.unwrap();
        }
        client
            .batch_execute("LISTEN pushauth_challenge; LISTEN pushauth_device")
            .await
            .unwrap();
        client
    });
    (client, rx)
}

#[test]
fn issue13_changes_are_notified_when_committed_and_only_then() {
    let Some(url) = database("issue13_changes_are_notified_when_committed_and_only_then") else {
        return;
    };
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let runtime = runtime();
    // Another replica's listener: it hears every change.
    let (client, rx) = listener(&runtime, &url, Some(&super::ReplicaId::new()));
    // Every notice comes from one of the store's own connections, which its listener tells
    // from another session's (this one's).
    let own = store.listener_parts().own_backends;
    let listening: i32 = runtime
        .block_on(client.query_one("SELECT pg_backend_pid()", &[]))
        .unwrap()
        .get(0);
    assert!(
        !own.contains(listening),
        "another session counted as the store's own"
    );
    let next = || {
        let (channel, payload, pid) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            own.contains(pid),
            "{channel} {payload} from process {pid}, not the store's own"
        );
        (channel, payload)
    };
    let device = |id: &str| (DEVICE_CHANNEL.to_owned(), id.to_owned());
    let changed = |id: &str| (CHALLENGE_CHANNEL.to_owned(), id.to_owned());

    challenge(store.as_ref(), "c1", 1_000, 60_000);
    assert_eq!(next(), device("d1"));
    store.acknowledge("c1", 2_000).unwrap();
    assert_eq!(next(), changed("c1"));
    store
        .answer(
            "c1",
            &answer(Decision::Approve, ChallengeState::Approved),
            3_000,
        )
        .unwrap();
    assert_eq!(next(), changed("c1"));
    assert_eq!(next(), device("d1"));
    // A unit that fails is rolled back, and so is what it would have told.
    challenge(store.as_ref(), "c2", 4_000, 60_000);
    assert_eq!(next(), device("d1"));
    let failed = store.atomic(&mut |s| {
        s.cancel("c2", None, 5_000)?;
        Err(StoreError::Corrupt("the unit fails".into()))
    });
    assert!(failed.is_err());
    store.audit(&note("marker"), 5_000).unwrap();
    assert_eq!(
        store.get_challenge("c2", 5_000).unwrap().unwrap().0.state,
        ChallengeState::Pending
    );
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    // Expiry on read is a change too.
    store.get_challenge("c2", 70_000).unwrap();
    assert_eq!(next(), changed("c2"));
    assert_eq!(next(), device("d1"));
    // A new binding wakes the user's other devices (they fetch their notices).
    enrolled(store.as_ref(), "alice", "d22");
    assert_eq!(next(), device("d1"));
    drop(client);
}

/// A login's NOTIFYs (creation, answer) go out only while another replica's listener is
/// registered and connected (`replicas.rs`); other changes notify always; a unit (no replica
/// id) notifies whenever any replica listens.
#[test]
fn issue13_a_replica_alone_sends_no_login_notices() {
    let Some(url) = database("issue13_a_replica_alone_sends_no_login_notices") else {
        return;
    };
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let runtime = runtime();
    let quiet = |rx: &mpsc::Receiver<Heard>, what: &str| {
        if let Ok(heard) = rx.recv_timeout(Duration::from_millis(300)) {
            panic!("{what}: heard {heard:?}");
        }
    };
    let heard = |rx: &mpsc::Receiver<Heard>| {
        let (channel, payload, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        (channel, payload)
    };
    let device = |id: &str| (DEVICE_CHANNEL.to_owned(), id.to_owned());
    let changed = |id: &str| (CHALLENGE_CHANNEL.to_owned(), id.to_owned());
    let approve = answer(Decision::Approve, ChallengeState::Approved);

    // The replica's own listener, registered as the store's own: nobody else listens.
    let own = store.listener_parts().replica;
    let (own_client, own_rx) = listener(&runtime, &url, Some(&own));
    challenge(store.as_ref(), "c1", 1_000, 60_000);
    quiet(&own_rx, "a creation with no other replica");
    // An acknowledgement notifies always.
    store.acknowledge("c1", 2_000).unwrap();
    assert_eq!(heard(&own_rx), changed("c1"));
    store.answer("c1", &approve, 3_000).unwrap();
    quiet(&own_rx, "an answer with no other replica");
    // The committed changes are there all the same.
    let (c1, _) = store.get_challenge("c1", 3_000).unwrap().unwrap();
    assert_eq!(c1.state, ChallengeState::Approved);

    // Another replica registers: both listeners hear the next login's notices.
    let other = super::ReplicaId::new();
    let (other_client, other_rx) = listener(&runtime, &url, Some(&other));
    challenge(store.as_ref(), "c2", 4_000, 60_000);
    assert_eq!(heard(&other_rx), device("d1"));
    assert_eq!(heard(&own_rx), device("d1"));
    store.answer("c2", &approve, 5_000).unwrap();
    assert_eq!(heard(&other_rx), changed("c2"));
    assert_eq!(heard(&other_rx), device("d1"));
    assert_eq!(heard(&own_rx), changed("c2"));
    assert_eq!(heard(&own_rx), device("d1"));

    // It goes away (its connection ends, so does its lock): its row stays, unheeded.
    drop(other_client);
    drop(other_rx);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for round in 0.. {
        let id = format!("c3-{round}");
        challenge(store.as_ref(), &id, 6_000, 60_000);
        store.cancel(&id, None, 6_001).unwrap();
        let mut told = Vec::new();
        while let Ok((channel, payload, _)) = own_rx.recv_timeout(Duration::from_millis(300)) {
            told.push((channel, payload));
        }
        // The cancel notifies always; the creation only while the other is still there.
        if told == [changed(&id), device("d1")] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still notifying a replica gone: {told:?}"
        );
    }
    let rows: i64 = runtime
        .block_on(own_client.query_one("SELECT count(*) FROM replicas", &[]))
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 2,
        "the row of a replica gone is kept until the next registration"
    );
    // The next registration deletes it, even while a write holds a shared lock on its key (as
    // every login's statement does that looks at it).
    let (looking, _looking_rx) = listener(&runtime, &url, None);
    runtime.block_on(looking.batch_execute("BEGIN")).unwrap();
    runtime
        .block_on(looking.execute(
            "SELECT pg_advisory_xact_lock_shared(lock_key) FROM replicas WHERE id = $1",
            &[&other.as_str()],
        ))
        .unwrap();
    let (again, _again_rx) = listener(&runtime, &url, Some(&own));
    let rows: i64 = runtime
        .block_on(again.query_one("SELECT count(*) FROM replicas", &[]))
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    runtime.block_on(looking.batch_execute("COMMIT")).unwrap();

    // A unit passes no replica id: it notifies while any replica listens (its own here).
    store
        .atomic(&mut |s| {
            s.create_challenge(
                &new_challenge("c4", 7_000),
                std::sync::Arc::new(move |_| Ok(())),
            )
            .map(|_| ())
        })
        .unwrap();
    assert_eq!(heard(&own_rx), device("d1"));
    drop((own_client, again));
}

#[test]
fn issue13_no_primary_is_unavailable_never_an_answer() {
    let Some(url) = database("issue13_no_primary_is_unavailable_never_an_answer") else {
        return;
    };
    // Nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = PgStore::open(
        &settings(&format!("postgresql://x@127.0.0.1:{dead}/x")),
        true,
    )
    .unwrap_err();
    assert_eq!(kind(&err), DbErrorKind::Unavailable, "{err}");
    // A read-only server (what a standby is) refuses writes as unavailable (25006), so the
    // API answers 503 and the client tries another server.
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let db = url.rsplit('/').next().unwrap();
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    pg.psql(&format!(
        "ALTER DATABASE \"{db}\" SET default_transaction_read_only = on; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ));
    let mut seen = None;
    for _ in 0..3 {
        // The first try may meet a pooled connection the terminate just closed.
        match store.spend_device_nonce("d1", "n1", 1_000, 10_000) {
            Err(e) => seen = Some(kind(&e)),
            Ok(v) => panic!("a read-only database took a write: {v:?}"),
        }
    }
    assert_eq!(seen, Some(DbErrorKind::Unavailable));
    // Not ready either: a load balancer routes around a replica on a read-only database.
    let err = store.health(true).unwrap_err();
    assert_eq!(kind(&err), DbErrorKind::Unavailable, "{err}");
}

#[test]
fn issue13_replicas_migrate_one_at_a_time_and_refuse_a_newer_schema() {
    if database("issue13_replicas_migrate_one_at_a_time").is_none() {
        return;
    }
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let name = format!("fresh_{}", std::process::id());
    pg.create_database(&name);
    let url = pg.url(&name);
    // Not migrated: --no-migrate refuses it.
    let err = PgStore::open(&settings(&url), false).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooOld {
                found: 0,
                wanted
            } if wanted == super::SCHEMA_VERSION
        ),
        "{err}"
    );
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, start) = (url.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                PgStore::open(&settings(&url), true).map(drop)
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(
        pg.psql_db(&name, "SELECT count(*) FROM schema_version"),
        "1"
    );
    assert_eq!(
        pg.psql_db(&name, "SELECT version FROM schema_version"),
        super::SCHEMA_VERSION.to_string()
    );
    PgStore::open(&settings(&url), false).unwrap();
    let newer = super::SCHEMA_VERSION + 1;
    pg.psql_db(
        &name,
        &format!("UPDATE schema_version SET version = {newer}"),
    );
    let err = PgStore::open(&settings(&url), true).unwrap_err();
    assert!(matches!(err, StoreError::TooNew(v) if v == newer), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn issue13_one_replica_sweeps_at_a_time() {
    let Some(url) = database("issue13_one_replica_sweeps_at_a_time") else {
        return;
    };
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    challenge(store.as_ref(), "c1", 1_000, 5_000);
    // Another replica is sweeping: it holds the lock in its transaction.
    let other = Session::open(&url);
    other
        .run(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({SWEEP_LOCK})"
        ))
        .unwrap();
    let swept = store.sweep(6_000, 100).unwrap();
    assert!(swept.expired.is_empty() && !swept.more);
    assert_eq!(store.open_challenges(1_000).unwrap(), 1);
    other.run("ROLLBACK").unwrap();
    let swept = store.sweep(6_000, 100).unwrap();
    assert_eq!(swept.expired.len(), 1);
}

#[test]
fn issue13_an_atomic_unit_keeps_other_replicas_writers_out() {
    let Some(url) = database("issue13_an_atomic_unit_keeps_other_replicas_writers_out") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    let (inside, entered) = mpsc::channel();
    let unit = {
        let a = Arc::clone(&a);
        std::thread::spawn(move || {
            a.atomic(&mut |s| {
                s.audit(&note("unit_read"), 1)?;
                inside.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(400));
                s.audit(&note("unit_write"), 2)
            })
            .unwrap();
        })
    };
    entered.recv().unwrap();
    // B's write waits for the unit to commit: it comes after both of the unit's writes.
    b.audit(&note("other"), 3).unwrap();
    unit.join().unwrap();
    let kinds: Vec<String> = b
        .list_audit(10, None)
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["unit_read", "unit_write", "other"]);
}

#[test]
fn issue13_tls_trusts_the_ca_file_and_nothing_else() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(url) = database("issue13_tls_trusts_the_ca_file_and_nothing_else") else {
        return;
    };
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    // The server's certificate names the address the URL uses; its key belongs to the
    // server's user, mode 0600 (PostgreSQL refuses it otherwise).
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let data = pg.data_dir();
    let owner = std::fs::metadata(&data).unwrap();
    let (crt, key) = (data.join("h2-server.crt"), data.join("h2-server.key"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    for f in [&crt, &key] {
        std::os::unix::fs::chown(f, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    pg.psql(&format!(
        "ALTER SYSTEM SET ssl_cert_file = '{}'",
        crt.display()
    ));
    pg.psql(&format!(
        "ALTER SYSTEM SET ssl_key_file = '{}'",
        key.display()
    ));
    pg.psql("ALTER SYSTEM SET ssl = on");
    pg.psql("SELECT pg_reload_conf()");
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(&other, stranger.cert.pem()).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tls_url = |file: &std::path::Path| format!("{url}?sslrootcert={}", file.display());
    // The reload takes a moment to reach new connections.
    let mut used_tls = false;
    for _ in 0..50 {
        let s = settings(&tls_url(&ca));
        if let Ok((client, connection)) = runtime.block_on(connect_one(&s)) {
            let driver = runtime.spawn(connection);
            let row = runtime
                .block_on(client.query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                ))
                .unwrap();
            used_tls = row.get(0);
            drop(client);
            let _ = runtime.block_on(driver);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(used_tls, "the connection trusting the CA file is encrypted");
    // The store itself works over it.
    let store = PgStore::open(&settings(&tls_url(&ca)), true).unwrap();
    store.health(true).unwrap();
    // A certificate the CA file does not vouch for is refused, as no primary would be.
    let err = runtime
        .block_on(connect_one(&settings(&tls_url(&other))))
        .map(drop)
        .unwrap_err();
    assert_eq!(kind(&err), DbErrorKind::Unavailable, "{err}");
    // And says what sslrootcert must be (session 24 newcomer walk).
    let said = err.to_string();
    assert!(
        said.contains("sslrootcert in [store] url must be the CA that signed"),
        "{said}"
    );
}

/// Attack (found in review): a replica that dies holding the store's lock inside a
/// transaction (power loss, a partition) used to freeze every other replica's writes until
/// TCP gave up on it, hours later. Now a write waiting for a lock gives up after
/// `lock_timeout` (a failure, fail closed), and PostgreSQL ends the idle holder's session after
/// `idle_in_transaction_session_timeout`, after which writes go through again.
#[test]
fn issue13_a_hung_lock_holder_neither_freezes_writes_nor_keeps_its_locks() {
    let Some(url) =
        database("issue13_a_hung_lock_holder_neither_freezes_writes_nor_keeps_its_locks")
    else {
        return;
    };
    let store = replica(&url);
    store.audit(&note("before"), 1).unwrap();
    // Another replica's atomic unit takes the lock, then its host stops answering.
    let hung = Session::open(&url);
    hung.run(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({ATOMIC_LOCK})"
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let err = store.audit(&note("blocked"), 2).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(kind(&err), DbErrorKind::Busy, "{err}");
    assert!(
        waited < Duration::from_secs(12),
        "the write waited {waited:?}"
    );
    // PostgreSQL ends the idle holder's session; writes go through again, without a ROLLBACK
    // from the holder.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match store.audit(&note("after"), 3) {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(kind(&e), DbErrorKind::Busy, "{e}");
            }
            Err(e) => panic!("writes still blocked 30 s later: {e}"),
        }
    }
    assert!(
        hung.run("SELECT 1").is_err(),
        "the holder's session was ended"
    );
}

/// A device's request nonce is one statement in PostgreSQL's implicit transaction: it neither
/// takes nor waits for the atomic units' lock (on the old code it waited behind one and failed
/// as busy), and it is still spent exactly once, kept when it reports fresh.
#[test]
fn issue13_a_nonce_is_spent_without_waiting_for_an_atomic_unit() {
    let Some(url) = database("issue13_a_nonce_is_spent_without_waiting_for_an_atomic_unit") else {
        return;
    };
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let unit = Session::open(&url);
    unit.run(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({ATOMIC_LOCK})"
    ))
    .unwrap();
    // While the unit holds the lock (a write waiting for it fails busy after lock_timeout).
    assert!(store
        .spend_device_nonce("d1", "n1", 1_000, 10_000)
        .unwrap()
        .is_fresh());
    assert!(!store
        .spend_device_nonce("d1", "n1", 1_001, 10_000)
        .unwrap()
        .is_fresh());
    // Committed, not held in a transaction of this connection: the unit's session sees it.
    assert_eq!(
        unit.value("SELECT count(*)::text FROM device_nonces WHERE nonce = 'n1'"),
        "1"
    );
    unit.run("ROLLBACK").unwrap();
    assert!(!replica(&url)
        .spend_device_nonce("d1", "n1", 1_002, 10_000)
        .unwrap()
        .is_fresh());
    // The fresh nonce's statement also kept the device's last_seen_at.
    let device = store.get_device("d1").unwrap().unwrap();
    assert_eq!(device.last_seen_at, Some(1_000));
}

/// Revokes alice's d1 on a fresh store of `url` while another session holds what `hold` takes
/// (run after `BEGIN`): the revocation must not finish until that session commits, and then
/// succeeds. `while_held` checks more while the session still holds it.
fn assert_revocation_waits_for(url: &str, hold: &str, what: &str, while_held: impl Fn(&Session)) {
    let store = replica(url);
    enrolled(store.as_ref(), "alice", "d1");
    let holder = Session::open(url);
    holder.run(&format!("BEGIN; {hold}")).unwrap();
    let revoking = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.revoke_device("d1", "admin", 5_000))
    };
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !revoking.is_finished(),
        "the revocation did not wait for {what}"
    );
    while_held(&holder);
    holder.run("COMMIT").unwrap();
    let revoked = revoking.join().unwrap().unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(5_000));
}

/// Attack review r10: a revocation must still wait for an atomic unit (enrollment by an
/// approving device, a grace login, a backup-code set each read the approver as active and then
/// write on its say-so). A slip had moved it out of its transaction with the nonce: it then
/// committed between a unit's read and its write, and reported success.
#[test]
fn issue13_a_revocation_waits_for_an_atomic_unit() {
    let Some(url) = database("issue13_a_revocation_waits_for_an_atomic_unit") else {
        return;
    };
    assert_revocation_waits_for(
        &url,
        &format!("SELECT pg_advisory_xact_lock({ATOMIC_LOCK})"),
        "the atomic unit",
        |unit| {
            assert_eq!(
                unit.value(
                    "SELECT count(*)::text FROM devices WHERE id = 'd1' AND revoked_at IS NULL"
                ),
                "1",
                "the unit saw the device revoked while it held the lock"
            );
        },
    );
}

/// Newcomer walk n2: a revocation on one replica and an approval by the same device on another
/// at the same moment. The answer's compare-and-set checks the device in a snapshot taken before
/// the revocation committed, so the approval committed after the revocation had answered 200
/// (2 of 3 tries over HTTP). A revocation now takes the user's row lock, which every answer
/// holds from its first statement: it waits for an answer in flight (here another replica's
/// answer after its first statement), and an answer that waited for it sees the device revoked.
#[test]
fn issue13_a_revocation_waits_for_an_answer_in_flight() {
    let Some(url) = database("issue13_a_revocation_waits_for_an_answer_in_flight") else {
        return;
    };
    assert_revocation_waits_for(
        &url,
        "SELECT 1 FROM users WHERE name = 'alice' FOR UPDATE",
        "the answer in flight",
        |_| {},
    );
}

/// The same race run for real on two replicas: whenever the approval is kept, it committed
/// before the revocation (its audit row comes first); never an approval after a revocation.
#[test]
fn issue13_no_approval_is_kept_after_a_racing_revocation() {
    let Some(url) = database("issue13_no_approval_is_kept_after_a_racing_revocation") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    for round in 0..30 {
        let (user, device, id) = (
            format!("u{round}"),
            format!("d{round}"),
            format!("c{round}"),
        );
        enrolled_with(
            a.as_ref(),
            &user,
            &device,
            [u8::try_from(round).unwrap(); 32],
        );
        let mut new = new_challenge(&id, 1_000);
        new.user = user.clone();
        assert!(matches!(
            a.create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
                .unwrap(),
            Create::Created { .. }
        ));
        let start = Arc::new(Barrier::new(2));
        let revoking = {
            let (a, start, device) = (Arc::clone(&a), Arc::clone(&start), device.clone());
            std::thread::spawn(move || {
                start.wait();
                a.revoke_device(&device, "admin", 5_000)
            })
        };
        let mut approve = answer(Decision::Approve, ChallengeState::Approved);
        approve.device_id = device.clone();
        start.wait();
        let answered = b.answer(&id, &approve, 5_000).unwrap();
        revoking.join().unwrap().unwrap();
        if matches!(answered, Cas::Changed(_)) {
            let mut events = b.list_audit(100, Some(&user)).unwrap();
            events.sort_by_key(|e| e.id);
            let order = events
                .into_iter()
                .filter(|e| e.device_id.as_deref() == Some(device.as_str()))
                .map(|e| e.kind)
                .collect::<Vec<_>>();
            let answered_at = order.iter().position(|k| k == "challenge_answered");
            let revoked_at = order.iter().position(|k| k == "revoked");
            assert!(
                answered_at < revoked_at,
                "round {round}: an approval was kept after the revocation: {order:?}"
            );
        }
    }
}

/// Attack review r8: the connections' tasks only run while a job thread waits on a statement,
/// so a quiet replica did not notice PostgreSQL closing its pooled connections (a restart, a
/// failover) and handed the dead ones out: one 503 per pooled connection before it healed.
/// After a restart, the first operations must succeed.
#[test]
fn issue13_a_quiet_store_serves_at_once_after_postgresql_restarts() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("quiet restart") else {
        return;
    };
    pg.create_database("quiet");
    let store = PgStore::open(&settings(&pg.url("quiet")), true).unwrap();
    // Fill the pool (4 connections) and leave them idle.
    let busy: Vec<_> = (0..4).map(|_| store.connection().unwrap()).collect();
    drop(busy);
    store.open_challenges(0).unwrap();
    pg.restart();
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..8 {
        let result = store.open_challenges(0);
        assert!(
            result.is_ok(),
            "operation {i} after the restart: {result:?}"
        );
    }
}

/// Attack (issue 13 profile): the limits' check that a source is known was an `EXISTS` that
/// PostgreSQL's generic plan (the one a prepared statement keeps after its fifth run) served
/// with a sequential scan of `challenges`: a push from a new source read the whole table, on
/// every login attempt. Every part of the statement must use an index, in that plan too, on a
/// table of some size.
/// The limits statement's generic plan (the one a prepared statement keeps after its fifth
/// run) in test database `db` after `setup`'s challenges, `explain`ed (`EXPLAIN` or `EXPLAIN
/// (ANALYZE, …)`) for user `user` pushing from `source`.
fn limits_plan(test: &str, setup: &str, explain: &str, user: &str, source: &str) -> Option<String> {
    let url = database(test)?;
    let db = url.rsplit('/').next().unwrap();
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    pg.psql_db(
        db,
        &format!(
            "INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, \
             rp_nonce, devices, created_at, expires_at, updated_at, source) {setup}"
        ),
    );
    let sql = super::limits::push_state_and_devices_sql();
    Some(pg.psql_db(
        db,
        &format!(
            "SET plan_cache_mode = force_generic_plan; \
             PREPARE p(text, text, text, bigint, bigint, bigint, bytea) AS {sql}; \
             {explain} EXECUTE p('{user}', 'rp', '{source}', 1200000, 1100000, 0, NULL)"
        ),
    ))
}

#[test]
fn issue13_the_limits_statement_reads_no_whole_table() {
    // 20,000 challenges of 10 users, almost all approved, from their usual source: the
    // planner expects a match early in the table, and the attacker's new source has none.
    let Some(plan) = limits_plan(
        "issue13_the_limits_statement_reads_no_whole_table",
        "SELECT 'c' || g, 'u' || (g % 10), 'rp', \
         CASE WHEN g % 50 = 0 THEN 'pending' ELSE 'approved' END, '{}', '\\x00', '\\x00', \
         '[]', 1000000 + g * 10, 1060000 + g * 10, 1000000 + g * 10, 'usual' \
         FROM generate_series(1, 20000) AS g; ANALYZE challenges",
        "EXPLAIN",
        "u7",
        "a new source",
    ) else {
        return;
    };
    assert!(plan.contains("challenges"), "{plan}");
    assert!(!plan.contains("Seq Scan on challenges"), "{plan}");
}

/// Session 20 (bench profile): whether a push's source is known must read one approved
/// challenge of the user from that source, not each of them. As `max()` over them, the generic
/// plan of a table not yet analyzed (a new site's, the bench's) aggregated every one: 448 heap
/// fetches per push in the bench, and a sysadmin's month of sudo is as many.
#[test]
fn session20_a_known_source_costs_one_index_entry() {
    // 2,000 approved challenges of u7 from its usual source, 2,000 of nine other users, and
    // no statistics yet (as on a new site, or in the bench before its ANALYZE).
    let Some(run) = limits_plan(
        "session20_a_known_source_costs_one_index_entry",
        "SELECT 'c' || g, CASE WHEN g <= 2000 THEN 'u7' ELSE 'v' || (g % 9) END, 'rp', \
         'approved', '{}', '\\x00', '\\x00', '[]', 1000000 + g * 10, 1060000 + g * 10, \
         1000000 + g * 10, 'usual' \
         FROM generate_series(1, 4000) AS g",
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)",
        "u7",
        "usual",
    ) else {
        return;
    };
    let fetched: u64 = run
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Heap Fetches: "))
        .map(|n| n.trim().parse::<u64>().unwrap())
        .sum();
    let read: u64 = run
        .lines()
        .take_while(|line| !line.starts_with("Planning"))
        .filter_map(|line| line.trim().strip_prefix("Buffers: shared hit="))
        .filter_map(|n| n.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    // Whatever the plan's shape: no scan of `challenges` yields or filters out more than a
    // few rows.
    let rows_of = |line: &str, key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let most = run
        .lines()
        .map(|line| {
            if line.contains(" on challenges") {
                rows_of(line, " rows=")
            } else {
                rows_of(line, "Rows Removed by Filter: ")
            }
        })
        .max()
        .unwrap_or(0);
    assert!(
        fetched <= 10 && read <= 100 && most <= 10,
        "{fetched} heap fetches, {read} buffers, {most} rows:\n{run}"
    );
}

/// Attack on the pipelining (issue 13): statements whose results an operation does not wait
/// for (its audit row, its NOTIFY, the challenge's own INSERT) go with the next statement or
/// the COMMIT. One of them failing must fail the operation and keep none of it; the caller
/// must never hear "created" or "approved" for what was rolled back, and the connection must
/// serve the next operation.
#[test]
fn issue13_a_failed_later_statement_fails_its_operation_and_keeps_nothing() {
    let Some(url) = database("issue13_a_failed_later_statement") else {
        return;
    };
    let db = url.rsplit('/').next().unwrap();
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let rows = |sql: &str| pg.psql_db(db, sql);

    // The audit row of a creation cannot be written: no challenge, and an error.
    rows("ALTER TABLE audit ADD CONSTRAINT no_created CHECK (kind <> 'challenge_created')");
    let new = new_challenge("c1", 1_000);
    let err = store
        .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
        .unwrap_err();
    assert!(err.to_string().contains("no_created"), "{err}");
    assert_eq!(rows("SELECT count(*) FROM challenges"), "0");
    assert_eq!(rows("SELECT count(*) FROM open_challenge_devices"), "0");
    rows("ALTER TABLE audit DROP CONSTRAINT no_created");
    assert!(matches!(
        store
            .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
            .unwrap(),
        Create::Created { .. }
    ));

    // The audit row of an answer cannot be written: the challenge stays pending, and the
    // device hears of a failure, not of an approval.
    rows("ALTER TABLE audit ADD CONSTRAINT no_answer CHECK (kind <> 'challenge_answered')");
    let approve = answer(Decision::Approve, ChallengeState::Approved);
    let err = store.answer("c1", &approve, 2_000).unwrap_err();
    assert!(err.to_string().contains("no_answer"), "{err}");
    assert_eq!(
        rows("SELECT state FROM challenges WHERE id = 'c1'"),
        "pending"
    );
    assert_eq!(rows("SELECT count(*) FROM open_challenge_devices"), "1");
    rows("ALTER TABLE audit DROP CONSTRAINT no_answer");

    // A single statement that carries the COMMIT: refused, nothing kept, and the next use of
    // the same nonce is still fresh.
    rows("ALTER TABLE device_nonces ADD CONSTRAINT no_n1 CHECK (nonce <> 'n1')");
    assert!(store.spend_device_nonce("d1", "n1", 1_000, 10_000).is_err());
    rows("ALTER TABLE device_nonces DROP CONSTRAINT no_n1");
    assert!(store
        .spend_device_nonce("d1", "n1", 1_000, 10_000)
        .unwrap()
        .is_fresh());
    assert!(!store
        .spend_device_nonce("d1", "n1", 1_000, 10_000)
        .unwrap()
        .is_fresh());

    // The same connections go on: the answer goes through now.
    assert!(matches!(
        store.answer("c1", &approve, 3_000).unwrap(),
        Cas::Changed(_)
    ));
    assert_eq!(
        rows("SELECT kind FROM audit ORDER BY id DESC LIMIT 1"),
        "challenge_answered"
    );
}

/// Attack (issue 13, the answer's pipelined statements): answers racing on two replicas must
/// count every wrong code, and none may pass the wrong-code lock: eight wrong codes at once
/// against a lock at five leave exactly five counted (denied) and three refused.
#[test]
fn issue13_racing_wrong_codes_on_two_replicas_stop_at_the_lock() {
    use crate::store::CodeTally;
    use pushauth_proto::Reason;
    let Some(url) = database("issue13_racing_wrong_codes") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    for i in 0..8 {
        let mut new = new_challenge(&format!("c{i}"), 1_000 + i);
        new.code = Some("42".into());
        assert!(matches!(
            a.create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
                .unwrap(),
            Create::Created { .. }
        ));
    }
    let start = Arc::new(Barrier::new(8));
    let outcomes: Vec<Cas> = (0..8)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut wrong = answer(Decision::Approve, ChallengeState::Denied);
                wrong.reason = Some(Reason::CodeMismatch);
                wrong.typed_code = "13".into();
                wrong.code_tally = CodeTally::Failed { lock_at: 5 };
                start.wait();
                store.answer(&format!("c{i}"), &wrong, 2_000).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let counted = outcomes
        .iter()
        .filter(|o| matches!(o, Cas::Changed(c) if c.state == ChallengeState::Denied))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Cas::CodeLocked(_)))
        .count();
    assert_eq!((counted, refused), (5, 3), "{outcomes:?}");
    // And a right code is refused too now, on either replica.
    let mut new = new_challenge("c9", 3_000);
    new.code = Some("42".into());
    let refused = a.create_challenge(
        &new,
        std::sync::Arc::new(move |state| {
            assert_eq!(state.code_failures, 5);
            Ok(())
        }),
    );
    assert!(matches!(refused.unwrap(), Create::Created { .. }));
    let mut right = answer(Decision::Approve, ChallengeState::Approved);
    right.code_tally = CodeTally::Reset { lock_at: 5 };
    assert!(matches!(
        b.answer("c9", &right, 3_500).unwrap(),
        Cas::CodeLocked(_)
    ));
}

/// Attack (issue 13 profile): a device's poll joined `open_challenge_devices` to `challenges`,
/// and PostgreSQL's generic plan hashed the whole `challenges` table for it (47 pages a poll
/// on the bench's small table; every page of a large one). The poll must look up only the
/// device's own open challenges by primary key, at any table size.
#[test]
fn issue13_a_device_poll_reads_only_its_own_challenges() {
    let Some(url) = database("issue13_a_device_poll_reads_only_its_own_challenges") else {
        return;
    };
    let db = url.rsplit('/').next().unwrap();
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let explain = |rows: u32| {
        pg.psql_db(
            db,
            &format!(
                "TRUNCATE challenges, open_challenge_devices; \
                 INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, \
                 rp_nonce, devices, created_at, expires_at, updated_at, source) \
                 SELECT 'c' || g, 'u' || (g % 12), 'rp', \
                 CASE WHEN g % 40 = 0 THEN 'pending' ELSE 'approved' END, '{{}}', '\\x00', \
                 '\\x00', '[]', 1000000 + g * 10, 1060000 + g * 10, 1000000 + g * 10, '' \
                 FROM generate_series(1, {rows}) AS g; \
                 INSERT INTO open_challenge_devices (device_id, challenge_id) \
                 SELECT 'd' || (g % 12), 'c' || g FROM generate_series(1, {rows}) AS g \
                 WHERE g % 40 = 0; ANALYZE challenges; ANALYZE open_challenge_devices"
            ),
        );
        let sql = super::challenges::device_challenges_sql();
        // The poll that spends its request's nonce in the same statement (session 13).
        let spending = super::challenges::device_challenges_spending_sql();
        [
            pg.psql_db(
                db,
                &format!(
                    "SET plan_cache_mode = force_generic_plan; PREPARE p(text) AS {sql}; \
                     EXPLAIN EXECUTE p('d1')"
                ),
            ),
            pg.psql_db(
                db,
                &format!(
                    "SET plan_cache_mode = force_generic_plan; \
                     PREPARE q(text, text, bigint, bigint, text, text) AS {spending}; \
                     EXPLAIN EXECUTE q('d1', 'n1', 1, 1, 'ed25519', 'k')"
                ),
            ),
        ]
    };
    for rows in [1_000, 20_000] {
        for plan in explain(rows) {
            assert!(plan.contains("challenges_pkey"), "{rows} rows: {plan}");
            assert!(
                !plan.contains("Seq Scan on challenges"),
                "{rows} rows: {plan}"
            );
        }
    }
}

/// Attack review r9: nothing pinned READ COMMITTED. With the database's default set to
/// `repeatable read`, a creation's snapshot was taken by its first statement, before it
/// waited for the user's row, and its limits missed the challenge the lock's last holder
/// (another replica) had just committed: one push past the open cap per racing replica.
#[test]
fn issue13_limits_see_the_last_lock_holders_challenge_whatever_the_default_isolation() {
    let Some(url) = database("issue13_limits_see_the_last_lock_holders_challenge") else {
        return;
    };
    let db = url.rsplit('/').next().unwrap();
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    pg.psql_db(
        db,
        &format!("ALTER DATABASE \"{db}\" SET default_transaction_isolation = 'repeatable read'"),
    );
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    // Another replica creates a challenge for alice, holding her row until it commits.
    let holder = Session::open(&url);
    holder
        .run(
            "BEGIN; SELECT 1 FROM users WHERE name = 'alice' FOR UPDATE; \
             INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, \
             rp_nonce, devices, created_at, expires_at, updated_at) VALUES ('other', 'alice', \
             'rp', 'pending', '{}', '\\x00', '\\x00', '[\"d1\"]', 1000, 61000, 1000)",
        )
        .unwrap();
    let creating = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            store.create_challenge(
                &new_challenge("c1", 1_500),
                std::sync::Arc::new(move |state| {
                    if state.open_user >= 1 {
                        Err(Refusal::TooManyOpenForUser)
                    } else {
                        Ok(())
                    }
                }),
            )
        })
    };
    // Commit once the creation waits for alice's row.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pg.psql_db(
        db,
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.datname = current_database()",
    ) == "0"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the creation never waited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.run("COMMIT").unwrap();
    let outcome = creating.join().unwrap().unwrap();
    assert!(
        matches!(outcome, Create::Refused(Refusal::TooManyOpenForUser)),
        "{outcome:?}"
    );
}

/// Attack review r9: a later statement the driver refuses before sending it (a parameter of
/// the wrong type) left the rest of the round trip, the COMMIT among them, to go without it:
/// the operation failed, yet the statements queued before it were committed.
#[test]
fn issue13_a_later_statement_refused_unsent_keeps_nothing_of_its_transaction() {
    use super::db::Db;
    let Some(url) = database("issue13_a_later_statement_refused_unsent") else {
        return;
    };
    let db = url.rsplit('/').next().unwrap();
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let store = replica(&url);
    let result = store.write(|c| {
        super::audit::later_audit(c, &note("queued_first"), 1)?;
        // An i32 for the text column `kind`.
        c.later(
            "INSERT INTO audit (at, kind) VALUES ($1, $2)",
            vec![Box::new(2_i64), Box::new(5_i32)],
        )
    });
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        pg.psql_db(db, "SELECT count(*) FROM audit WHERE kind = 'queued_first'"),
        "0"
    );
    // The store goes on.
    store.audit(&note("after"), 3).unwrap();
    assert_eq!(
        pg.psql_db(db, "SELECT count(*) FROM audit WHERE kind = 'after'"),
        "1"
    );
}

/// An ended challenge leaves its devices' index (the table a device's poll walks), whichever
/// way its answer was written: in the compare-and-set statement with the `COMMIT` in the same
/// round trip, or after it (a wrong code is counted in the answer's transaction). A refusal
/// found after that `COMMIT` is told apart in a transaction of its own: the challenge's state,
/// or its expiry (which ends it too).
#[test]
fn issue13_an_ended_challenge_leaves_its_devices_index() {
    let Some(url) = database("issue13_an_ended_challenge_leaves_its_devices_index") else {
        return;
    };
    let store = replica(&url);
    enrolled(store.as_ref(), "alice", "d1");
    let session = Session::open(&url);
    let count = |sql: &str| session.value(sql);
    let indexed = |id: &str| {
        count(&format!(
            "SELECT count(*) FROM open_challenge_devices WHERE challenge_id = '{id}'"
        ))
    };
    let approve = answer(Decision::Approve, ChallengeState::Approved);

    challenge(store.as_ref(), "c1", 1_000, 60_000);
    assert_eq!(indexed("c1"), "1");
    assert!(matches!(
        store.answer("c1", &approve, 2_000).unwrap(),
        Cas::Changed(_)
    ));
    assert_eq!(indexed("c1"), "0");
    assert!(matches!(
        store.answer("c1", &approve, 2_500).unwrap(),
        Cas::WrongState(c) if c.state == ChallengeState::Approved
    ));

    challenge(store.as_ref(), "c2", 3_000, 60_000);
    let mut wrong = answer(Decision::Approve, ChallengeState::Denied);
    wrong.code_tally = crate::store::CodeTally::Failed { lock_at: 5 };
    assert!(matches!(
        store.answer("c2", &wrong, 4_000).unwrap(),
        Cas::Changed(_)
    ));
    assert_eq!(indexed("c2"), "0");
    assert_eq!(
        count("SELECT count FROM code_failures WHERE user_name = 'alice'"),
        "1"
    );

    challenge(store.as_ref(), "c3", 5_000, 6_000);
    assert!(matches!(
        store.answer("c3", &approve, 7_000).unwrap(),
        Cas::Expired(c) if c.state == ChallengeState::Expired
    ));
    assert_eq!(indexed("c3"), "0");
    assert_eq!(
        count(
            "SELECT count(*) FROM audit WHERE challenge_id = 'c3' AND kind = 'challenge_expired'"
        ),
        "1"
    );
}

/// A device request's nonce for `device` (what the service's request check hands the store).
fn request_nonce(device: &str, nonce: &str) -> crate::store::RequestNonce {
    crate::store::RequestNonce {
        device_id: device.into(),
        alg: "ed25519".into(),
        public_key: "k".into(),
        nonce: nonce.into(),
        valid_until: 100_000,
    }
}

/// Attack review of session 14: the answer whose lock statement, compare-and-set and `COMMIT`
/// go in one round trip, with its compare-and-set refused by the server (a NUL byte passes the
/// client's check; PostgreSQL refuses it at Bind). Nothing is kept (no state, no nonce, no
/// audit row, the index row stays), no connection is left in a transaction, and the same
/// connection (a pool of one) then commits the answer.
#[test]
fn issue13_a_failed_statement_in_the_answer_s_one_round_trip_keeps_nothing() {
    let Some(url) = database("issue13_a_failed_statement_in_the_answer_s_one_round_trip") else {
        return;
    };
    let store =
        Arc::new(PgStore::open(&PgSettings::parse(&url, None, Some(1)).unwrap(), true).unwrap());
    enrolled(store.as_ref(), "alice", "d1");
    challenge(store.as_ref(), "c1", 1_000, 60_000);
    let session = Session::open(&url);
    let in_transaction = "SELECT count(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
    let mut bad = answer(Decision::Approve, ChallengeState::Approved);
    bad.typed_code = "4\u{0}2".into();
    assert!(store
        .answer_spending(&request_nonce("d1", "n1"), "c1", &bad, 2_000)
        .is_err());
    assert_eq!(
        session.value("SELECT state FROM challenges WHERE id = 'c1'"),
        "pending"
    );
    assert_eq!(
        session.value("SELECT count(*) FROM device_nonces WHERE nonce = 'n1'"),
        "0"
    );
    assert_eq!(
        session.value("SELECT count(*) FROM audit WHERE kind = 'challenge_answered'"),
        "0"
    );
    assert_eq!(
        session.value("SELECT count(*) FROM open_challenge_devices WHERE challenge_id = 'c1'"),
        "1"
    );
    assert_eq!(session.value(in_transaction), "0");
    let good = answer(Decision::Approve, ChallengeState::Approved);
    let kept = store
        .answer_spending(&request_nonce("d1", "n1"), "c1", &good, 2_100)
        .unwrap()
        .unwrap();
    assert!(matches!(kept, Cas::Changed(_)), "{kept:?}");
    let again = store
        .answer_spending(&request_nonce("d1", "n2"), "c1", &good, 2_200)
        .unwrap()
        .unwrap();
    assert!(matches!(again, Cas::WrongState(_)), "{again:?}");
    assert_eq!(session.value(in_transaction), "0");
}

/// Attack review of session 14: a right code (one round trip) on replica A racing four wrong
/// codes (two round trips) on B, with the lock at three: the right code is never kept after
/// three wrong ones, and the count never passes the lock.
#[test]
fn issue13_a_right_code_cannot_pass_a_racing_wrong_code_lock() {
    use crate::store::CodeTally;
    let Some(url) = database("issue13_a_right_code_cannot_pass_a_racing_wrong_code_lock") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    let session = Session::open(&url);
    for round in 0..10 {
        session.run("DELETE FROM code_failures").unwrap();
        for id in (0..4)
            .map(|i| format!("r{round}w{i}"))
            .chain([format!("r{round}ok")])
        {
            let mut new = new_challenge(&id, 1_000);
            new.code = Some("42".into());
            a.create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
                .unwrap();
        }
        let start = Arc::new(Barrier::new(5));
        let wrong: Vec<_> = (0..4)
            .map(|i| {
                let (b, start) = (Arc::clone(&b), Arc::clone(&start));
                std::thread::spawn(move || {
                    let mut wrong = answer(Decision::Approve, ChallengeState::Denied);
                    wrong.typed_code = "13".into();
                    wrong.code_tally = CodeTally::Failed { lock_at: 3 };
                    start.wait();
                    b.answer(&format!("r{round}w{i}"), &wrong, 2_000).unwrap()
                })
            })
            .collect();
        let mut right = answer(Decision::Approve, ChallengeState::Approved);
        right.code_tally = CodeTally::Reset { lock_at: 3 };
        start.wait();
        let kept = a.answer(&format!("r{round}ok"), &right, 2_000).unwrap();
        for t in wrong {
            t.join().unwrap();
        }
        let order = session.value(&format!(
            "SELECT coalesce(string_agg(challenge_id, ',' ORDER BY id), '') FROM audit \
             WHERE kind = 'challenge_answered' AND challenge_id LIKE 'r{round}%'"
        ));
        if matches!(kept, Cas::Changed(_)) {
            let before = order.split(',').take_while(|c| !c.ends_with("ok")).count();
            assert!(
                before < 3,
                "round {round}: kept after {before} wrong codes: {order}"
            );
        } else {
            assert!(
                matches!(kept, Cas::CodeLocked(_)),
                "round {round}: {kept:?}"
            );
        }
        let count: i64 = session
            .value(
                "SELECT coalesce((SELECT count FROM code_failures WHERE user_name = 'alice'), 0)",
            )
            .parse()
            .unwrap();
        assert!(count <= 3, "round {round}: {count} wrong codes counted");
    }
}

/// Session 18: creations made while another is under way wait for it and then share one
/// batch (one transaction); each caller gets its own challenge, and every row is there.
#[test]
fn session18_creations_during_one_share_the_next_batch_and_each_gets_its_own() {
    use super::db::Db;
    let Some(url) = database("session18_creations_share_the_next_batch") else {
        return;
    };
    let store = replica(&url);
    let users: Vec<String> = (0..12).map(|i| format!("u{i:02}")).collect();
    for (i, user) in users.iter().enumerate() {
        enrolled_with(store.as_ref(), user, &format!("d{i:02}"), [i as u8 + 1; 32]);
    }
    let create = |i: usize| {
        let store = Arc::clone(&store);
        let user = users[i].clone();
        std::thread::spawn(move || {
            let new = NewChallenge {
                user: user.clone(),
                ..new_challenge(&format!("c{i:02}"), 1_000)
            };
            (user, store.create_challenge(&new, Arc::new(|_| Ok(()))))
        })
    };
    // The first creation leads, and waits for the write lock, which another session holds
    // alone (as an atomic unit does).
    let session = Session::open(&url);
    session
        .run(&format!("SELECT pg_advisory_lock({ATOMIC_LOCK})"))
        .unwrap();
    let first = create(0);
    while session.value(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.datname = current_database()",
    ) != "1"
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rest: Vec<_> = (1..12).map(create).collect();
    let creations = store.creations().unwrap();
    while creations.waiting_and_largest().0 < 11 {
        std::thread::sleep(Duration::from_millis(10));
    }
    session
        .run(&format!("SELECT pg_advisory_unlock({ATOMIC_LOCK})"))
        .unwrap();
    for (i, thread) in std::iter::once(first).chain(rest).enumerate() {
        let (user, created) = thread.join().unwrap();
        match created.unwrap() {
            Create::Created {
                challenge, devices, ..
            } => {
                assert_eq!(challenge.id, format!("c{i:02}"));
                assert_eq!(challenge.user, user);
                assert_eq!(devices.len(), 1);
                assert_eq!(devices[0].id, format!("d{i:02}"));
            }
            other => panic!("{user}: {other:?}"),
        }
    }
    assert_eq!(creations.waiting_and_largest(), (0, 11));
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let db = url.rsplit('/').next().unwrap();
    let rows = |sql: &str| pg.psql_db(db, sql);
    assert_eq!(
        rows("SELECT count(DISTINCT user_name) FROM challenges WHERE state = 'pending'"),
        "12"
    );
    assert_eq!(rows("SELECT count(*) FROM open_challenge_devices"), "12");
    assert_eq!(
        rows("SELECT count(*) FROM audit WHERE kind = 'challenge_created'"),
        "12"
    );
}

/// Session 18: a batch decides each creation as it would be decided alone (created, unknown
/// user, refused by the limits, with its audit row) and gives the results in the callers'
/// order whatever the users' order; one whose write fails (at the `COMMIT`, which the server
/// then rolls back) sends every creation back to be run alone, and alone only it fails.
#[test]
fn session18_a_batch_decides_each_creation_as_alone_and_a_bad_one_fails_only_itself() {
    use super::challenges::{create_batch, Batched, Creation};
    let Some(url) = database("session18_a_batch_decides_each_creation") else {
        return;
    };
    let store = replica(&url);
    for (i, user) in ["alice", "bob", "carol", "dave", "erin", "frank"]
        .into_iter()
        .enumerate()
    {
        enrolled_with(
            store.as_ref(),
            user,
            &format!("d-{user}"),
            [i as u8 + 1; 32],
        );
    }
    let allow: crate::store::PushCheck = Arc::new(|_| Ok(()));
    let refuse: crate::store::PushCheck = Arc::new(|_| Err(Refusal::TooManyOpen));
    let item = |id: &str, user: &str, check: &crate::store::PushCheck| {
        Creation::new(
            NewChallenge {
                user: user.into(),
                ..new_challenge(id, 1_000)
            },
            Arc::clone(check),
        )
    };
    let results: Vec<Create> = create_batch(
        store.as_ref(),
        &[
            item("c-carol", "carol", &allow),
            item("c-ghost", "ghost", &allow),
            item("c-dave", "dave", &refuse),
            item("c-bob", "bob", &allow),
        ],
    )
    .into_iter()
    .map(|r| match r {
        Batched::Done(r) => r.unwrap(),
        Batched::Alone => panic!("not decided in the batch"),
    })
    .collect();
    assert!(matches!(&results[0], Create::Created { challenge, .. } if challenge.id == "c-carol"));
    assert!(matches!(results[1], Create::UnknownUser));
    assert!(matches!(results[2], Create::Refused(Refusal::TooManyOpen)));
    assert!(matches!(&results[3], Create::Created { challenge, .. } if challenge.id == "c-bob"));
    let pg = pushauth_testkit::PgCluster::shared("pg tests").unwrap();
    let db = url.rsplit('/').next().unwrap();
    let rows = |sql: &str| pg.psql_db(db, sql);
    assert_eq!(
        rows("SELECT string_agg(id, ',' ORDER BY id) FROM challenges"),
        "c-bob,c-carol"
    );
    assert_eq!(
        rows("SELECT string_agg(user_name, ',') FROM audit WHERE kind = 'rate_limited'"),
        "dave"
    );

    // A challenge id taken already: the batch writes nothing and sends all three back; alone,
    // that one fails and the two beside it are created.
    store
        .create_challenge(&new_challenge("dup", 1_000), Arc::clone(&allow))
        .unwrap();
    let batch = [
        item("c-frank", "frank", &allow),
        item("dup", "alice", &allow),
        item("c-erin", "erin", &allow),
    ];
    let results = create_batch(store.as_ref(), &batch);
    assert!(results.iter().all(|r| matches!(r, Batched::Alone)));
    assert_eq!(
        rows("SELECT count(*) FROM challenges WHERE id IN ('c-frank', 'c-erin')"),
        "0"
    );
    let alone = |id: &str, user: &str| {
        store.create_challenge(
            &NewChallenge {
                user: user.into(),
                ..new_challenge(id, 1_000)
            },
            Arc::clone(&allow),
        )
    };
    assert!(
        matches!(alone("c-frank", "frank"), Ok(Create::Created { challenge, .. }) if challenge.id == "c-frank")
    );
    assert_eq!(
        kind(&alone("dup", "alice").unwrap_err()),
        DbErrorKind::Constraint
    );
    assert!(
        matches!(alone("c-erin", "erin"), Ok(Create::Created { challenge, .. }) if challenge.id == "c-erin")
    );
    assert_eq!(
        rows("SELECT string_agg(id || ':' || user_name, ',' ORDER BY id) FROM challenges"),
        "c-bob:bob,c-carol:carol,c-erin:erin,c-frank:frank,dup:alice"
    );
}

/// A replica on `url` whose statements wait a minute for a lock (so that a batch that waited
/// for a held row would hold up the others until the holder ends, not only for the 5 s
/// default), with users u00–u05 and their devices d00–d05.
fn six_users_waiting_long(url: &str) -> Arc<PgStore> {
    let store = replica_with_lock_timeout(url, 60000);
    for i in 0..6 {
        enrolled_with(
            store.as_ref(),
            &format!("u{i:02}"),
            &format!("d{i:02}"),
            [i as u8 + 1; 32],
        );
    }
    store
}

/// Session 18, attack review: a user's row held by another transaction (another replica's
/// answer, one stopped mid-transaction) holds up only that user's creation: the batch skips
/// the row (`SKIP LOCKED`), the creation then waits on its own, and the other users'
/// creations go on meanwhile.
#[test]
fn session18_a_locked_user_holds_up_only_its_own_creation() {
    let Some(url) = database("session18_a_locked_user_holds_up_only_its_own") else {
        return;
    };
    let store = six_users_waiting_long(&url);
    let (done, finished) = mpsc::channel();
    let create = |i: usize| {
        let (store, done) = (Arc::clone(&store), done.clone());
        std::thread::spawn(move || {
            let new = NewChallenge {
                user: format!("u{i:02}"),
                ..new_challenge(&format!("c{i:02}"), 1_000)
            };
            done.send((i, store.create_challenge(&new, Arc::new(|_| Ok(())))))
                .unwrap();
        })
    };
    let session = Session::open(&url);
    session
        .run("BEGIN; SELECT 1 FROM users WHERE name = 'u00' FOR UPDATE")
        .unwrap();
    let _first = create(0);
    while session.value(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.datname = current_database()",
    ) != "1"
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    // u00's creation waits on its row; the others are created meanwhile.
    let _rest: Vec<_> = (1..6).map(create).collect();
    for _ in 1..6 {
        let (i, created) = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the other users' creations wait for u00's row");
        assert_ne!(i, 0, "u00's creation returned while its row was held");
        assert!(matches!(created.unwrap(), Create::Created { .. }));
    }
    // In a batch with others, the held user's creation is sent back undecided and the
    // others are created.
    let item = |id: &str, user: &str| {
        super::challenges::Creation::new(
            NewChallenge {
                user: user.into(),
                ..new_challenge(id, 1_000)
            },
            Arc::new(|_| Ok(())),
        )
    };
    let batched = super::challenges::create_batch(
        store.as_ref(),
        &[item("x01", "u01"), item("x00", "u00"), item("x02", "u02")],
    );
    use super::challenges::Batched;
    assert!(
        matches!(&batched[0], Batched::Done(Ok(Create::Created { challenge, .. })) if challenge.id == "x01")
    );
    assert!(matches!(batched[1], Batched::Alone));
    assert!(
        matches!(&batched[2], Batched::Done(Ok(Create::Created { challenge, .. })) if challenge.id == "x02")
    );
    session.run("COMMIT").unwrap();
    let (i, created) = finished.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(i, 0);
    assert!(matches!(created.unwrap(), Create::Created { .. }));
}

/// Session 18's and 20's attack reviews: a device's row held by another transaction (that
/// device's answer on a replica stopped mid-transaction, until PostgreSQL's idle timeout ends
/// it) holds up no poll, that device's own included: the poll's `last_seen_at` update skips a
/// held row (`SKIP LOCKED`) rather than wait for it, so polls claiming the device cannot
/// each hold a job thread and a connection for `lock_timeout` and stall the replica.
#[test]
fn session20_a_held_device_row_holds_up_no_poll() {
    let Some(url) = database("session20_a_held_device_row") else {
        return;
    };
    let store = six_users_waiting_long(&url);
    let (done, finished) = mpsc::channel();
    let poll = |i: usize| {
        let (store, done) = (Arc::clone(&store), done.clone());
        std::thread::spawn(move || {
            let polled =
                store.device_challenges_spending(&request_nonce(&format!("d{i:02}"), "n1"), 2_000);
            done.send((i, polled)).unwrap();
        })
    };
    let session = Session::open(&url);
    let seen = || session.value("SELECT coalesce(last_seen_at, -1) FROM devices WHERE id = 'd00'");
    let before = seen();
    // As a frozen answer holds it (its nonce's `last_seen_at` update), and as a revocation or
    // an explicit lock would.
    for hold in [
        "UPDATE devices SET last_seen_at = last_seen_at WHERE id = 'd00'",
        "SELECT 1 FROM devices WHERE id = 'd00' FOR UPDATE",
    ] {
        session.run(&format!("BEGIN; {hold}")).unwrap();
        let _polls: Vec<_> = (0..6).map(poll).collect();
        let mut returned = Vec::new();
        for _ in 0..6 {
            // Well under the holder's idle timeout (15 s), which would end the wait too.
            let (i, polled) = finished
                .recv_timeout(Duration::from_secs(8))
                .unwrap_or_else(|_| panic!("a poll waited for d00's held row ({hold})"));
            assert!(polled.unwrap().is_ok(), "d{i:02}'s first nonce was fresh");
            returned.push(i);
        }
        returned.sort_unstable();
        assert_eq!(returned, [0, 1, 2, 3, 4, 5]);
        session.run("COMMIT").unwrap();
        // The nonce was spent all the same: the same request again is a replay.
        let again = store
            .device_challenges_spending(&request_nonce("d00", "n1"), 2_000)
            .unwrap();
        assert!(
            matches!(again, Err(crate::store::NonceRefused::Replayed)),
            "{hold}"
        );
        // Next round, fresh nonces.
        session.run("DELETE FROM device_nonces").unwrap();
    }
    // Only the held row's `last_seen_at` was skipped; a later poll records it.
    assert_eq!(seen(), before, "d00's held row was written");
    assert_ne!(
        session.value("SELECT coalesce(last_seen_at, -1) FROM devices WHERE id = 'd01'"),
        "-1"
    );
    store
        .device_challenges_spending(&request_nonce("d00", "n2"), 2_000)
        .unwrap()
        .unwrap();
    assert_eq!(seen(), "2000");
}

/// Session 21 (session 20's attack review): a user's row held by a creation or an answer in
/// flight (on a replica stopped mid-transaction, until PostgreSQL's idle timeout ends it)
/// holds up no admin's enrollment link for that user. The store's user-row locks are `FOR NO
/// KEY UPDATE`: they still exclude each other, as `FOR UPDATE` did, but not the `FOR KEY
/// SHARE` of the foreign-key check of the link's token row, which changes nothing a lock
/// holder counts. (Redeeming a link is an atomic unit, which waits for every write in flight
/// whatever the row locks: [`ATOMIC_LOCK`].)
#[test]
fn session21_a_held_user_row_holds_up_no_enrollment_link() {
    let Some(url) = database("session21_a_held_user_row") else {
        return;
    };
    let store = six_users_waiting_long(&url);
    let lock_u00 = super::challenges::LOCK_USER.replace("$1", "'u00'");
    // As a creation in flight holds it: the shared write lock, then the user's row.
    let holder = Session::open(&url);
    holder
        .run(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock_shared({ATOMIC_LOCK}); {lock_u00}"
        ))
        .unwrap();
    let (done, finished) = mpsc::channel();
    let linking = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            done.send(store.create_enrollment("u00", &[42; 32], 5, 10_000))
                .unwrap();
        })
    };
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("u00's enrollment link waited for the user's row that another transaction held")
        .unwrap();
    linking.join().unwrap();
    let link = store.get_enrollment(&[42; 32]).unwrap().unwrap();
    assert_eq!(link.user, "u00");
    // The store's own user locks still exclude each other.
    let other = Session::open(&url);
    let refused = other
        .run(&format!("BEGIN; {lock_u00} NOWAIT"))
        .expect_err("a second user lock was granted while the first was held");
    let message = refused.as_db_error().map(|e| e.message().to_owned());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("could not obtain lock")),
        "{refused:?}"
    );
    holder.run("COMMIT").unwrap();
}

/// Session 21 (its attack review): an atomic unit that gives up waiting for the write lock
/// (held shared by a write frozen mid-transaction: a replica stopped, until PostgreSQL's idle
/// timeout ends it) fails as busy, with PostgreSQL's "canceling statement due to lock
/// timeout" for the log, and writes nothing. Before, the undo of its first savepoint, never
/// made since the set-up sent with its first statement had failed, replaced that cause with
/// "savepoint does not exist".
#[test]
fn session21_an_atomic_unit_behind_a_frozen_write_fails_as_busy() {
    let Some(url) = database("session21_an_atomic_unit_behind_a_frozen") else {
        return;
    };
    let store = replica_with_lock_timeout(&url, 500);
    let frozen = Session::open(&url);
    frozen
        .run(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock_shared({ATOMIC_LOCK})"
        ))
        .unwrap();
    let err = store
        .atomic(&mut |s| s.create_enrollment("u01", &[7; 32], 5, 10_000))
        .expect_err("the unit ran beside a write");
    assert!(
        matches!(
            err,
            StoreError::Db(DbError {
                kind: DbErrorKind::Busy,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("lock timeout"), "{err}");
    frozen.run("COMMIT").unwrap();
    assert!(store.get_enrollment(&[7; 32]).unwrap().is_none());
    // Once nothing holds the write lock, the unit goes through.
    store
        .atomic(&mut |s| s.create_enrollment("u01", &[7; 32], 5, 10_000))
        .unwrap();
    assert!(store.get_enrollment(&[7; 32]).unwrap().is_some());
}

/// Session 22 (attack): an atomic unit waiting for the write lock behind a write that holds
/// it (a replica frozen mid-transaction) must not hold up every other write until its own
/// `lock_timeout`. PostgreSQL queues a shared request behind a waiting exclusive one, so
/// while the unit waited, each write of every replica waited behind it: a frozen replica and
/// one enrollment redeemed stalled every login's writes for the whole `lock_timeout` (5 s by
/// default), for each unit tried meanwhile. Now the unit waits a short while at a time and
/// steps out of the queue between tries: a write made while it is queued goes through within
/// about one try (100 ms), while the frozen write still holds the lock, and the unit still
/// gets the lock once it is free, within its `lock_timeout`.
#[test]
fn session22_an_atomic_unit_waiting_for_the_write_lock_holds_up_no_write() {
    let Some(url) = database("session22_an_atomic_unit_waiting_for_the_write_lock") else {
        return;
    };
    let store = replica_with_lock_timeout(&url, 6000);
    let frozen = Session::open(&url);
    frozen
        .run(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock_shared({ATOMIC_LOCK})"
        ))
        .unwrap();
    let unit_store = Arc::clone(&store);
    let unit = std::thread::spawn(move || {
        unit_store.atomic(&mut |s| s.create_enrollment("u01", &[7; 32], 5, 10_000))
    });
    // Until the unit is seen queued for the lock (a request for it not granted).
    let watcher = Session::open(&url);
    let queued = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
         AND mode = 'ExclusiveLock' AND objid = {}",
        u64::from_ne_bytes(ATOMIC_LOCK.to_ne_bytes()) & 0xFFFF_FFFF
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while watcher.value(&queued) == "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the unit never queued for the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (tx, rx) = mpsc::channel();
    let write_store = Arc::clone(&store);
    std::thread::spawn(move || {
        let _ = tx.send(write_store.create_enrollment("u02", &[8; 32], 5, 10_000));
    });
    // Well before the unit's 6 s would end (before the fix the write waited all of them).
    let written = rx
        .recv_timeout(Duration::from_millis(1_500))
        .expect("a write waited behind an atomic unit that waited for the write lock");
    written.unwrap();
    assert!(!unit.is_finished(), "the unit ran beside a write");
    frozen.run("COMMIT").unwrap();
    unit.join()
        .unwrap()
        .expect("the unit did not get the lock once it was free");
    assert!(store.get_enrollment(&[7; 32]).unwrap().is_some());
    assert!(store.get_enrollment(&[8; 32]).unwrap().is_some());
}

/// Session 22 (attack review): the lock passing from write to write, each holding it longer
/// than the unit's first try waits (a commit that waits for a distant synchronous standby),
/// must not keep the unit out for good. Tries of a fixed 100 ms never got it: each found a
/// write still holding the lock, and the unit failed busy where waiting in the queue had
/// always got it. The tries now wait longer each time the holders have all changed.
#[test]
fn session22_an_atomic_unit_gets_the_write_lock_that_passes_from_write_to_write() {
    let Some(url) = database("session22_an_atomic_unit_gets_the_write_lock_that_passes") else {
        return;
    };
    let store = replica_with_lock_timeout(&url, 6000);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Three writers, 100 ms apart, each holding the lock 300 ms at a time, one after the other:
    // the lock is never free.
    let writers: Vec<_> = (0..3)
        .map(|i| {
            let (url, stop) = (url.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100 * i));
                let writer = Session::open(&url);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    writer
                        .run(&format!(
                            "BEGIN; SELECT pg_advisory_xact_lock_shared({ATOMIC_LOCK}); \
                             SELECT pg_sleep(0.3); COMMIT"
                        ))
                        .unwrap();
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let unit = store.atomic(&mut |s| s.create_enrollment("u01", &[7; 32], 5, 10_000));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    unit.expect("the unit never got the lock from the writes passing it on");
    assert!(store.get_enrollment(&[7; 32]).unwrap().is_some());
}

/// Session 22 (attack review): once the unit holds the write lock, its own statements wait
/// for a row lock as long as any statement (the connection's `lock_timeout`), not as long as
/// a try for the write lock: the `SET LOCAL lock_timeout` of the tries must not outlive them.
#[test]
fn session22_an_atomic_unit_waits_for_a_row_as_any_statement_does() {
    let Some(url) = database("session22_an_atomic_unit_waits_for_a_row") else {
        return;
    };
    let store = replica(&url);
    store.create_enrollment("u01", &[1; 32], 5, 10_000).unwrap();
    // A transaction that holds the user's row (not the write lock) for 300 ms: the unit's
    // enrollment checks its reference to that row, and waits.
    let holder = Session::open(&url);
    holder
        .run("BEGIN; SELECT 1 FROM users WHERE name = 'u01' FOR UPDATE")
        .unwrap();
    let unit_store = Arc::clone(&store);
    let unit = std::thread::spawn(move || {
        unit_store.atomic(&mut |s| s.create_enrollment("u01", &[7; 32], 5, 10_000))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !unit.is_finished(),
        "the unit did not wait for the user's row"
    );
    holder.run("COMMIT").unwrap();
    unit.join()
        .unwrap()
        .expect("the unit gave up waiting for a row after a try's timeout");
    assert!(store.get_enrollment(&[7; 32]).unwrap().is_some());
}

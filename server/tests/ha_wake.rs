//! Issue 13: the cross-replica wake-up listener against a real PostgreSQL (a temporary
//! cluster): a `pg_notify` from any session wakes the local waiters within milliseconds, and
//! after the database was killed and started again the listener reconnects and wakes every
//! waiter, so a change made while it was deaf is read. The relying-party cache it keeps true
//! keeps nothing while the listener is not listening. Skips without PostgreSQL binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::{Duration, Instant};

use pushauth_server::metrics::Metrics;
use pushauth_server::store::postgres::{PgSettings, RelyingPartyCache};
use pushauth_server::waiters::Waiters;
use pushauth_server::wake;
use pushauth_testkit::PgCluster;
use tokio::sync::watch;

async fn woken<T: Clone>(
    sub: &mut pushauth_server::waiters::Subscription<T>,
    within: Duration,
) -> bool {
    tokio::time::timeout(within, sub.changed()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wake_waiters_and_a_reconnect_wakes_everyone() {
    let Some(pg) = PgCluster::start_or_skip("ha_wake") else {
        return;
    };
    pg.create_database("wake");
    let settings = PgSettings::parse(&pg.url("wake"), None, None).unwrap();
    let waiters = Waiters::default();
    let metrics = Metrics::new();
    let (stop, shutdown) = watch::channel(false);
    let relying_parties = RelyingPartyCache::default();
    assert!(!relying_parties.is_listening());
    let task = tokio::spawn(wake::listen(
        settings,
        waiters.clone(),
        metrics.wake(),
        relying_parties.clone(),
        shutdown,
    ));
    let wake_metrics = metrics.wake();
    let deadline = Instant::now() + Duration::from_secs(10);
    while wake_metrics.connected.get() != 1 {
        assert!(Instant::now() < deadline, "the listener never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(relying_parties.is_listening());

    // Another session's notification wakes exactly the named waiter, fast.
    let mut c1 = waiters.watch_challenge("c1");
    let mut c2 = waiters.watch_challenge("c2");
    let mut d1 = waiters.watch_device("d1");
    let sent = Instant::now();
    let pg_ref = &pg;
    tokio::task::block_in_place(|| {
        pg_ref.psql_db("wake", "SELECT pg_notify('pushauth_challenge', 'c1')");
    });
    assert!(woken(&mut c1, Duration::from_secs(2)).await, "c1 not woken");
    let latency = sent.elapsed();
    assert!(
        !woken(&mut c2, Duration::from_millis(100)).await,
        "c2 woken by c1's notice"
    );
    tokio::task::block_in_place(|| {
        pg_ref.psql_db("wake", "SELECT pg_notify('pushauth_device', 'd1')");
    });
    assert!(woken(&mut d1, Duration::from_secs(2)).await, "d1 not woken");
    assert_eq!(wake_metrics.notifications.get(), 2);
    eprintln!("notify -> wake (psql process included): {latency:?}");

    // The database dies and comes back: the listener reconnects and wakes c2, whose change
    // (made while nobody listened) would otherwise be missed.
    tokio::task::block_in_place(|| pg_ref.kill());
    let deadline = Instant::now() + Duration::from_secs(10);
    while relying_parties.is_listening() {
        assert!(
            Instant::now() < deadline,
            "the relying-party cache still trusted after its listener lost the database"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut c3 = waiters.watch_challenge("c3");
    tokio::task::block_in_place(|| pg_ref.start_again());
    assert!(
        woken(&mut c2, Duration::from_secs(10)).await,
        "c2 not woken after reconnect"
    );
    assert!(
        woken(&mut c3, Duration::from_secs(1)).await,
        "c3 not woken after reconnect"
    );
    assert_eq!(wake_metrics.reconnects.get(), 1);
    assert_eq!(wake_metrics.connected.get(), 1);
    assert!(relying_parties.is_listening());
    // c1 was woken by the reconnect too; after that only a new notification wakes it.
    assert!(woken(&mut c1, Duration::from_secs(1)).await);
    assert!(!woken(&mut c1, Duration::from_millis(100)).await);
    tokio::task::block_in_place(|| {
        pg_ref.psql_db("wake", "SELECT pg_notify('pushauth_challenge', 'c1')");
    });
    assert!(
        woken(&mut c1, Duration::from_secs(2)).await,
        "no wake-ups after the reconnect"
    );

    // The wake latency itself: a notification committed by another session (as a replica's
    // answer is) until the waiter here wakes, 200 times (printed for the README; the bound
    // only catches a listener that polls).
    let url = pg.url("wake");
    let (notifier, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut took = Vec::new();
    for i in 0..200 {
        let id = format!("lat{i}");
        let mut sub = waiters.watch_challenge(&id);
        let sent = Instant::now();
        notifier
            .execute("SELECT pg_notify('pushauth_challenge', $1)", &[&id])
            .await
            .unwrap();
        assert!(
            woken(&mut sub, Duration::from_secs(2)).await,
            "{id} not woken"
        );
        took.push(sent.elapsed());
    }
    took.sort();
    let (p50, p99) = (took[took.len() / 2], took[took.len() * 99 / 100]);
    eprintln!(
        "notify committed on another session -> local waiter woken: p50 {p50:?}, p99 {p99:?}"
    );
    assert!(p99 < Duration::from_millis(200), "p99 {p99:?}");

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the listener did not stop")
        .unwrap();
    assert!(!relying_parties.is_listening());
}

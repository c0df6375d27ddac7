//! Issue 11, Web Push: a push service that never answers delays no challenge and piles up no
//! threads. Its own test binary, so that the threads counted are this server's alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common_push;

use std::time::{Duration, Instant};

use common_push::*;
use pushauth_testkit::TestServer;

#[test]
fn issue11_a_hung_push_service_delays_no_challenge_and_grows_no_threads() {
    let service = PushService::start(Answer::Hang);
    let srv = TestServer::start_with(|c| {
        allow(c, &service.origin());
        c.web_push.senders = 2;
        c.web_push.queue = 4;
        c.web_push.timeout_ms = 60_000;
        c.limits.max_open_per_source = 1000;
        c.limits.max_open_per_user = 1000;
        c.limits.max_new_per_window = 1000;
        c.limits.max_new_per_user_window = 1000;
    });
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    dev.client
        .set_push_subscription(
            &format!("{}/x", service.origin()),
            &k.p256dh(),
            &k.auth_b64(),
        )
        .unwrap();
    let key = srv.api_key();
    // The server has started its senders by now (it served requests).
    assert_eq!(threads_named("pushauthd-push"), 2);
    // Two senders hang on the first two; four wait in the queue; the rest are dropped.
    let total = 20;
    for i in 0..total {
        let started = Instant::now();
        let id = create_challenge(&srv, &key, "alice", 120);
        // Found by the device over its signed API while every sender hangs.
        assert_eq!(dev.find(&id).id, id, "challenge {i}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "challenge {i} took {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    while service.hung() < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        service.hung(),
        2,
        "both senders are stuck on the hung service"
    );
    assert_eq!(
        threads_named("pushauthd-push"),
        2,
        "the sender pool did not grow"
    );
    assert_eq!(queued(&srv), 4, "the queue holds at most its capacity");
    assert_eq!(metric(&srv, "dropped"), total - 2 - 4);
    assert_eq!(metric(&srv, "sent"), 0);
}

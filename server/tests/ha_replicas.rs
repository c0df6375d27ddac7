//! Issue 13: several pushauthd replicas (the built binary, separate processes) over one
//! PostgreSQL database in a temporary cluster. A relying party's wait on replica A returns
//! when the device answers through replica B; waits survive `kill -9` of their replica, a
//! restart of PostgreSQL, and the promotion of a streaming standby; the open-challenge cap
//! and device request nonces hold across replicas. Skips without PostgreSQL binaries
//! (`PUSHAUTH_REQUIRE_POSTGRES=1` makes that a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod ha;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ha::{
    approve, assert_approved, client, context, device_on, wait_in_background, Site, TwoReplicas,
};
use pushauth_client::{Outcome, PendingLogin, StartOptions};
use pushauth_proto::auth::DeviceAuth;
use pushauth_testkit::{call_with, PgCluster, TestDevice};
use serde_json::json;

/// A device request's `Authorization` header for `method` and `path` (empty body), signed now
/// with `device`'s key: each one carries a fresh nonce.
fn signed_header(device: &TestDevice, method: &str, path: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    DeviceAuth::sign(
        &device.signing_key(),
        device.id(),
        method,
        path,
        b"",
        i64::try_from(secs).unwrap(),
    )
    .unwrap()
    .to_string()
}

#[test]
fn a_wait_on_a_returns_when_the_device_answers_through_b() {
    let Some(site) = TwoReplicas::start_or_skip("ha cross-replica wake", "wake") else {
        return;
    };
    let TwoReplicas {
        a,
        b,
        key,
        phone,
        phone_b,
        ..
    } = &site;
    let on_a = Arc::new(client(&[a], key));
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let (login, waiting) = wait_in_background(&on_a, "alice");
        // Let the wait reach its long-poll on A.
        thread::sleep(Duration::from_millis(200));
        let answered = Instant::now();
        approve(phone_b, &login);
        let (outcome, returned) = waiting.join().unwrap();
        assert_approved(&outcome);
        latencies.push(returned.saturating_duration_since(answered));
    }
    latencies.sort();
    eprintln!("answer on B -> wait returns on A (incl. the device's HTTP call): {latencies:?}");
    let worst = latencies[latencies.len() - 1];
    assert!(worst < Duration::from_secs(1), "{latencies:?}");

    // The other way round for the device: its long-poll on A returns when a relying party
    // starts a login through B.
    let on_b = client(&[b], key);
    let (phone_a, before) = (device_on(phone, a), Instant::now());
    let polling = thread::spawn(move || {
        let list = phone_a.pending(20).unwrap();
        (list, Instant::now())
    });
    thread::sleep(Duration::from_millis(300));
    let created = Instant::now();
    let login = on_b
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let (list, returned) = polling.join().unwrap();
    assert!(list.iter().any(|c| c.id == login.id), "{list:?}");
    let took = returned.saturating_duration_since(created);
    eprintln!("challenge created on B -> device long-poll returns on A: {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "{took:?} (polling since {:?})",
        before.elapsed()
    );
}

#[test]
fn waits_on_a_killed_replica_fail_over_to_b_and_complete() {
    let Some(pg) = PgCluster::start_or_skip("ha kill -9") else {
        return;
    };
    let site = Site::on(&pg, "kill", "");
    let mut a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let users = ["alice", "bob", "carol"];
    let phones: Vec<TestDevice> = users.iter().map(|u| site.enroll(&a, u)).collect();
    let both = Arc::new(client(&[&a, &b], &key));
    let waits: Vec<_> = users.iter().map(|u| wait_in_background(&both, u)).collect();
    thread::sleep(Duration::from_millis(300));
    a.kill9();
    for (phone, (login, _)) in phones.iter().zip(&waits) {
        approve(&device_on(phone, &b), login);
    }
    for (_, waiting) in waits {
        assert_approved(&waiting.join().unwrap().0);
    }
}

#[test]
fn a_postgres_restart_loses_no_wait() {
    let Some(pg) = PgCluster::start_or_skip("ha postgres restart") else {
        return;
    };
    let site = Site::on(&pg, "restart", "");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let users = ["alice", "bob", "carol", "dave"];
    let phones: Vec<TestDevice> = users.iter().map(|u| site.enroll(&a, u)).collect();
    let both = Arc::new(client(&[&a, &b], &key));
    let waits: Vec<_> = users.iter().map(|u| wait_in_background(&both, u)).collect();
    thread::sleep(Duration::from_millis(300));
    // Killed, not stopped: nothing gets to finish cleanly. While it is down both replicas say
    // so, and no wait ends.
    pg.kill();
    let down = a.health();
    assert_eq!(down.0, 503, "{:?}", down.1);
    assert_eq!(down.1["status"], "not_ready");
    assert_eq!(down.1["reason"], "store_unavailable");
    let r = call_with(
        &pushauth_testkit::agent(),
        "GET",
        &format!("{}/v1/users/alice/devices", b.url),
        Some(&format!("Bearer {key}")),
        None,
    );
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (503, Some("store_unavailable")),
        "{}",
        r.text
    );
    thread::sleep(Duration::from_secs(1));
    assert!(
        waits.iter().all(|(_, w)| !w.is_finished()),
        "a wait ended while the database was down"
    );
    pg.start_again();
    a.wait_ready(Duration::from_secs(20));
    b.wait_ready(Duration::from_secs(20));
    for (i, (phone, (login, _))) in phones.iter().zip(&waits).enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        approve(&device_on(phone, replica), login);
    }
    for (_, waiting) in waits {
        assert_approved(&waiting.join().unwrap().0);
    }
}

#[test]
fn after_the_primary_dies_and_the_standby_is_promoted_waits_complete_and_nothing_acknowledged_is_lost(
) {
    let Some(primary) = PgCluster::start_or_skip("ha standby promotion") else {
        return;
    };
    primary.create_database("ha");
    let standby = primary.standby();
    // Synchronous replication: a commit is acknowledged once the standby has it (README,
    // "High availability").
    primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'");
    primary.psql("SELECT pg_reload_conf()");
    primary.wait_for(|p| {
        p.psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == "1"
    });
    let site = Site::new(PgCluster::multi_host_url(&[&primary, &standby], "ha"), "");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let users = ["alice", "bob", "carol"];
    let phones: Vec<TestDevice> = users.iter().map(|u| site.enroll(&a, u)).collect();
    let both = Arc::new(client(&[&a, &b], &key));
    // Answered before the failover: must still be approved after it.
    let before: Vec<PendingLogin> = phones
        .iter()
        .zip(users)
        .map(|(phone, user)| {
            let login = both
                .start(user, &context(), &StartOptions::default())
                .unwrap();
            approve(phone, &login);
            login
        })
        .collect();
    let waits: Vec<_> = users.iter().map(|u| wait_in_background(&both, u)).collect();
    thread::sleep(Duration::from_millis(300));
    primary.kill();
    standby.promote();
    a.wait_ready(Duration::from_secs(30));
    b.wait_ready(Duration::from_secs(30));
    for (i, (phone, (login, _))) in phones.iter().zip(&waits).enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        approve(&device_on(phone, replica), login);
    }
    for (_, waiting) in waits {
        assert_approved(&waiting.join().unwrap().0);
    }
    for login in &before {
        let outcome = both
            .wait(login, Instant::now() + Duration::from_secs(10))
            .unwrap();
        assert_approved(&outcome);
    }
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()"), "f");
}

#[test]
fn the_open_challenge_cap_and_device_nonces_hold_across_replicas() {
    let Some(pg) = PgCluster::start_or_skip("ha limits") else {
        return;
    };
    let site = Site::on(&pg, "limits", "[limits]\nmax_open_per_user = 3\n");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");

    // Four creations at once, two on each replica: exactly three are let through.
    let start = Arc::new(Barrier::new(4));
    let creations: Vec<_> = [&a, &b, &a, &b]
        .iter()
        .enumerate()
        .map(|(i, replica)| {
            let (url, key, start) = (replica.url.clone(), key.clone(), Arc::clone(&start));
            thread::spawn(move || {
                let body = json!({
                    "user": "alice",
                    "context": {"service": "sshd"},
                    "rp_nonce": pushauth_proto::b64::encode([u8::try_from(i).unwrap(); 32]),
                })
                .to_string();
                start.wait();
                let r = call_with(
                    &pushauth_testkit::agent(),
                    "POST",
                    &format!("{url}/v1/challenges"),
                    Some(&format!("Bearer {key}")),
                    Some(body.as_bytes()),
                );
                (r.status, r.json["error"].as_str().unwrap_or("").to_owned())
            })
        })
        .collect();
    let mut results: Vec<(u16, String)> =
        creations.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort();
    assert_eq!(
        results,
        vec![
            (201, String::new()),
            (201, String::new()),
            (201, String::new()),
            (429, "too_many_open_challenges".into()),
        ]
    );

    // A signed device request's nonce, used on A, is refused on B.
    let path = "/v1/device/challenges?wait=0";
    let header = signed_header(&phone, "GET", path);
    let agent = pushauth_testkit::agent();
    let on_a = call_with(
        &agent,
        "GET",
        &format!("{}{path}", a.url),
        Some(&header),
        None,
    );
    assert_eq!(on_a.status, 200, "{}", on_a.text);
    let on_b = call_with(
        &agent,
        "GET",
        &format!("{}{path}", b.url),
        Some(&header),
        None,
    );
    assert_eq!(
        (on_b.status, on_b.json["error"].as_str()),
        (401, Some("replayed_nonce")),
        "{}",
        on_b.text
    );
}

/// Session 11: a replica keeps the keys of devices and the terms of challenges it created (they
/// never change), to save round trips. What may change is still decided by the database: a
/// challenge created on A and cancelled through B cannot be approved through A, and a device
/// A has seen, revoked through B, is refused by A on its very next request.
#[test]
fn a_replica_s_caches_never_decide_a_cancelled_challenge_or_a_revoked_device() {
    let Some(pg) = PgCluster::start_or_skip("ha caches") else {
        return;
    };
    let site = Site::on(&pg, "caches", "");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");
    let on_a = client(&[&a], &key);
    let on_b = client(&[&b], &key);

    // Created on A (A keeps its terms), cancelled through B, answered through A.
    let login = on_a
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let pending = phone.find(&login.id);
    on_b.cancel(&login).unwrap();
    let refused = phone
        .respond(
            &pending,
            pushauth_proto::Decision::Approve,
            login.code.as_deref().unwrap(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("wrong_state"), "{refused}");
    let outcome = on_a
        .wait(&login, Instant::now() + Duration::from_secs(5))
        .unwrap();
    assert!(matches!(outcome, Outcome::Cancelled), "{outcome:?}");

    // A has checked the phone's requests (it keeps its key); B revokes it; A refuses the
    // phone's next request and its next answer.
    let login = on_a
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let pending = phone.find(&login.id);
    let (status, _) = ha::admin(
        &b,
        "DELETE",
        &format!("/v1/admin/devices/{}", phone.id()),
        json!({}),
    );
    assert_eq!(status, 200);
    // A request in the device's name that does not verify (signed for another path), while
    // A still has the key: refused as revoked, not counted as a bad signature (attack
    // review r11: it was 401 bad_signature, with an audit row).
    let header = signed_header(&phone, "GET", "/v1/device/challenges?wait=1");
    let forged = call_with(
        &pushauth_testkit::agent(),
        "GET",
        &format!("{}/v1/device/challenges?wait=0", a.url),
        Some(&header),
        None,
    );
    assert_eq!(
        (forged.status, forged.json["error"].as_str()),
        (403, Some("device_revoked")),
        "{}",
        forged.text
    );
    let refused = phone.pending(0).unwrap_err();
    assert!(refused.to_string().contains("device_revoked"), "{refused}");
    let refused = phone
        .respond(
            &pending,
            pushauth_proto::Decision::Approve,
            login.code.as_deref().unwrap(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("device_revoked"), "{refused}");
    let outcome = on_a
        .wait(&login, Instant::now() + Duration::from_secs(1))
        .unwrap();
    assert!(matches!(outcome, Outcome::TimedOut), "{outcome:?}");
}

/// A relying party's read of a challenge that does not exist, with `key` on `replica`: 404
/// when the key holds, 401 when it does not (the key is checked first).
fn read_status(replica: &ha::Replica, key: &str) -> u16 {
    pushauth_testkit::call_with(
        &pushauth_testkit::agent(),
        "GET",
        &format!("{}/v1/challenges/no-such-challenge", replica.url),
        Some(&format!("Bearer {key}")),
        None,
    )
    .status
}

/// How long after `since` `replica` first refuses `key` (401), polling.
fn refused_after(replica: &ha::Replica, key: &str, since: Instant) -> Duration {
    loop {
        let status = read_status(replica, key);
        if status == 401 {
            return since.elapsed();
        }
        assert_eq!(status, 404, "neither accepted nor refused");
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the key still works on the other replica"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `change` (an admin call through another replica) on a thread of its own and meanwhile
/// polls `replica` until it refuses `key`: how long after the call began, and the call's answer.
fn refused_while<T: Send>(
    replica: &ha::Replica,
    key: &str,
    change: impl FnOnce() -> T + Send,
) -> (Duration, T) {
    thread::scope(|scope| {
        let since = Instant::now();
        let answer = scope.spawn(change);
        let took = refused_after(replica, key, since);
        (took, answer.join().unwrap())
    })
}

/// Session 13: a replica keeps the relying parties its callers used, to save a statement
/// per login, while its listener hears of every change. A key revoked or rotated through B
/// is refused by A as soon as the NOTIFY arrives (measured while B's answer is on its way),
/// and B answers only once every replica refuses it (session 16): the very next request with
/// the old key is refused wherever it goes, and the new key works everywhere.
#[test]
fn a_relying_party_revoked_or_rotated_through_b_is_refused_by_a_at_once() {
    let Some(pg) = PgCluster::start_or_skip("ha relying-party cache") else {
        return;
    };
    let site = Site::on(&pg, "rpcache", "");
    let a = site.spawn("a");
    let b = site.spawn("b");

    // Rotated through B: the old key, used on A a moment ago (kept there), is refused on A.
    let key = site.api_key(&a);
    assert_eq!(read_status(&a, &key), 404);
    assert_eq!(read_status(&a, &key), 404);
    let rp_id = key.split_once('.').unwrap().0.to_owned();
    let rotate = format!("/v1/admin/relying-parties/{rp_id}/rotate");
    let (took, (status, body)) =
        refused_while(&a, &key, || ha::admin(&b, "POST", &rotate, json!({})));
    eprintln!("rotated through B -> old key refused on A after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_status(&a, &key), 401);
    assert_eq!(read_status(&b, &key), 401);
    let new_key = body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(read_status(&a, &new_key), 404);
    assert_eq!(read_status(&b, &new_key), 404);

    // Revoked through B: the new key, kept on A, is refused there too.
    assert_eq!(read_status(&a, &new_key), 404);
    let revoke = format!("/v1/admin/relying-parties/{rp_id}");
    let (took, (status, body)) =
        refused_while(&a, &new_key, || ha::admin(&b, "DELETE", &revoke, json!({})));
    eprintln!("revoked through B -> key refused on A after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_status(&a, &new_key), 401);
    assert_eq!(read_status(&b, &new_key), 401);
}

/// Stops `pid` (a server process of the cluster) until dropped.
struct Paused<'c>(&'c PgCluster, i32);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.resume_backend(self.1);
    }
}

/// Session 16, attack: A's listener hears nothing (its server process stopped with its socket
/// open, as behind a network path that drops packets; its probe notices only after seconds)
/// while B rotates, then revokes, a key A used a moment before. B answers only after the
/// longest any replica uses a record whose change it did not hear (1 s, counted from the read),
/// so A refuses the old key on the very next request even so. Before, B answered at once and
/// A served the old key from its cache for up to 5 s; so did the CLI's `rp revoke` (CI of
/// session 15 caught that race in `cli.rs`, issue 9 item 4).
#[test]
fn a_replica_that_hears_nothing_still_refuses_a_revoked_key_once_the_revocation_returns() {
    let Some(pg) = PgCluster::start_or_skip("ha relying-party cache, deaf listener") else {
        return;
    };
    let site = Site::on(&pg, "rpdeaf", "");
    let a = site.spawn("a");
    let key = site.api_key(&a);
    assert_eq!(read_status(&a, &key), 404);
    // A alone is registered: the server process holding its registration's lock is its
    // listener's (a bigint advisory key shows as its two halves, PostgreSQL's "pg_locks").
    let listener: i32 = pg
        .psql_db(
            "rpdeaf",
            "SELECT l.pid FROM pg_locks l JOIN replicas r ON r.lock_key IS NOT NULL \
             AND l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted \
             AND l.classid::bigint = (r.lock_key >> 32) & 4294967295 \
             AND l.objid::bigint = r.lock_key & 4294967295",
        )
        .parse()
        .unwrap();
    let b = site.spawn("b");
    assert_eq!(read_status(&a, &key), 404);
    let paused = Paused(&pg, listener);
    pg.pause_backend(listener);

    let rp_id = key.split_once('.').unwrap().0.to_owned();
    let (status, body) = ha::admin(
        &b,
        "POST",
        &format!("/v1/admin/relying-parties/{rp_id}/rotate"),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_status(&a, &key), 401, "A served a rotated-out key");
    let new_key = body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(read_status(&a, &new_key), 404);

    assert_eq!(read_status(&a, &new_key), 404);
    let (status, body) = ha::admin(
        &b,
        "DELETE",
        &format!("/v1/admin/relying-parties/{rp_id}"),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_status(&a, &new_key), 401, "A served a revoked key");
    drop(paused);
}

/// A relying party's `POST /v1/challenges` with `key` for alice: the status, and when the
/// answer came.
fn create_for_alice(url: &str, key: &str) -> (u16, Instant) {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let body = json!({
        "user": "alice",
        "context": {"service": "sshd"},
        "rp_nonce": pushauth_proto::b64::encode(nonce),
    })
    .to_string();
    let r = call_with(
        &pushauth_testkit::agent(),
        "POST",
        &format!("{url}/v1/challenges"),
        Some(&format!("Bearer {key}")),
        Some(body.as_bytes()),
    );
    (r.status, Instant::now())
}

/// Session 17, attack: a push authenticated just before `rp revoke`, then held up on the
/// user's row lock (another login of the user, a slow disk) for longer than the revocation
/// takes to return. It must never reach the phone after the revocation returned: either it
/// commits before the revocation does (which then waits for it) or it sees the revocation
/// inside its own transaction and is refused. Before, the revocation returned after 1 s and
/// the push was created 2 s later with the revoked key.
#[test]
fn a_push_held_up_past_a_revocation_is_created_before_it_returns_or_refused() {
    let Some(pg) = PgCluster::start_or_skip("ha revocation against a held-up creation") else {
        return;
    };
    let site = Site::on(&pg, "rpheld", "");
    let a = site.spawn("a");
    let key = site.api_key(&a);
    let _phone = site.enroll(&a, "alice");
    let rp_id = key.split_once('.').unwrap().0.to_owned();
    let rows = |sql: &str| pg.psql_db("rpheld", sql);
    let waiting = || {
        rows(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.datname = current_database()",
        )
        .parse::<u32>()
        .unwrap()
    };

    let (created, at, revoked) = thread::scope(|scope| {
        // Another session holds alice's row for 3 s.
        let holder = scope.spawn(|| {
            rows(
                "BEGIN; SELECT 1 FROM users WHERE name = 'alice' FOR UPDATE; \
                  SELECT pg_sleep(3); COMMIT",
            )
        });
        let until = Instant::now() + Duration::from_secs(10);
        while rows(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' \
             AND state = 'active' AND pid <> pg_backend_pid()",
        ) != "1"
        {
            assert!(Instant::now() < until, "the holder never took the row");
            thread::sleep(Duration::from_millis(20));
        }
        // The creation is authenticated, then waits for the row.
        let creation = scope.spawn(|| create_for_alice(&a.url, &key));
        while waiting() == 0 {
            assert!(
                Instant::now() < until,
                "the creation never waited for the row"
            );
            thread::sleep(Duration::from_millis(20));
        }
        let (status, body) = ha::admin(
            &a,
            "DELETE",
            &format!("/v1/admin/relying-parties/{rp_id}"),
            json!({}),
        );
        let revoked = Instant::now();
        assert_eq!(status, 200, "{body}");
        let (created, at) = creation.join().unwrap();
        holder.join().unwrap();
        (created, at, revoked)
    });
    match created {
        201 => assert!(
            at <= revoked,
            "a push was created after the revocation returned"
        ),
        other => assert_eq!(other, 401, "neither created nor refused"),
    }
    let challenges: u32 = rows("SELECT count(*) FROM challenges").parse().unwrap();
    assert_eq!(challenges, u32::from(created == 201));
    // And from now on the key creates nothing.
    assert_eq!(create_for_alice(&a.url, &key).0, 401);
    assert_eq!(
        rows("SELECT count(*) FROM challenges"),
        challenges.to_string()
    );
}

//! Session 13's attack review of device nonces spent by the operation they guard, with real
//! replicas (processes) over a real PostgreSQL in a temporary cluster: replays of captured
//! device requests write nothing (not even a row lock or a transaction id), and a revoked
//! device's answer whose signature does not verify is refused as revoked and never counted.
//! Both failed on the first version of the change. Skips without PostgreSQL binaries
//! (`PUSHAUTH_REQUIRE_POSTGRES=1` makes that a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;
mod ha;

use std::thread;
use std::time::Duration;

use common::{now_secs, Challenge, Device};
use ha::Site;
use pushauth_proto::{b64, context_digest, Context, Decision};
use pushauth_testkit::{call_with, PgCluster, TestDevice};
use serde_json::{json, Value};

/// A challenge created on `url` with `key` for `user`, as its device must answer it.
fn create(url: &str, key: &str, user: &str) -> Challenge {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let mut context = Context::new();
    context.insert("service".into(), "sshd".into());
    let body = json!({"user": user, "context": context, "rp_nonce": b64::encode(nonce)});
    let r = call_with(
        &pushauth_testkit::agent(),
        "POST",
        &format!("{url}/v1/challenges"),
        Some(&format!("Bearer {key}")),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: user.to_owned(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: context_digest(&context),
    }
}

/// `dev` as the signing double of the API tests.
fn as_device(dev: &TestDevice, user: &str) -> Device {
    Device {
        id: dev.id().to_owned(),
        user: user.to_owned(),
        key: dev.signing_key(),
    }
}

/// The `signature_rejected` rows `replica` lists.
fn rejections(replica: &ha::Replica) -> usize {
    let (status, audit) = ha::admin(replica, "GET", "/v1/admin/audit?limit=1000", json!({}));
    assert_eq!(status, 200);
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "signature_rejected")
        .count()
}

/// The cluster's next transaction id: it moves only when a transaction wrote or locked a row.
fn next_xid(pg: &PgCluster, db: &str) -> u64 {
    pg.psql_db(db, "SELECT pg_snapshot_xmax(pg_current_snapshot())")
        .trim()
        .parse()
        .unwrap()
}

/// A device revoked through B while A keeps its key and the challenge's terms. An answer
/// with a valid request signature over an answer signature that does not verify (what the
/// holder of a revoked phone's key can send) is refused as revoked and writes no
/// `signature_rejected` row (attack review r11's rule; it was counted again once the nonce
/// moved into the answer).
#[test]
fn a_revoked_device_s_bad_answer_is_refused_as_revoked_and_not_counted() {
    let Some(pg) = PgCluster::start_or_skip("ha nonces revoked") else {
        return;
    };
    let site = Site::on(&pg, "revoked", "");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");
    let dev = as_device(&phone, "alice");
    let c = create(&a.url, &key, "alice");
    assert!(ha::device_on(&phone, &a).pending(0).is_ok());
    let (status, _) = ha::admin(
        &b,
        "DELETE",
        &format!("/v1/admin/devices/{}", dev.id),
        json!({}),
    );
    assert_eq!(status, 200);
    let before = rejections(&a);
    let mut body: Value = serde_json::from_slice(&dev.answer_body(&c, Decision::Deny, "")).unwrap();
    body["decision"] = json!("approve");
    let body = body.to_string().into_bytes();
    let path = format!("/v1/device/challenges/{}/response", c.id);
    let header = dev.header("POST", &path, &body, now_secs());
    let r = call_with(
        &pushauth_testkit::agent(),
        "POST",
        &format!("{}{path}", a.url),
        Some(&header),
        Some(&body),
    );
    assert_eq!(r.json["error"], "device_revoked", "{}", r.text);
    assert_eq!(
        rejections(&a),
        before,
        "a revoked device's refusal was counted"
    );
}

/// Captured device requests sent again (an approval, a deny refused as wrong state, a poll,
/// an acknowledgement, a body that does not parse) and requests that are not the device's
/// (unknown device, stale timestamp) are all refused and take no transaction id: no row is
/// written or locked while they are served. A replayed answer took the challenge's and the
/// user's row locks each time, for the request's whole timestamp window.
#[test]
fn replays_and_forgeries_write_and_lock_nothing() {
    let Some(pg) = PgCluster::start_or_skip("ha nonces replays") else {
        return;
    };
    let site = Site::on(&pg, "replays", "");
    let a = site.spawn("a");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");
    let dev = as_device(&phone, "alice");
    let agent = pushauth_testkit::agent();
    let send = |method: &str, path: &str, header: &str, body: Option<&[u8]>| {
        call_with(
            &agent,
            method,
            &format!("{}{path}", a.url),
            Some(header),
            body,
        )
    };
    let c = create(&a.url, &key, "alice");
    let path = format!("/v1/device/challenges/{}/response", c.id);
    let approve_body = dev.answer_body(&c, Decision::Approve, c.code.as_deref().unwrap());
    let approve = dev.header("POST", &path, &approve_body, now_secs());
    assert_eq!(
        send("POST", &path, &approve, Some(&approve_body)).status,
        200
    );
    let deny_body = dev.answer_body(&c, Decision::Deny, "");
    let deny = dev.header("POST", &path, &deny_body, now_secs());
    assert_eq!(
        send("POST", &path, &deny, Some(&deny_body)).json["error"],
        "wrong_state"
    );
    let poll = "/v1/device/challenges?wait=0";
    let poll_header = dev.header("GET", poll, b"", now_secs());
    assert_eq!(send("GET", poll, &poll_header, None).status, 200);
    let d = create(&a.url, &key, "alice");
    let ack_path = format!("/v1/device/challenges/{}/ack", d.id);
    let ack = dev.header("POST", &ack_path, b"", now_secs());
    assert_eq!(send("POST", &ack_path, &ack, None).status, 200);
    let e = create(&a.url, &key, "alice");
    let bad_path = format!("/v1/device/challenges/{}/response", e.id);
    let bad = dev.header("POST", &bad_path, b"{", now_secs());
    assert_eq!(send("POST", &bad_path, &bad, Some(b"{")).status, 400);
    let ghost = Device {
        id: "no-such-device".into(),
        user: "alice".into(),
        key: phone.signing_key(),
    };

    // Let the writes above settle (the listener, last_seen_at), then count.
    thread::sleep(Duration::from_secs(1));
    let before = next_xid(&pg, "replays");
    for _ in 0..3 {
        for (method, p, header, body) in [
            (
                "POST",
                path.as_str(),
                approve.as_str(),
                Some(approve_body.as_slice()),
            ),
            (
                "POST",
                path.as_str(),
                deny.as_str(),
                Some(deny_body.as_slice()),
            ),
            ("GET", poll, poll_header.as_str(), None),
            ("POST", ack_path.as_str(), ack.as_str(), None),
            (
                "POST",
                bad_path.as_str(),
                bad.as_str(),
                Some(b"{".as_slice()),
            ),
        ] {
            let r = send(method, p, header, body);
            assert_eq!(
                r.json["error"], "replayed_nonce",
                "{method} {p}: {}",
                r.text
            );
        }
        let h = ghost.header("GET", poll, b"", now_secs());
        assert_eq!(send("GET", poll, &h, None).status, 401);
        let h = dev.header("GET", poll, b"", now_secs() - 3600);
        assert_eq!(send("GET", poll, &h, None).status, 401);
    }
    let taken = next_xid(&pg, "replays") - before;
    assert_eq!(
        taken, 0,
        "replays or forgeries took {taken} transaction ids"
    );
    assert_eq!(
        pg.psql_db(
            "replays",
            &format!("SELECT state FROM challenges WHERE id = '{}'", c.id)
        )
        .trim(),
        "approved"
    );
}

//! Abuse of a reachable server (issue 9, items 12 to 15): audit flooding and the size bound, push limits
//! that cannot be turned into a lockout, what the person approves, and what the webhook tells its receiver.
//! Each test replays the attack the issue describes against a real server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::*;
use pushauth_proto::{b64, context_digest, Context, Decision, DeviceSigningKey};
use serde_json::{json, Value};

/// Accepts one webhook POST and returns its JSON body.
fn receive_hook(hook: &TcpListener) -> Value {
    let (stream, _) = hook.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn hook_server(include_user: bool) -> (TcpListener, Srv) {
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let srv = start_with(|c| {
        c.webhook = Some(pushauth_server::WebhookConfig {
            url,
            secret: zeroize::Zeroizing::new("hook-secret".into()),
            timeout_ms: 2000,
            include_user,
        })
    });
    (hook, srv)
}

#[test]
fn issue9_item15_webhook_payload_has_no_user_unless_opted_in() {
    let (hook, srv) = hook_server(false);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let note = receive_hook(&hook);
    assert_eq!(
        note,
        json!({"challenge_id": c.id, "device_id": dev.id}),
        "only what wakes the right phone"
    );
    assert!(!note.to_string().contains("alice"));

    let (hook, srv) = hook_server(true);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let note = receive_hook(&hook);
    assert_eq!(
        note,
        json!({"challenge_id": c.id, "device_id": dev.id, "user": "alice"})
    );
}

#[test]
fn issue9_item15_readable_config_with_an_inline_webhook_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pushauthd.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[webhook]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"inline-hook-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("PUSHAUTHD_LISTEN")
        .env_remove("PUSHAUTHD_DATA_DIR")
        .env_remove("PUSHAUTHD_ADMIN_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "it started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chmod 600") && err.contains("secret_file"),
        "{err}"
    );
    assert!(
        !err.contains("inline-hook-secret"),
        "the secret is never printed: {err}"
    );
    // Nothing was created: the refusal comes before the admin token and the store.
    assert!(!dir.path().join("data").exists());
}

/// A challenge body with this context.
fn create_with(srv: &Srv, key: &str, user: &str, context: &Context) -> (Resp, Option<Challenge>) {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let body = json!({"user": user, "context": context, "rp_nonce": b64::encode(nonce)});
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    let challenge = (r.status == 201).then(|| Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: user.to_owned(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: context_digest(context),
    });
    (r, challenge)
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn issue9_item14_server_refuses_hidden_characters_and_names_the_rp() {
    let srv = start();
    let key = srv.rp_key();
    srv.device("alice");
    let before = srv.audit().len();
    let (r, _) = create_with(
        &srv,
        &key,
        "alice",
        &ctx(&[("service", "sudo"), ("command", "ls \u{202E}fr- mr")]),
    );
    assert_error(&r, 400, "invalid_context");
    assert_eq!(srv.audit().len(), before, "nothing was stored");

    // Device and relying-party names are shown to people too.
    for name in ["phone\u{202E}", "pho\u{200B}ne", "tab\tbed"] {
        let token = srv.enrollment("bob", None);
        let key = DeviceSigningKey::generate().unwrap();
        let r = srv.call(
            "POST",
            "/v1/device/enroll",
            None,
            Some(&enroll_body(&token, &key, name)),
        );
        assert_error(&r, 400, "malformed_request");
        let r = srv.admin(
            "POST",
            "/v1/admin/relying-parties",
            Some(json!({"name": name})),
        );
        assert_error(&r, 400, "malformed_request");
    }

    // The device sees which relying party asked.
    let r = srv.admin(
        "POST",
        "/v1/admin/relying-parties",
        Some(json!({"name": "web-servers"})),
    );
    let web = r.json["api_key"].as_str().unwrap().to_owned();
    let dev = srv.device("carol");
    srv.challenge(&web, "carol");
    let r = dev.pending(&srv, 0);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["challenges"][0]["rp_name"], "web-servers");
}

fn from(source: &str) -> Context {
    ctx(&[("service", "sshd"), ("host", "web01"), ("rhost", source)])
}

fn cancel(srv: &Srv, key: &str, c: &Challenge) {
    let r = srv.rp(key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
    assert_eq!(r.status, 200, "{}", r.text);
}

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "192.0.2.10";

#[test]
fn issue9_item13_an_attackers_pushes_from_one_source_do_not_stop_the_owner() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    // The attacker, holding alice's password, pushes from one address: the person denies some,
    // ignores others, and reports one as "this was not me".
    for i in 0..9 {
        let (r, c) = create_with(&srv, &key, "alice", &from(ATTACKER));
        assert_eq!(r.status, 201, "{}", r.text);
        let c = c.unwrap();
        if i % 2 == 0 {
            assert_eq!(dev.answer(&srv, &c, Decision::Deny, "").status, 200);
        } else {
            cancel(&srv, &key, &c);
        }
    }
    let c = create_with(&srv, &key, "alice", &from(ATTACKER)).1.unwrap();
    let r = dev.answer(&srv, &c, Decision::Report, "");
    assert_eq!(r.json["state"], "denied", "{}", r.text);
    let (r, _) = create_with(&srv, &key, "alice", &from(ATTACKER));
    assert_error(&r, 429, "user_locked");

    // The owner logs in from their own address at once: not locked, not rate limited.
    let (r, c) = create_with(&srv, &key, "alice", &from(OWNER));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = dev.approve(&srv, &c.unwrap());
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    // A login with no source address is a source of its own, not the attacker's.
    let (r, _) = create_with(&srv, &key, "alice", &ctx(&[("service", "sudo")]));
    assert_eq!(r.status, 201, "{}", r.text);
    // Another relying party is another source too.
    let other = srv.rp_key();
    let (r, _) = create_with(&srv, &other, "alice", &from(ATTACKER));
    assert_eq!(r.status, 201, "{}", r.text);
    // The lock-out is audited with its source.
    let locked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "user_locked")
        .unwrap();
    assert!(
        locked["detail"].as_str().unwrap().contains(ATTACKER),
        "{locked}"
    );
}

#[test]
fn issue9_item13_approved_logins_never_hit_the_limit() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    for i in 0..30 {
        let (r, c) = create_with(&srv, &key, "alice", &from(OWNER));
        assert_eq!(r.status, 201, "login {i}: {}", r.text);
        let r = dev.approve(&srv, &c.unwrap());
        assert_eq!(r.json["state"], "approved", "{}", r.text);
    }
    // Unapproved ones still count: ten more unanswered from the same source, then a refusal.
    for _ in 0..10 {
        let c = create_with(&srv, &key, "alice", &from(OWNER)).1.unwrap();
        cancel(&srv, &key, &c);
    }
    let (r, _) = create_with(&srv, &key, "alice", &from(OWNER));
    assert_error(&r, 429, "rate_limited");
}

#[test]
fn issue9_item13_a_spray_from_many_sources_meets_the_per_user_ceiling() {
    let srv = start_with(|c| {
        c.limits.max_new_per_window = 2;
        c.limits.max_new_per_user_window = 12;
    });
    let key = srv.rp_key();
    srv.device("alice");
    for i in 0..12 {
        let source = format!("198.51.100.{i}");
        let (r, c) = create_with(&srv, &key, "alice", &from(&source));
        assert_eq!(r.status, 201, "{}", r.text);
        cancel(&srv, &key, &c.unwrap());
    }
    let (r, _) = create_with(&srv, &key, "alice", &from("198.51.100.200"));
    assert_error(&r, 429, "rate_limited");
}

fn report_lockout(srv: &Srv, key: &str, dev: &Device) {
    let c = create_with(srv, key, "alice", &from(ATTACKER)).1.unwrap();
    let r = dev.answer(srv, &c, Decision::Report, "");
    assert_eq!(r.status, 200, "{}", r.text);
    let (r, _) = create_with(srv, key, "alice", &from(ATTACKER));
    assert_error(&r, 429, "user_locked");
}

#[test]
fn issue9_item13_unlock_lifts_a_report_lockout_at_once_over_http_and_the_cli() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");

    report_lockout(&srv, &key, &dev);
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, json!({"user": "alice", "unlocked": true}));
    let (r, c) = create_with(&srv, &key, "alice", &from(ATTACKER));
    assert_eq!(r.status, 201, "{}", r.text);
    cancel(&srv, &key, &c.unwrap());
    // Only the admin may, and only for a known user.
    let r = srv.rp(&key, "POST", "/v1/admin/users/alice/unlock", None);
    assert_error(&r, 401, "unauthorized");
    let r = srv.admin("POST", "/v1/admin/users/nobody/unlock", None);
    assert_error(&r, 404, "unknown_user");

    report_lockout(&srv, &key, &dev);
    let out = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["unlock", "alice"])
        .args(srv.store_args())
        .env_remove("PUSHAUTHD_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("unlocked alice"));
    let (r, _) = create_with(&srv, &key, "alice", &from(ATTACKER));
    assert_eq!(r.status, 201, "{}", r.text);

    let unlocks: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "user_unlocked")
        .collect();
    assert_eq!(unlocks.len(), 2, "{unlocks:?}");
    assert!(unlocks[0]["detail"]
        .as_str()
        .unwrap()
        .contains("pushauthd unlock"));
    assert!(unlocks[1]["detail"].as_str().unwrap().contains("admin API"));
}

fn signature_rows(srv: &Srv) -> Vec<Value> {
    srv.audit()
        .into_iter()
        .filter(|e| e["kind"] == "signature_rejected")
        .collect()
}

#[test]
fn issue9_item12_a_flood_of_bad_signatures_adds_a_handful_of_audit_rows_with_the_count() {
    let srv = start_with(|c| c.sweep_interval_secs = 1);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let before = srv.audit().len();
    // Unauthenticated: the device id is known, the signature is garbage (another key's).
    let forger = Device {
        id: dev.id.clone(),
        user: "alice".into(),
        key: DeviceSigningKey::generate().unwrap(),
    };
    // One kept-alive connection, as a flooding client would use.
    let agent = agent();
    let path = "/v1/device/challenges?wait=0";
    for _ in 0..1_000 {
        let header = forger.header("GET", path, b"", now_secs());
        let status = match agent
            .get(&format!("{}{path}", srv.url))
            .set("Authorization", &header)
            .call()
        {
            Err(ureq::Error::Status(status, r)) => {
                assert!(r.into_string().unwrap().contains("bad_signature"));
                status
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(status, 401);
    }
    // Forged answers count into the same row (same device, same address).
    let c = srv.challenge(&key, "alice");
    for _ in 0..5 {
        let r = forger.answer(&srv, &c, Decision::Approve, c.code.as_deref().unwrap());
        assert_error(&r, 401, "bad_signature");
    }
    let rows = signature_rows(&srv);
    assert_eq!(rows.len(), 1, "{rows:?}");
    // 2 for the challenge itself (created), 1 for the aggregated failures.
    assert!(srv.audit().len() <= before + 3, "{:?}", srv.audit_kinds());
    assert!(rows[0]["detail"].as_str().unwrap().contains("127.0.0.1"));
    // The count reaches the row (the sweeper writes it, once, not per request).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = signature_rows(&srv);
        if rows[0]["count"] == 1_005 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The real device is unaffected.
    assert_eq!(dev.approve(&srv, &c).json["state"], "approved");
}

#[test]
fn issue9_item12_the_size_bound_refuses_new_challenges_with_storage_full() {
    if pushauth_testkit::on_postgres() {
        // It fills the SQLite file behind the server's back, and counts on SQLite reusing
        // deleted pages at once; PostgreSQL gives space back through VACUUM.
        eprintln!("SKIPPED on PostgreSQL: SQLite-only (writes pushauthd.sqlite3 directly)");
        return;
    }
    let srv = start_with(|c| c.retention.max_db_mb = 1);
    let key = srv.rp_key();
    srv.device("alice");
    let c = srv.challenge(&key, "alice");
    srv.rp(&key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
    // Something fills the store past the bound.
    let db = rusqlite::Connection::open(srv.data_dir().join("pushauthd.sqlite3")).unwrap();
    db.execute(
        "INSERT INTO audit (at, kind, detail) VALUES (0, 'filler', ?1)",
        ["x".repeat(2 * 1024 * 1024)],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    let created_before = srv
        .audit_kinds()
        .iter()
        .filter(|k| *k == "challenge_created")
        .count();
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_error(&r, 507, "storage_full");
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_error(&r, 507, "storage_full");
    let created_after = srv
        .audit_kinds()
        .iter()
        .filter(|k| *k == "challenge_created")
        .count();
    assert_eq!(created_before, created_after, "nothing was stored");
    // Room again (deleted pages are reused, so they do not count): challenges go through.
    db.execute("DELETE FROM audit WHERE kind = 'filler'", [])
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    srv.challenge(&key, "alice");
}

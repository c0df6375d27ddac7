//! Issue 12 attacks on pushauthd (reviewer r2): what a relying party can make the server do with
//! one approval (offline values hashed again and again; a grace window on a challenge that
//! approves an action), and what a repeated report does to the user's devices.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use pushauth_proto::{b64, Context};
use serde_json::json;

fn hashed(r: &Resp) -> usize {
    r.json["devices"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| d["values"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

fn count(srv: &Srv, kind: &str) -> usize {
    srv.audit_kinds().iter().filter(|k| *k == kind).count()
}

/// Attack: one approved login, then `POST /v1/challenges/{id}/offline` with an empty `have`
/// again and again for five minutes: each call made pushauthd hash `window` values per device
/// with Argon2id (about 2 s of a core for 20 values), all from a single approval.
#[test]
fn attack12_one_approval_has_its_offline_values_hashed_once() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    let id = approved_login(&srv, &key, &dev);
    let first = offline_values(&srv, &key, &id, json!({}));
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(hashed(&first), 20);
    // Again on the same approval: refused before any hashing, with a clear reason.
    let again = offline_values(&srv, &key, &id, json!({}));
    assert_error(&again, 409, "wrong_state");
    assert!(
        again.text.contains("already") && again.text.contains("next"),
        "{}",
        again.text
    );
    // Asking for nothing to hash is harmless and still answered.
    let nothing = offline_values(&srv, &key, &id, json!({ dev.id(): 20 }));
    assert_eq!(nothing.status, 200, "{}", nothing.text);
    assert_eq!(hashed(&nothing), 0);
    assert_eq!(count(&srv, "offline_values_issued"), 1);
    // In parallel on a fresh approval: exactly one call gets values.
    let id = approved_login(&srv, &key, &dev);
    let got: Vec<usize> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| offline_values(&srv, &key, &id, json!({}))))
            .collect();
        calls
            .into_iter()
            .map(|c| {
                let r = c.join().unwrap();
                assert!(r.status == 200 || r.status == 409, "{}", r.text);
                hashed(&r)
            })
            .collect()
    });
    assert_eq!(got.iter().filter(|n| **n > 0).count(), 1, "{got:?}");
    assert_eq!(count(&srv, "offline_values_issued"), 2);
}

fn ssh(action: Option<&str>) -> Context {
    let mut c: Context = [
        ("service", "sshd"),
        ("host", "web01"),
        ("rhost", "192.0.2.7"),
        ("ssh_key", "ssh-ed25519 SHA256:k1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(a) = action {
        c.insert("action".into(), a.into());
    }
    c
}

fn ask(srv: &Srv, key: &str, user: &str, context: &Context, grace: Option<u64>) -> Resp {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let mut body = json!({"user": user, "context": context, "rp_nonce": b64::encode(nonce)});
    if let Some(g) = grace {
        body["grace_secs"] = json!(g);
    }
    srv.rp(key, "POST", "/v1/challenges", Some(body))
}

/// Attack: a challenge that approves an action (a new set of backup codes, anything but a
/// login) asked with `grace_secs`. Its approval opened a window that let plain logins in (the
/// grace key does not cover `action`), and a window could let the action in without a device.
/// Grace is for repeated logins only: every `action` challenge is refused a grace ask.
#[test]
fn attack12_grace_never_applies_to_a_challenge_that_approves_an_action() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let before = count(&srv, "challenge_created");
    for action in ["issue_backup_codes", "add_device", "rotate_something"] {
        let r = ask(&srv, &key, "alice", &ssh(Some(action)), Some(60));
        assert_error(&r, 400, "malformed_request");
        assert!(r.text.contains("action"), "{action}: {}", r.text);
    }
    assert_eq!(count(&srv, "challenge_created"), before, "nothing created");
    drop(phone);
}

/// Attack: any relying party with the user in scope reports `offline-used` with a counter just
/// within reach (last used + 100), again and again. Each report moved the device's counter, so
/// one host could push it past every value any other host holds: during an outage nobody could
/// log in with an offline code anywhere. A report may now name only a counter whose value was
/// handed out to a host.
#[test]
fn attack12_reports_cannot_pump_the_offline_counter_past_what_was_handed_out() {
    let srv = start_with(|c| c.offline.window = 5);
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    // Nothing handed out yet: no counter can have come from a cache.
    let r = report(&srv, &key, "alice", &dev, 1);
    assert_error(&r, 400, "malformed_request");
    assert!(r.text.contains("handed out"), "{}", r.text);
    let id = approved_login(&srv, &key, &dev);
    assert_eq!(hashed(&offline_values(&srv, &key, &id, json!({}))), 5);
    // Values 1..=5 went to a host: a use of 3 or 5 is believed, 6 or 105 is not.
    assert_eq!(report(&srv, &key, "alice", &dev, 3).ok().json["counter"], 3);
    for beyond in [6, 105, 205] {
        let r = report(&srv, &key, "alice", &dev, beyond);
        assert_error(&r, 400, "malformed_request");
    }
    assert_eq!(report(&srv, &key, "alice", &dev, 5).ok().json["counter"], 5);
    // The next approval hands out 6..=10, and only then do they count.
    let id = approved_login(&srv, &key, &dev);
    assert_eq!(hashed(&offline_values(&srv, &key, &id, json!({}))), 5);
    assert_eq!(
        report(&srv, &key, "alice", &dev, 10).ok().json["counter"],
        10
    );
    assert_error(
        &report(&srv, &key, "alice", &dev, 11),
        400,
        "malformed_request",
    );
}

fn verify(srv: &Srv, key: &str, user: &str, code: &str) -> Resp {
    srv.rp(
        key,
        "POST",
        &format!("/v1/users/{user}/backup-codes/verify"),
        Some(json!({"code": code, "context": {"service": "sshd", "host": "web01"}})),
    )
}

/// Attack: backup codes for user names that do not exist. Wrong codes of a known user are
/// counted and lock, but an unknown name was never counted and still paid a full Argon2id
/// verify against a decoy (19 MiB, tens of ms of a core), so one relying-party key could keep
/// the hashing pool busy forever and make every real backup-code login wait or get 429. The
/// decoy hid nothing: a relying party learns whether a user exists from
/// `GET /v1/users/{user}/devices`. An unknown user is now refused before any hashing, with the
/// same `backup_code_invalid`.
#[test]
fn attack12_unknown_users_cost_no_argon2id() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let r = srv.admin("POST", "/v1/admin/users/alice/backup-codes", None);
    assert_eq!(r.status, 201, "{}", r.text);
    let wrong = "2345-6789-ABCD-EFGH";
    // Warm up the decoy (made once) and time one real verify of a known user.
    assert_error(
        &verify(&srv, &key, "nobody", wrong),
        403,
        "backup_code_invalid",
    );
    let started = std::time::Instant::now();
    assert_error(
        &verify(&srv, &key, "alice", wrong),
        403,
        "backup_code_invalid",
    );
    let one_known = started.elapsed();
    let started = std::time::Instant::now();
    for i in 0..10 {
        let r = verify(&srv, &key, &format!("ghost{i}"), wrong);
        assert_error(&r, 403, "backup_code_invalid");
    }
    let ten_unknown = started.elapsed();
    assert!(
        ten_unknown < one_known * 3,
        "10 unknown users took {ten_unknown:?}, one verify {one_known:?}"
    );
    // The existence the decoy "hid" is told to any relying party anyway.
    assert_error(
        &srv.rp(&key, "GET", "/v1/users/ghost1/devices", None),
        404,
        "unknown_user",
    );
    drop(phone);
}

/// Attack: one `issue_backup_codes` approval, then the same `POST /v1/users/{user}/backup-codes`
/// sent many times at once. The approval was used up only when the set was stored, so every
/// copy drew and hashed a whole set first (10 Argon2id hashes each) before all but one were
/// refused. The approval is now used up before any hashing.
#[test]
fn attack12_one_issue_approval_pays_for_one_set_of_hashes() {
    let srv = start();
    let phone = srv.device("alice");
    let key = srv.rp_key();
    let approval = |srv: &Srv| {
        let mut context = Context::new();
        context.insert("action".into(), "issue_backup_codes".into());
        let nonce = pushauth_proto::random::rp_nonce().unwrap();
        let r = srv.rp(
            &key,
            "POST",
            "/v1/challenges",
            Some(json!({"user": "alice", "context": context, "rp_nonce": b64::encode(nonce)})),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let c = Challenge {
            id: r.json["id"].as_str().unwrap().to_owned(),
            user: "alice".into(),
            code: r.json["code"].as_str().map(str::to_owned),
            rp_nonce: nonce,
            digest: pushauth_proto::context_digest(&context),
        };
        assert_eq!(phone.approve(srv, &c).status, 200);
        c.id
    };
    let issue = |id: &str| {
        srv.rp(
            &key,
            "POST",
            "/v1/users/alice/backup-codes",
            Some(json!({ "approval": id })),
        )
    };
    let one = approval(&srv);
    let before = slow_hash_jobs(&srv);
    assert_eq!(issue(&one).status, 201);
    let one_set = slow_hash_jobs(&srv) - before;
    assert!(one_set > 0, "issuing a set ran no hashing job");
    let many = approval(&srv);
    let before = slow_hash_jobs(&srv);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..6).map(|_| scope.spawn(|| issue(&many))).collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap().status)
            .collect()
    });
    let parallel = slow_hash_jobs(&srv) - before;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    // The refused copies hashed nothing: the six requests ran the jobs of one set.
    assert_eq!(
        parallel, one_set,
        "6 copies of one approval ran {parallel} hashing jobs, one set {one_set}"
    );
}

/// Attack: the same `offline-used` report (a counter at or below the device's last used one)
/// sent again and again. Each copy wrote an audit row and a device notice, so one relying
/// party could fill the disk and push every real notice (a backup code used, a device added)
/// out of the newest 200 the devices are shown. A report is now recorded once per device,
/// counter and relying party; copies are answered and write nothing.
#[test]
fn attack12_repeated_offline_reports_write_once() {
    let srv = start_with(|c| c.offline.window = 5);
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    let id = approved_login(&srv, &key, &dev);
    assert_eq!(hashed(&offline_values(&srv, &key, &id, json!({}))), 5);
    for _ in 0..10 {
        assert_eq!(report(&srv, &key, "alice", &dev, 3).ok().json["counter"], 3);
        assert_eq!(report(&srv, &key, "alice", &dev, 2).ok().json["counter"], 3);
    }
    assert_eq!(count(&srv, "offline_code_used"), 2);
    let notices = dev.notices().unwrap();
    let used = notices
        .iter()
        .filter(|n| n.kind == "offline_code_used")
        .count();
    assert_eq!(used, 2, "{notices:?}");
    // Another relying party's report of the same counter is its own (another host).
    let other = srv.rp_key();
    assert_eq!(
        report(&srv, &other, "alice", &dev, 3).ok().json["counter"],
        3
    );
    assert_eq!(count(&srv, "offline_code_used"), 3);
}

/// Attack (an operator's mistake, or a wiped file): `<data_dir>/offline-key` gone while the
/// store holds sealed offline secrets. pushauthd made a new key without a word, and from then
/// on every fetch of offline values failed with a 500 for every enrolled device. It now
/// refuses to start and says what to do.
#[test]
fn attack12_a_lost_offline_key_stops_the_start_instead_of_breaking_every_fetch() {
    let mut srv = start();
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    srv.stop();
    let path = srv.data_dir().join("offline-key");
    std::fs::remove_file(&path).unwrap();
    let err = match pushauth_server::server::RunningServer::start(srv.config.clone()) {
        Ok(_) => panic!("a start without the key that sealed the secrets is refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("offline-key") && err.contains("backup"),
        "{err}"
    );
    assert!(!path.exists(), "no new key was made");
    drop((key, dev));
}

//! Issue 12 review findings on pushauthd: an `offline-used` report must prove the code, and the
//! refusals a relying party can repeat at will (wrong backup codes, unknown users, refused
//! offline reports and fetches) must not grow the audit log by a row per request, nor past
//! `[retention] max_db_mb`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::Duration;

use common::*;
use pushauth_testkit::TestDevice;
use serde_json::json;

/// A code of the right form that is not `dev`'s value for `counter`.
fn wrong_code(dev: &TestDevice, counter: u64) -> String {
    let right = offline_code(dev, counter);
    let last = right.as_bytes()[right.len() - 1];
    let other = if last == b'9' {
        '0'
    } else {
        char::from(last + 1)
    };
    format!("{}{other}", &right[..right.len() - 1])
}

fn rows(srv: &Srv, kind: &str) -> usize {
    srv.audit_kinds().iter().filter(|k| *k == kind).count()
}

fn verify(srv: &Srv, key: &str, user: &str, code: &str) -> Resp {
    srv.rp(
        key,
        "POST",
        &format!("/v1/users/{user}/backup-codes/verify"),
        Some(json!({"code": code, "context": {"service": "sshd", "host": "web01"}})),
    )
}

/// Attack (a broken-into PAM host, or any relying-party key with the user in scope): report
/// `offline-used` for counters it never saw typed. The report carried no proof, so the host
/// moved the device's counter (killing the values other hosts hold), and wrote
/// `offline_code_used` rows and device notices for logins that never happened. A report must
/// now carry the code; a wrong one is 403, changes nothing and is audited (coalesced).
#[test]
fn attack12_an_offline_report_without_the_right_code_changes_nothing() {
    let srv = start_with(|c| {
        c.offline.window = 5;
        c.sweep_interval_secs = 1;
    });
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    let id = approved_login(&srv, &key, &dev);
    offline_values(&srv, &key, &id, json!({})).ok();
    // A host that never saw code 3 reports it, again and again.
    for _ in 0..1_000 {
        let r = report_with(&srv, &key, "alice", dev.id(), 3, &wrong_code(&dev, 3));
        assert_error(&r, 403, "forbidden");
    }
    // A value of the wrong form is malformed (and not counted as a guess).
    let r = report_with(&srv, &key, "alice", dev.id(), 3, "12345");
    assert_error(&r, 400, "malformed_request");
    // Nothing moved, nothing was announced.
    assert_eq!(rows(&srv, "offline_code_used"), 0);
    assert!(dev
        .notices()
        .unwrap()
        .iter()
        .all(|n| n.kind != "offline_code_used"));
    let id = approved_login(&srv, &key, &dev);
    let r = offline_values(&srv, &key, &id, json!({})).ok();
    assert_eq!(r.json["devices"][0]["last_used"], 0, "{}", r.text);
    // One row, with the count of all 1,000.
    assert_eq!(rows(&srv, "offline_report_refused"), 1);
    wait_audit_count(&srv, "offline_report_refused", 1_000);
    let row = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "offline_report_refused")
        .unwrap();
    assert_eq!(row["device_id"], dev.id());
    assert!(!row.to_string().contains(&wrong_code(&dev, 3)), "{row}");
    // Guessing stopped after 10: from that host even the right code is refused now (a real
    // host never reports a wrong one), so the value cannot be found by trying them all.
    let r = report(&srv, &key, "alice", &dev, 3);
    assert_error(&r, 403, "forbidden");
    assert!(r.text.contains("too many wrong"), "{}", r.text);
    assert_eq!(rows(&srv, "offline_code_used"), 0);
    // Another host's report with the real code is believed.
    let other = srv.rp_key();
    let id = approved_login(&srv, &other, &dev);
    offline_values(&srv, &other, &id, json!({})).ok();
    let r = report(&srv, &other, "alice", &dev, 3).ok();
    assert_eq!(r.json["counter"], 3);
    assert_eq!(rows(&srv, "offline_code_used"), 1);
}

/// Attack: a relying party loops wrong backup codes for a real user (past the lock), backup
/// codes for made-up users, and offline fetches on another relying party's challenge. Each
/// refusal wrote its own audit row, so one key could grow the database without limit. Now
/// each kind counts into one row a minute per user (or "unknown users"), reason and relying
/// party.
#[test]
fn attack12_a_thousand_refusals_write_a_handful_of_rows_with_the_count() {
    let srv = start_with(|c| {
        c.limits.max_backup_code_failures = 5;
        c.sweep_interval_secs = 1;
    });
    let key = srv.rp_key();
    let other = srv.rp_key();
    let phone = srv.enroll("alice", "phone");
    let r = srv.admin("POST", "/v1/admin/users/alice/backup-codes", None);
    assert_eq!(r.status, 201, "{}", r.text);
    let before = srv.audit().len();
    let wrong = "2345-6789-ABCD-EFGH";
    for i in 0..1_000 {
        let r = verify(&srv, &key, "alice", wrong);
        let (status, code) = if i < 5 {
            (403, "backup_code_invalid")
        } else {
            (429, "user_locked")
        };
        assert_error(&r, status, code);
        let r = verify(&srv, &key, &format!("ghost{i}"), wrong);
        assert_error(&r, 403, "backup_code_invalid");
    }
    let id = approved_login(&srv, &other, &phone);
    for _ in 0..1_000 {
        assert_error(
            &offline_values(&srv, &key, &id, json!({})),
            404,
            "not_found",
        );
    }
    // alice: "wrong" and "locked"; unknown users: one; the fetches: one; the lock itself: one.
    assert_eq!(rows(&srv, "backup_code_refused"), 3, "{:?}", srv.audit());
    assert_eq!(rows(&srv, "offline_values_refused"), 1);
    assert_eq!(rows(&srv, "backup_codes_locked"), 1);
    // + the challenge's own rows (created, approved).
    assert!(
        srv.audit().len() <= before + 5 + 3,
        "{:?}",
        srv.audit_kinds()
    );
    wait_audit_count(&srv, "backup_code_refused", 2_000);
    wait_audit_count(&srv, "offline_values_refused", 1_000);
    let unknown = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "backup_code_refused" && e["user"].is_null())
        .unwrap();
    assert!(
        unknown["detail"].as_str().unwrap().contains("unknown user"),
        "{unknown}"
    );
}

/// Attack: the same loops once the database is at `[retention] max_db_mb`. Refusal rows kept
/// being written past the bound. Now no refusal row is written while the store is over it
/// (the refusals are still answered, and logged).
#[test]
fn attack12_refusals_write_no_rows_over_the_size_bound() {
    let srv = start_with(|c| c.retention.max_db_mb = 1);
    let key = srv.rp_key();
    let phone = srv.enroll("alice", "phone");
    // Values handed out before the store fills, so reports of them are checked.
    let id = approved_login(&srv, &key, &phone);
    offline_values(&srv, &key, &id, json!({})).ok();
    if pushauth_testkit::on_postgres() {
        // Random hex, so that TOAST compression cannot shrink it below the bound (about 4 MiB
        // of text, over 2 MiB stored).
        srv.update_sql(
            "INSERT INTO audit (at, kind, detail) SELECT 0, 'filler', \
             string_agg(md5(random()::text), '') FROM generate_series(1, 140000)",
        );
    } else {
        let db = rusqlite::Connection::open(srv.data_dir().join("pushauthd.sqlite3")).unwrap();
        db.execute(
            "INSERT INTO audit (at, kind, detail) VALUES (0, 'filler', ?1)",
            ["x".repeat(2 * 1024 * 1024)],
        )
        .unwrap();
    }
    // The size is read at most once a second.
    std::thread::sleep(Duration::from_millis(1_100));
    let before = srv.audit().len();
    for i in 0..50 {
        let r = verify(&srv, &key, &format!("ghost{i}"), "2345-6789-ABCD-EFGH");
        assert_error(&r, 403, "backup_code_invalid");
        let r = report_with(&srv, &key, "alice", phone.id(), 1, &wrong_code(&phone, 1));
        assert_error(&r, 403, "forbidden");
    }
    assert_eq!(srv.audit().len(), before, "{:?}", srv.audit_kinds());
}

//! `[retention]`: the running server's sweeper deletes records older than configured, and only
//! those.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

const DAY_MS: i64 = 86_400_000;

fn audit_kinds(srv: &common::Srv) -> Vec<String> {
    let r = srv.admin("GET", "/v1/admin/audit?limit=100", None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {}", r.text))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_sweeper_deletes_audit_events_older_than_audit_days() {
    let srv = common::start_with(|c| {
        c.sweep_interval_secs = 1;
        c.retention.audit_days = 7;
    });
    srv.enrollment("old", None);
    // Age the events so far by eight days, as if they had been written then.
    let aged = srv.update_sql(&format!("UPDATE audit SET at = at - {}", 8 * DAY_MS));
    assert!(aged >= 1);
    srv.enrollment("new", None);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = srv.admin("GET", "/v1/admin/audit?limit=100", None);
        let users: Vec<Value> = r.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["user"].clone())
            .collect();
        if !users.contains(&Value::from("old")) {
            assert!(users.contains(&Value::from("new")), "{}", r.text);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old events still there: {}",
            r.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(audit_kinds(&srv), vec!["enrollment_created".to_owned()]);
}

#[test]
fn with_retention_turned_off_nothing_is_deleted() {
    // The defaults keep 90 days of challenges and 400 of audit (issue 9 item 12); 0 still
    // means for ever.
    let srv = common::start_with(|c| {
        c.sweep_interval_secs = 1;
        c.retention.challenges_days = 0;
        c.retention.audit_days = 0;
    });
    srv.enrollment("old", None);
    srv.update_sql(&format!("UPDATE audit SET at = at - {}", 10_000 * DAY_MS));
    // Several sweeps.
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(audit_kinds(&srv), vec!["enrollment_created".to_owned()]);
}

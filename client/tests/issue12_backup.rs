//! Issue 12: the client's backup-code calls against a real pushauthd.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::{Duration, Instant};

use common::{ssh_context, TestServer};
use pushauth_client::{ClientError, ErrorCode};
use serde_json::json;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn issue12_client_uses_a_code_once_and_gets_its_replacement() {
    let server = TestServer::start();
    let (_profile, _device) = server.enroll("alice", "phone");
    let set = server.admin(
        "POST",
        "/v1/admin/users/alice/backup-codes",
        Some(json!({"count": 2})),
    );
    let code = set["codes"][0].as_str().unwrap().to_owned();
    let client = server.client();
    let used = client
        .verify_backup_code_until("alice", &code, &ssh_context(), soon())
        .unwrap();
    assert_eq!(used.user, "alice");
    assert_eq!(used.remaining, 2);
    assert_ne!(used.replacement, code);
    match client.verify_backup_code_until("alice", &code, &ssh_context(), soon()) {
        Err(ClientError::Rejected {
            status: 403,
            code: Some(ErrorCode::BackupCodeInvalid),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Enrollment with the replacement: a link and the next replacement.
    let created = client
        .enroll_with_backup_code("alice", &used.replacement, None)
        .unwrap_err();
    // The default test relying party has no enroll right.
    assert!(
        matches!(
            created,
            ClientError::Rejected {
                status: 403,
                code: Some(ErrorCode::Forbidden),
                ..
            }
        ),
        "{created:?}"
    );
    let used2 = client
        .verify_backup_code_until("alice", &used.replacement, &ssh_context(), soon())
        .unwrap();
    assert_eq!(used2.remaining, 2);
}

#[test]
fn issue12_client_reports_the_lock() {
    let server = TestServer::start_with(|c| c.limits.max_backup_code_failures = 1);
    let (_profile, _device) = server.enroll("alice", "phone");
    server.admin("POST", "/v1/admin/users/alice/backup-codes", None);
    let client = server.client();
    let wrong = "2222-2222-2222-2222";
    assert!(client
        .verify_backup_code_until("alice", wrong, &ssh_context(), soon())
        .is_err());
    match client.verify_backup_code_until("alice", wrong, &ssh_context(), soon()) {
        Err(ClientError::RateLimited {
            code: ErrorCode::UserLocked,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn issue12_a_pinned_user_s_code_is_refused_before_it_is_sent() {
    // The server alone decides a backup code; pins promise that only a pinned device's
    // signature lets such a user in (a Keycloak login through the sidecar included).
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    let (_profile, _device) = server.enroll("alice", "phone");
    let set = server.admin(
        "POST",
        "/v1/admin/users/alice/backup-codes",
        Some(json!({"count": 2})),
    );
    let code = set["codes"][0].as_str().unwrap().to_owned();
    let key = pushauth_proto::DeviceSigningKey::from_seed(&[5; 32]).public_key();
    let pins = tempfile::tempdir().unwrap();
    std::fs::set_permissions(pins.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        pins.path().join("alice"),
        format!("ed25519 {} phone\n", key.to_b64()),
    )
    .unwrap();
    let mut cfg = pushauth_client::ClientConfig::new(vec![server.url.clone()], server.api_key());
    cfg.authorized_devices_dir = Some(pins.path().to_owned());
    let strict = pushauth_client::Client::new(cfg.clone()).unwrap();
    assert!(strict.pins_keys_for("alice").unwrap());
    for attempt in [
        strict
            .verify_backup_code_until("alice", &code, &ssh_context(), soon())
            .map(|_| ()),
        strict
            .enroll_with_backup_code("alice", &code, None)
            .map(|_| ()),
    ] {
        match attempt {
            Err(ClientError::Config(message)) => {
                assert!(message.contains("pinned_backup_codes"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    // Not sent, so not used up: the code still works where pinned users may use codes.
    cfg.pinned_backup_codes = true;
    let allowed = pushauth_client::Client::new(cfg).unwrap();
    let used = allowed
        .verify_backup_code_until("alice", &code, &ssh_context(), soon())
        .unwrap();
    assert_eq!(used.remaining, 2);
}

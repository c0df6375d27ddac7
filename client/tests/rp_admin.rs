//! The relying-party calls the IdP sidecar uses instead of the admin token (issue 9 items 1 and
//! 2): `Client::create_enrollment` under the approval rules and `Client::revoke_device`, against
//! a real pushauthd.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::{Duration, Instant};

use common::*;
use pushauth_client::{Client, ClientConfig, ClientError, ErrorCode, Outcome, StartOptions};
use pushauth_device::{Decision, DeviceClient};
use serde_json::json;

fn rp_client(server: &TestServer, rights: serde_json::Value) -> Client {
    let rp = server.admin("POST", "/v1/admin/relying-parties", Some(rights));
    let key = rp["api_key"].as_str().unwrap().to_string();
    Client::new(ClientConfig::new(vec![server.url.clone()], key)).unwrap()
}

fn code_of(e: &ClientError) -> Option<ErrorCode> {
    match e {
        ClientError::Rejected { code, .. } => *code,
        _ => None,
    }
}

/// Item 1, as the sidecar does it: push "add device" to alice's phone, have it approved with
/// the number, then ask for the link with that approval: once only. Without it: refused.
#[test]
fn issue9_item1_client_enrolls_with_an_approval_once_and_revokes() {
    let server = TestServer::start();
    let (_, phone) = server.enroll("kc/alice", "phone");
    let client = rp_client(
        &server,
        json!({"name": "sidecar", "users": ["kc/*"], "enroll": true}),
    );
    let err = client
        .create_enrollment("kc/alice", None, None)
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::ApprovalRequired), "{err}");
    let mut context = pushauth_client::Context::new();
    context.insert("action".into(), "add_device".into());
    context.insert("device_name".into(), "new phone".into());
    let login = client
        .start("kc/alice", &context, &StartOptions::default())
        .unwrap();
    let code = login.code.clone().expect("number matching");
    let pending = find_challenge(&phone, &login.id);
    phone.respond(&pending, Decision::Approve, &code).unwrap();
    let outcome = client
        .wait(&login, Instant::now() + Duration::from_secs(10))
        .unwrap();
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
    let created = client
        .create_enrollment("kc/alice", Some(&login.id), Some(300))
        .unwrap();
    assert!(created.url.contains("/enroll?token="), "{}", created.url);
    let err = client
        .create_enrollment("kc/alice", Some(&login.id), None)
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::ApprovalUsed), "{err}");
    let profile = DeviceClient::enroll(&created.url, "new phone", None).unwrap();
    assert_eq!(profile.user, "kc/alice");
    // Revoke it again through the relying party.
    let revoked = client
        .revoke_device("kc/alice", &profile.device_id)
        .unwrap();
    assert_eq!(revoked.id, profile.device_id);
    let left = client.devices("kc/alice").unwrap();
    assert_eq!(left.len(), 1);
    // Out of scope: forbidden, for every call.
    server.enroll("root", "root phone");
    for err in [
        client.devices("root").unwrap_err(),
        client.create_enrollment("root", None, None).unwrap_err(),
        client.revoke_device("root", "x").unwrap_err(),
    ] {
        assert_eq!(code_of(&err), Some(ErrorCode::Forbidden), "{err}");
    }
}

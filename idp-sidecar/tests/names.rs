//! Issue 10 item 5 (with item 4): the sidecar applies the shared name rules of
//! `pushauth_proto::names`, with the realm mapping's stricter rules on top. Checked through a
//! running sidecar whose pushauthd cannot be reached, so a request that passes the checks ends in
//! 502 `upstream_unreachable` and one that fails them in 400 before any pushauthd call.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::Duration;

use pushauth_idp_sidecar::realms::{Realm, Realms};
use pushauth_idp_sidecar::{api, RunningSidecar, Settings};
use pushauth_proto::names::{self, MAX_DEVICE_NAME_CHARS, MAX_USER_CHARS};
use pushauth_proto::DeviceSigningKey;
use serde_json::{json, Value};
use zeroize::Zeroizing;

const SECRET: &str = "shim-shared-secret-0123456789";

fn sidecar() -> RunningSidecar {
    let mut settings = Settings::new(
        vec!["http://127.0.0.1:9".into()],
        Zeroizing::new("rp.key".into()),
        Zeroizing::new(SECRET.into()),
        DeviceSigningKey::from_seed(&[4u8; 32]),
    );
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    settings.realms = Realms::new([Realm {
        name: "demo".into(),
        template: "{username}".into(),
        bootstrap: true,
    }])
    .expect("realms");
    RunningSidecar::start(settings).expect("sidecar")
}

fn call(sidecar: &RunningSidecar, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let request = agent
        .request(method, &format!("{}{path}", sidecar.url()))
        .set("Authorization", &format!("Bearer {SECRET}"));
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn issue10_item5_user_names_follow_the_shared_rule() {
    // The sidecar's check is the shared one: same verdict, same fix-it message.
    for user in [
        "alice".to_owned(),
        "a".repeat(MAX_USER_CHARS),
        "a".repeat(MAX_USER_CHARS + 1),
        String::new(),
        "ali\u{200B}ce".into(),
    ] {
        let shared = names::check_user(&user);
        let ours = api::check_user(&user);
        assert_eq!(ours.is_ok(), shared.is_ok(), "{user:?}");
        if let (Err(ours), Err(shared)) = (ours, shared) {
            assert_eq!(
                (ours.status, ours.code.as_str()),
                (400, "malformed_request")
            );
            assert_eq!(ours.message, shared.to_string());
        }
    }
}

#[test]
fn issue10_item5_device_names_and_ids_follow_the_shared_rules() {
    let sidecar = sidecar();
    let enroll = |name: &str| {
        call(
            &sidecar,
            "POST",
            "/v1/enrollments",
            Some(json!({"realm": "demo", "username": "alice", "device_name": name})),
        )
    };
    // 64 characters pass the checks (and then find pushauthd unreachable)...
    let (status, body) = enroll(&"é".repeat(MAX_DEVICE_NAME_CHARS));
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_unreachable"))
    );
    // ...65, or a hidden character, do not.
    for bad in [
        "é".repeat(MAX_DEVICE_NAME_CHARS + 1),
        "phone\u{202E}".to_owned(),
    ] {
        let (status, body) = enroll(&bad);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("malformed_request")),
            "{bad:?}"
        );
        assert_eq!(
            body["message"].as_str(),
            Some(names::NameError::DeviceName.to_string().as_str())
        );
    }
    // A device id outside the shared id alphabet is refused before pushauthd is asked.
    let (status, body) = call(
        &sidecar,
        "DELETE",
        "/v1/realms/demo/users/alice/devices/bad.id",
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_request"))
    );
    let (status, body) = call(
        &sidecar,
        "DELETE",
        &format!(
            "/v1/realms/demo/users/alice/devices/{}",
            "d".repeat(names::MAX_ID_BYTES)
        ),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_unreachable"))
    );
    // The realm rule stays stricter than the shared user rule: no '/' or white space.
    for username in ["a%2Fb", "al%20ice"] {
        let (status, body) = call(
            &sidecar,
            "GET",
            &format!("/v1/realms/demo/users/{username}/devices"),
            None,
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("malformed_request")),
            "{username}"
        );
    }
    sidecar.shutdown();
}

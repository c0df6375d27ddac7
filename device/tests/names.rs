//! Issue 10 item 4: the device CLI applies the server's device-name rule
//! (`pushauth_proto::names`): 64 characters, not 100 bytes.

use pushauth_device::{DeviceClient, DeviceError};
use pushauth_proto::names::MAX_DEVICE_NAME_CHARS;
use pushauth_server::{RunningServer, ServerConfig};
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "device-names-admin-token-42";

fn admin(url: &str, path: &str, body: Value) -> Value {
    let response = ureq::post(&format!("{url}{path}"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .unwrap();
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

#[test]
fn issue10_item4_device_name_rule_matches_server() {
    let data = tempfile::tempdir().unwrap();
    let server = RunningServer::start(ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        data.path().to_path_buf(),
        ADMIN_TOKEN.into(),
    ))
    .unwrap();
    let url = server.url();
    let link = |user: &str| {
        admin(&url, "/v1/admin/enrollments", json!({"user": user}))["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // 64 two-byte characters (128 bytes): the old 100-byte rule refused it; the server takes it.
    let long = "é".repeat(MAX_DEVICE_NAME_CHARS);
    assert_eq!(MAX_DEVICE_NAME_CHARS, 64);
    let profile = DeviceClient::enroll(&link("alice"), &long, None).unwrap();
    assert_eq!(profile.name, long);
    let listed = ureq::get(&format!("{url}/v1/admin/users/alice/devices"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["devices"][0]["name"], long.as_str());

    // 65 characters (65 bytes: the old rule took it, the server refuses it): refused before
    // anything is sent, with the server's own message, so the link is still unused.
    let bob = link("bob");
    let too_long = "a".repeat(MAX_DEVICE_NAME_CHARS + 1);
    match DeviceClient::enroll(&bob, &too_long, None) {
        Err(DeviceError::Profile(message)) => {
            assert!(
                message.contains("1 to 64 printable characters"),
                "{message}"
            )
        }
        other => panic!("65 characters accepted or wrongly refused: {other:?}"),
    }
    // A hidden character is refused the same way.
    assert!(matches!(
        DeviceClient::enroll(&bob, "phone\u{200B}", None),
        Err(DeviceError::Profile(_))
    ));
    let profile = DeviceClient::enroll(&bob, "bob's phone", None).unwrap();
    assert_eq!(profile.user, "bob");
}

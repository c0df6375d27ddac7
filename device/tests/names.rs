//! Issue 10 item 4: the device CLI applies the server's device-name rule
//! (`pushauth_proto::names`): 64 characters, not 100 bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use pushauth_device::{DeviceClient, DeviceError};
use pushauth_proto::names::MAX_DEVICE_NAME_CHARS;
use pushauth_testkit::TestServer;

#[test]
fn issue10_item4_device_name_rule_matches_server() {
    let server = TestServer::start();

    // 64 two-byte characters (128 bytes): the old 100-byte rule refused it; the server takes it.
    let long = "é".repeat(MAX_DEVICE_NAME_CHARS);
    assert_eq!(MAX_DEVICE_NAME_CHARS, 64);
    let profile = DeviceClient::enroll(&server.enrollment("alice", None).url, &long, None).unwrap();
    assert_eq!(profile.name, long);
    let listed = server
        .admin("GET", "/v1/admin/users/alice/devices", None)
        .ok();
    assert_eq!(listed.json["devices"][0]["name"], long.as_str());

    // 65 characters (65 bytes: the old rule took it, the server refuses it): refused before
    // anything is sent, with the server's own message, so the link is still unused.
    let bob = server.enrollment("bob", None).url;
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

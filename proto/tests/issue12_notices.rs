//! Issue 12: the generalised device notice keeps the `device_added` JSON older clients read,
//! and carries other kinds with optional fields.

use pushauth_proto::wire::{DeviceNotice, NOTICE_BACKUP_CODE_USED, NOTICE_DEVICE_ADDED};
use serde_json::json;

#[test]
fn issue12_device_added_json_is_unchanged() {
    let notice = DeviceNotice {
        kind: NOTICE_DEVICE_ADDED.into(),
        device_id: Some("d1".into()),
        device_name: Some("laptop".into()),
        at: "2026-01-02T03:04:05Z".into(),
        source: None,
        via: Some("admin".into()),
        context: Default::default(),
        count: None,
    };
    // Exactly the fields (and the nulls) a client from before issue 12 parses.
    assert_eq!(
        serde_json::to_value(&notice).unwrap(),
        json!({"kind": "device_added", "device_id": "d1", "device_name": "laptop",
               "at": "2026-01-02T03:04:05Z", "source": null, "via": "admin"})
    );
}

#[test]
fn issue12_other_kinds_round_trip_and_unknown_fields_are_ignored() {
    let text = json!({"kind": NOTICE_BACKUP_CODE_USED, "at": "2026-01-02T03:04:05Z",
        "context": {"service": "sshd", "host": "web1"}, "count": 9, "later_field": 1});
    let notice: DeviceNotice = serde_json::from_value(text).unwrap();
    assert_eq!(notice.kind, NOTICE_BACKUP_CODE_USED);
    assert_eq!(notice.device_id, None);
    assert_eq!(notice.source, None);
    assert_eq!(notice.context["host"], "web1");
    assert_eq!(notice.count, Some(9));
    let back = serde_json::to_value(&notice).unwrap();
    assert!(back.get("device_id").is_none());
    assert_eq!(back["count"], 9);
}

//! Issue 9 item 21: property tests for the JSON bodies of the v1 API ([`pushauth_proto::wire`]):
//! every request body pushauthd accepts, and the answers relying parties and devices parse.
//!
//! Properties: arbitrary bytes never panic and a refusal carries a message; valid generated bodies
//! round-trip (parse → serialize → parse → equal, each given field unchanged); near-misses of a
//! valid request body (a required field dropped, a field repeated, an unknown field, a wrong type,
//! a raw NUL or control character, invalid UTF-8, trailing garbage) are refused with a message
//! that names the problem; strings are kept exactly, hidden characters included (nothing is
//! silently normalised: the server's validation sees what was sent); a 64 KiB body is quick.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_proto::wire::{
    AuditList, ChallengeCreated, ChallengeStatus, CreateChallenge, CreateEnrollment,
    CreateRelyingParty, DeviceList, DeviceResponse, EnrollRequest, EnrollResponse,
    EnrollmentCreated, ErrorBody, PendingList, RelyingPartyCreated, WebhookNotification,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Field values people and programs send: plain, Unicode, hidden characters, quotes, escapes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,43}",
        "[ -~]{0,20}",
        "\\PC{0,10}",
        Just("a\u{202E}b\u{200B}c\u{FEFF}".to_owned()),
        Just("quote \" backslash \\ tab \t".to_owned()),
    ]
}

fn context_json() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("k[a-z0-9_.-]{0,11}", text(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect()))
}

fn maybe<T: Strategy>(s: T) -> impl Strategy<Value = Option<T::Value>> {
    prop::option::of(s)
}

fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect::<Map<_, _>>(),
    )
}

/// A request body type: its name, a valid body, the fields that must be present.
#[derive(Debug, Clone)]
struct Body {
    kind: &'static str,
    value: Value,
    required: &'static [&'static str],
}

fn create_challenge() -> impl Strategy<Value = Body> {
    (
        text(),
        maybe(prop::collection::vec(text(), 0..3)),
        maybe(context_json()),
        maybe(any::<bool>()),
        maybe(any::<u64>()),
        text(),
    )
        .prop_map(|(user, devices, context, code, ttl, nonce)| Body {
            kind: "CreateChallenge",
            value: object(vec![
                ("user", Some(json!(user))),
                ("devices", devices.map(|d| json!(d))),
                ("context", context),
                ("code", code.map(|c| json!(c))),
                ("ttl_secs", ttl.map(|t| json!(t))),
                ("rp_nonce", Some(json!(nonce))),
            ]),
            required: &["user", "rp_nonce"],
        })
}

fn enroll_request() -> impl Strategy<Value = Body> {
    (text(), text(), text(), text(), text()).prop_map(|(token, name, alg, key, proof)| Body {
        kind: "EnrollRequest",
        value: json!({"token": token, "name": name, "alg": alg, "public_key": key, "proof": proof}),
        required: &["token", "name", "alg", "public_key", "proof"],
    })
}

fn device_response() -> impl Strategy<Value = Body> {
    (
        prop::sample::select(vec!["approve", "deny", "report"]),
        maybe(text()),
        text(),
        text(),
    )
        .prop_map(|(decision, code, at, sig)| Body {
            kind: "DeviceResponse",
            value: object(vec![
                ("decision", Some(json!(decision))),
                ("code", code.map(|c| json!(c))),
                ("responded_at", Some(json!(at))),
                ("signature", Some(json!(sig))),
            ]),
            required: &["decision", "responded_at", "signature"],
        })
}

fn create_enrollment() -> impl Strategy<Value = Body> {
    (text(), maybe(any::<u64>())).prop_map(|(user, ttl)| Body {
        kind: "CreateEnrollment",
        value: object(vec![
            ("user", Some(json!(user))),
            ("ttl_secs", ttl.map(|t| json!(t))),
        ]),
        required: &["user"],
    })
}

fn create_relying_party() -> impl Strategy<Value = Body> {
    text().prop_map(|name| Body {
        kind: "CreateRelyingParty",
        value: json!({ "name": name }),
        required: &["name"],
    })
}

fn any_request() -> impl Strategy<Value = Body> {
    prop_oneof![
        create_challenge(),
        enroll_request(),
        device_response(),
        create_enrollment(),
        create_relying_party(),
    ]
}

/// Parses `bytes` as the body type `kind`; the result re-serialized, or the error message.
fn parse_as(kind: &str, bytes: &[u8]) -> Result<Value, String> {
    fn go<T: DeserializeOwned + Serialize + PartialEq + Debug>(
        bytes: &[u8],
    ) -> Result<Value, String> {
        let parsed: T = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        // Round trip: what was parsed serializes to a body that parses to the same value.
        let again = serde_json::to_vec(&parsed).map_err(|e| format!("serialize: {e}"))?;
        let reparsed: T = serde_json::from_slice(&again).map_err(|e| format!("reparse: {e}"))?;
        assert_eq!(reparsed, parsed, "round trip changed the value");
        serde_json::to_value(&parsed).map_err(|e| e.to_string())
    }
    match kind {
        "CreateChallenge" => go::<CreateChallenge>(bytes),
        "EnrollRequest" => go::<EnrollRequest>(bytes),
        "DeviceResponse" => go::<DeviceResponse>(bytes),
        "CreateEnrollment" => go::<CreateEnrollment>(bytes),
        "CreateRelyingParty" => go::<CreateRelyingParty>(bytes),
        "ChallengeCreated" => go::<ChallengeCreated>(bytes),
        "ChallengeStatus" => go::<ChallengeStatus>(bytes),
        "PendingList" => go::<PendingList>(bytes),
        "DeviceList" => go::<DeviceList>(bytes),
        "ErrorBody" => go::<ErrorBody>(bytes),
        "EnrollResponse" => go::<EnrollResponse>(bytes),
        "EnrollmentCreated" => go::<EnrollmentCreated>(bytes),
        "RelyingPartyCreated" => go::<RelyingPartyCreated>(bytes),
        "AuditList" => go::<AuditList>(bytes),
        "WebhookNotification" => go::<WebhookNotification>(bytes),
        other => panic!("unknown kind {other}"),
    }
}

const ALL_KINDS: &[&str] = &[
    "CreateChallenge",
    "EnrollRequest",
    "DeviceResponse",
    "CreateEnrollment",
    "CreateRelyingParty",
    "ChallengeCreated",
    "ChallengeStatus",
    "PendingList",
    "DeviceList",
    "ErrorBody",
    "EnrollResponse",
    "EnrollmentCreated",
    "RelyingPartyCreated",
    "AuditList",
    "WebhookNotification",
];

fn refused(kind: &str, bytes: &[u8], needle: &str) -> Result<(), TestCaseError> {
    match parse_as(kind, bytes) {
        Ok(v) => Err(TestCaseError::fail(format!(
            "{kind}: {:?} accepted as {v}",
            String::from_utf8_lossy(bytes)
        ))),
        Err(message) => {
            prop_assert!(
                message.contains(needle),
                "{}: {:?} refused with {:?}, expected {:?}",
                kind,
                String::from_utf8_lossy(bytes),
                message,
                needle
            );
            Ok(())
        }
    }
}

/// The body text with `"field": <raw>` added right after the opening brace.
fn with_raw_field(value: &Value, field: &str, raw: &str) -> String {
    let text = value.to_string();
    let rest = &text[1..];
    let sep = if rest == "}" { "" } else { "," };
    format!("{{\"{field}\":{raw}{sep}{rest}")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_wire_arbitrary_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "[{}\\[\\]\":,0-9a-z ]{0,80}".prop_map(String::into_bytes),
        ],
    ) {
        for kind in ALL_KINDS {
            if let Err(message) = parse_as(kind, &bytes) {
                prop_assert!(!message.is_empty());
            }
        }
    }

    #[test]
    fn issue9_item21_wire_valid_requests_round_trip(body in any_request()) {
        let bytes = serde_json::to_vec(&body.value).expect("json");
        let back = parse_as(body.kind, &bytes).map_err(TestCaseError::fail)?;
        for (field, given) in body.value.as_object().expect("object") {
            prop_assert_eq!(&back[field], given, "{}.{} changed", body.kind, field);
        }
    }

    #[test]
    fn issue9_item21_wire_dropped_required_field_is_named(body in any_request(), which in any::<prop::sample::Index>()) {
        let field = *which.get(body.required);
        let mut value = body.value.clone();
        value.as_object_mut().expect("object").remove(field);
        refused(body.kind, value.to_string().as_bytes(), &format!("missing field `{field}`"))?;
    }

    #[test]
    fn issue9_item21_wire_repeated_field_is_refused(body in any_request(), which in any::<prop::sample::Index>(), other in text()) {
        let fields: Vec<String> = body.value.as_object().expect("object").keys().cloned().collect();
        let field = which.get(&fields);
        // The same value again, or another one: either way the body is ambiguous.
        let again = body.value[field.as_str()].to_string();
        refused(body.kind, with_raw_field(&body.value, field, &again).as_bytes(), "duplicate field")?;
        if body.value[field.as_str()].is_string() && field != "decision" {
            let raw = json!(other).to_string();
            refused(body.kind, with_raw_field(&body.value, field, &raw).as_bytes(), "duplicate field")?;
        }
    }

    #[test]
    fn issue9_item21_wire_unknown_field_is_named(body in any_request(), name in "[a-z_]{1,12}") {
        prop_assume!(!body.value.as_object().expect("object").contains_key(&name));
        prop_assume!(!["user", "devices", "context", "code", "ttl_secs", "rp_nonce", "token", "name",
            "alg", "public_key", "proof", "decision", "responded_at", "signature"].contains(&name.as_str()));
        refused(body.kind, with_raw_field(&body.value, &name, "1").as_bytes(), &format!("unknown field `{name}`"))?;
    }

    #[test]
    fn issue9_item21_wire_wrong_type_is_refused(body in any_request(), which in any::<prop::sample::Index>()) {
        let fields: Vec<String> = body.value.as_object().expect("object").keys().cloned().collect();
        let field = which.get(&fields);
        let current = &body.value[field.as_str()];
        // A value of another JSON type than the field takes.
        let wrong = match current {
            Value::String(_) => json!(7),
            Value::Bool(b) => json!(b.to_string()),
            Value::Number(_) => json!("60"),
            Value::Array(_) | Value::Object(_) => json!("x"),
            Value::Null => json!(1),
        };
        let mut value = body.value.clone();
        value[field.as_str()] = wrong;
        // serde_json words a non-string where a word of a closed set belongs "expected value".
        let needle = if field == "decision" { "expected value" } else { "invalid type" };
        refused(body.kind, value.to_string().as_bytes(), needle)?;
        if current.is_number() {
            value[field.as_str()] = json!(-1);
            refused(body.kind, value.to_string().as_bytes(), "invalid value")?;
            value[field.as_str()] = json!(1.5);
            refused(body.kind, value.to_string().as_bytes(), "invalid type")?;
        }
    }

    #[test]
    fn issue9_item21_wire_raw_control_characters_and_bad_utf8_are_refused(
        body in any_request(),
        control in prop::sample::select(vec!['\u{0}', '\u{1}', '\u{8}', '\n', '\r', '\t', '\u{1B}', '\u{1F}']),
        garbage in prop::sample::select(vec!["x", "}", "]", ",", "{}", "\u{0}", "\u{FEFF}", "\"", "null"]),
    ) {
        let field = body.required[0];
        prop_assume!(body.value[field].is_string());
        let text = body.value.to_string();
        let marker = format!("\"{field}\":\"");
        let with_control = text.replacen(&marker, &format!("{marker}{control}"), 1);
        refused(body.kind, with_control.as_bytes(), "control character")?;

        let mut bad_utf8 = text.replacen(&marker, &format!("{marker}\u{1}"), 1).into_bytes();
        let at = bad_utf8.iter().position(|&b| b == 1).expect("marker");
        bad_utf8[at] = 0xC3; // a lead byte followed by '"': not UTF-8
        prop_assert!(parse_as(body.kind, &bad_utf8).is_err());

        refused(body.kind, format!("{text}{garbage}").as_bytes(), "trailing")?;
        // A byte-order mark before the body is not JSON either.
        let with_bom = format!("\u{FEFF}{text}");
        prop_assert!(parse_as(body.kind, with_bom.as_bytes()).is_err());
    }

    /// Hidden characters are kept exactly (escaped or raw), never dropped or normalised: the
    /// server's validation must see what was sent.
    #[test]
    fn issue9_item21_wire_strings_are_kept_exactly(
        body in any_request(),
        hidden in prop::sample::select(vec!['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2066}', '\u{00AD}', '\u{0}', '\u{1B}']),
        escaped in any::<bool>(),
    ) {
        let field = body.required[0];
        // (DeviceResponse's first field is the decision, a closed set of words.)
        prop_assume!(body.value[field].is_string() && body.kind != "DeviceResponse");
        let original = body.value[field].as_str().expect("string").to_owned();
        let expected = format!("{hidden}{original}");
        let marker = format!("\"{field}\":\"");
        let insert = if escaped || hidden.is_control() {
            format!("\\u{:04x}", u32::from(hidden))
        } else {
            hidden.to_string()
        };
        let text = body.value.to_string().replacen(&marker, &format!("{marker}{insert}"), 1);
        let back = parse_as(body.kind, text.as_bytes()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(back[field].as_str(), Some(expected.as_str()));
    }

    #[test]
    fn issue9_item21_wire_answers_round_trip(
        id in "[A-Za-z0-9_-]{22}",
        state in prop::sample::select(vec!["pending", "acknowledged", "approved", "denied", "expired", "cancelled"]),
        decision in maybe(prop::sample::select(vec!["approve", "deny", "report"])),
        reason in maybe(prop::sample::select(vec!["denied", "reported", "code_mismatch"])),
        typed in maybe("[0-9]{2}"),
        message in text(),
        code in prop::sample::select(vec!["malformed_request", "unauthorized", "no_device", "user_locked", "internal"]),
    ) {
        let status = object(vec![
            ("id", Some(json!(id))),
            ("state", Some(json!(state))),
            ("expires_at", Some(json!("2026-01-01T00:00:00Z"))),
            ("decision", decision.map(|d| json!(d))),
            ("reason", reason.map(|r| json!(r))),
            ("typed_code", typed.map(|t| json!(t))),
        ]);
        let back = parse_as("ChallengeStatus", status.to_string().as_bytes()).map_err(TestCaseError::fail)?;
        for (field, given) in status.as_object().expect("object") {
            prop_assert_eq!(&back[field], given);
        }
        let mut bad_state = status.clone();
        bad_state["state"] = json!(format!("{state}\u{200B}"));
        refused("ChallengeStatus", bad_state.to_string().as_bytes(), "unknown variant")?;

        let error = json!({"error": code, "message": message});
        let back = parse_as("ErrorBody", error.to_string().as_bytes()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(back, error);
        let mut bad_code = json!({"error": code.to_uppercase(), "message": "m"});
        refused("ErrorBody", bad_code.to_string().as_bytes(), "unknown variant")?;
        bad_code["error"] = json!(7);
        refused("ErrorBody", bad_code.to_string().as_bytes(), "expected value")?;
    }
}

#[test]
fn issue9_item21_wire_64k_bodies_are_handled_quickly() {
    let started = Instant::now();
    let long = "x".repeat(64 * 1024);
    let body = json!({"user": long, "rp_nonce": "n"}).to_string();
    assert!(parse_as("CreateChallenge", body.as_bytes()).is_ok());
    let deep = format!("{}{}", "[".repeat(32 * 1024), "]".repeat(32 * 1024));
    let wide = format!("[{}0]", "0,".repeat(32 * 1024 - 1));
    let hidden = format!("{{\"user\":\"{}\"}}", "\\u202e".repeat(64 * 1024 / 6));
    for text in [&deep, &wide, &"{".repeat(64 * 1024)] {
        for kind in ALL_KINDS {
            assert!(parse_as(kind, text.as_bytes()).is_err(), "{kind}");
        }
    }
    let user = parse_as("CreateEnrollment", hidden.as_bytes()).expect("parses");
    assert_eq!(
        user["user"].as_str().map(|u| u.chars().count()),
        Some(64 * 1024 / 6)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

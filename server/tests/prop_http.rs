//! Issue 9 item 21: property tests for what pushauthd parses from the network, through a running
//! server on 127.0.0.1: every JSON request body (through `parse_json` and the handlers' checks)
//! and the device `Authorization: PushAuth …` and relying-party `Bearer` headers.
//!
//! Properties: arbitrary bytes or near-miss JSON as any body never get a 5xx or a dropped
//! connection: a refusal is a 4xx whose body is the stable `{"error","message"}` with a message
//! and the status of its code, and a success only for a body that is a valid request of its type;
//! an arbitrary or mangled `Authorization` header never gets anything but 401 (a valid signed
//! header with one character changed included); `parse_json` refuses with `malformed_request`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::{Device, Srv};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::wire::{
    CreateChallenge, CreateEnrollment, CreateRelyingParty, DeviceResponse, EnrollRequest,
    ErrorBody, ErrorCode,
};
use pushauth_server::api::parse_json;
use serde_json::{json, Value};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    if let Err(err) = runner(cases).run(&strategy, test) {
        panic!("{err}");
    }
}

/// A refusal is a well-formed error body with a message and the status of its code.
fn assert_error_body(r: &common::Resp) -> Result<ErrorCode, TestCaseError> {
    prop_assert!(
        (400..500).contains(&r.status),
        "status {}: {}",
        r.status,
        r.text
    );
    let body: ErrorBody = serde_json::from_str(&r.text)
        .map_err(|e| TestCaseError::fail(format!("not an error body ({e}): {}", r.text)))?;
    prop_assert!(!body.message.is_empty());
    prop_assert_eq!(body.error.status(), r.status);
    Ok(body.error)
}

/// Bodies: arbitrary bytes, JSON-ish text, and near-misses of a valid body of the route's type.
fn bodies(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    let fields: Vec<String> = valid
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let base = valid.to_string();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "[{}\\[\\]\":,0-9a-z_ \\\\]{0,80}".prop_map(String::into_bytes),
        (
            prop::sample::select(fields),
            prop::sample::select(vec![
                json!(null),
                json!(7),
                json!(-1),
                json!("x"),
                json!([]),
                json!({}),
                json!("\u{202E}\u{200B}\u{FEFF}"),
                json!("a".repeat(70_000)),
            ]),
            0usize..4,
        )
            .prop_map(move |(field, replacement, how)| {
                let mut value = valid.clone();
                match how {
                    0 => {
                        value[field.as_str()] = replacement;
                        value.to_string().into_bytes()
                    }
                    1 => {
                        if let Some(o) = value.as_object_mut() {
                            o.remove(&field);
                        }
                        value.to_string().into_bytes()
                    }
                    2 => format!("{{\"{field}\":{replacement},{}", &base[1..]).into_bytes(),
                    _ => format!("{base}{replacement}").into_bytes(),
                }
            }),
    ]
}

fn assert_route_answers(
    srv: &Srv,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
    valid: impl Fn(&[u8]) -> bool,
) -> Result<(), TestCaseError> {
    let r = srv.call("POST", path, auth, Some(body));
    if (200..300).contains(&r.status) {
        prop_assert!(
            valid(body),
            "{} accepted {:?}",
            path,
            String::from_utf8_lossy(body)
        );
    } else {
        assert_error_body(&r)?;
    }
    Ok(())
}

fn is<T: serde::de::DeserializeOwned>(body: &[u8]) -> bool {
    serde_json::from_slice::<T>(body).is_ok()
}

#[test]
fn issue9_item21_server_http_json_bodies_never_fail_the_server() {
    let srv = common::start();
    let key = srv.rp_key();
    let rp = format!("Bearer {key}");
    let admin = format!("Bearer {}", common::ADMIN);
    let nonce = pushauth_proto::b64::encode([5u8; 32]);
    let challenge = json!({"user": "alice", "context": {"service": "sshd"}, "rp_nonce": nonce});
    run(64, bodies(challenge), |body| {
        assert_route_answers(
            &srv,
            "/v1/challenges",
            Some(&rp),
            &body,
            is::<CreateChallenge>,
        )
    });
    let enroll =
        json!({"token": "t", "name": "n", "alg": "ed25519", "public_key": "k", "proof": "p"});
    run(64, bodies(enroll), |body| {
        // No body is a valid enrollment here (no token exists): every answer is a refusal.
        assert_route_answers(&srv, "/v1/device/enroll", None, &body, |_| false)
    });
    run(64, bodies(json!({"user": "bob", "ttl_secs": 60})), |body| {
        assert_route_answers(
            &srv,
            "/v1/admin/enrollments",
            Some(&admin),
            &body,
            is::<CreateEnrollment>,
        )
    });
    run(64, bodies(json!({"name": "rp"})), |body| {
        assert_route_answers(
            &srv,
            "/v1/admin/relying-parties",
            Some(&admin),
            &body,
            is::<CreateRelyingParty>,
        )
    });
    // A signed device request whose body is the answer: the signature is good, so the body is
    // what gets parsed.
    let device = srv.device("carol");
    let c = srv.challenge(&key, "carol");
    let answer: Value =
        serde_json::from_slice(&device.answer_body(&c, pushauth_proto::Decision::Deny, ""))
            .expect("json");
    let path = format!("/v1/device/challenges/{}/response", c.id);
    run(64, bodies(answer), |body| {
        let header = device.header("POST", &path, &body, common::now_secs());
        let r = srv.call("POST", &path, Some(&header), Some(&body));
        if (200..300).contains(&r.status) {
            // Only an answer that means the same as the signed one (e.g. without `"code": ""`,
            // its default) is taken, once.
            prop_assert!(
                is::<DeviceResponse>(&body),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
            return Ok(());
        }
        let code = assert_error_body(&r)?;
        if !is::<DeviceResponse>(&body) {
            prop_assert!(
                matches!(
                    code,
                    ErrorCode::MalformedRequest | ErrorCode::PayloadTooLarge
                ),
                "{}",
                r.text
            );
        }
        Ok(())
    });
}

/// Visible ASCII (what an HTTP header value can carry), around the shape of the real header.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~\t]{0,200}",
        "PushAuth [ -~]{0,120}",
        "PushAuth (device|ts|nonce|sig|x)=\"[A-Za-z0-9_ -]{0,20}\"(, ?(device|ts|nonce|sig|x)=\"[A-Za-z0-9_-]{0,20}\"){0,5}",
        "Bearer [ -~]{0,80}",
    ]
}

#[test]
fn issue9_item21_server_http_authorization_headers_never_let_in() {
    let srv = common::start();
    let device: Device = srv.device("dave");
    run(128, header_text(), |header| {
        let r = srv.call("GET", "/v1/device/challenges", Some(&header), None);
        prop_assert_eq!(r.status, 401, "{:?}: {}", header, r.text);
        assert_error_body(&r)?;
        let r = srv.call("GET", "/v1/users/dave/devices", Some(&header), None);
        prop_assert_eq!(r.status, 401, "{:?}: {}", header, r.text);
        assert_error_body(&r)?;
        Ok(())
    });
    // A freshly signed header with one character changed, added or removed: always 401.
    let mangle = (
        any::<prop::sample::Index>(),
        0usize..3,
        prop::sample::select(vec!['A', 'z', '0', '-', '_', '"', ',', '=', ' ']),
    );
    run(128, mangle, |(position, how, c)| {
        let path = "/v1/device/challenges";
        let header = device.header("GET", path, b"", common::now_secs());
        let chars: Vec<char> = header.chars().collect();
        let at = position.index(chars.len());
        let mut mangled: Vec<char> = chars.clone();
        match how {
            0 => mangled[at] = c,
            1 => mangled.insert(at, c),
            _ => {
                mangled.remove(at);
            }
        }
        let mangled: String = mangled.into_iter().collect();
        // HTTP drops whitespace around a header's value (RFC 9110, 5.5), as the server does.
        let parsed = DeviceAuth::parse(mangled.trim_matches(' '));
        let original = DeviceAuth::parse(&header).expect("valid");
        // Only a change that leaves every value the same (a space after a comma, or around
        // the whole value) may pass.
        prop_assume!(parsed.as_ref().ok() != Some(&original));
        let r = srv.call("GET", path, Some(&mangled), None);
        prop_assert_eq!(r.status, 401, "{:?}: {}", mangled, r.text);
        assert_error_body(&r)?;
        Ok(())
    });
}

#[test]
fn issue9_item21_server_parse_json_refuses_with_malformed_request() {
    run(256, prop::collection::vec(any::<u8>(), 0..200), |bytes| {
        fn check<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
            if let Err(err) = parse_json::<T>(bytes) {
                prop_assert_eq!(err.code, ErrorCode::MalformedRequest);
                prop_assert!(err.message.starts_with("bad JSON body: ") && err.message.len() > 15);
            }
            Ok(())
        }
        check::<CreateChallenge>(&bytes)?;
        check::<EnrollRequest>(&bytes)?;
        check::<DeviceResponse>(&bytes)?;
        check::<CreateEnrollment>(&bytes)?;
        check::<CreateRelyingParty>(&bytes)
    });
}

/// A user, device or relying-party name with a hidden character (bidi, zero-width, BOM…) reads
/// as another name: `alice\u{200B}` would be a second "alice" without her pinned keys. Refused.
#[test]
fn issue9_item21_server_http_names_with_hidden_characters_are_refused() {
    let srv = common::start();
    let admin = format!("Bearer {}", common::ADMIN);
    let names = (
        "[a-z]{0,6}",
        prop::sample::select(vec![
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{00AD}', '\u{2028}',
            '\u{E000}',
        ]),
        "[a-z]{0,6}",
    )
        .prop_map(|(a, c, b)| format!("{a}{c}{b}"));
    run(32, names, |name| {
        let body = serde_json::to_vec(&json!({ "user": name })).expect("json");
        let r = srv.call("POST", "/v1/admin/enrollments", Some(&admin), Some(&body));
        prop_assert_eq!(r.status, 400, "{:?}: {}", name, r.text);
        prop_assert_eq!(assert_error_body(&r)?, ErrorCode::MalformedRequest);
        let body = serde_json::to_vec(&json!({ "name": name })).expect("json");
        let r = srv.call(
            "POST",
            "/v1/admin/relying-parties",
            Some(&admin),
            Some(&body),
        );
        prop_assert_eq!(r.status, 400, "{:?}: {}", name, r.text);
        let token = srv.enrollment("erin", None);
        let key = pushauth_proto::DeviceSigningKey::from_seed(&[3u8; 32]);
        let body = common::enroll_body(&token, &key, &name);
        let r = srv.call("POST", "/v1/device/enroll", None, Some(&body));
        prop_assert_eq!(r.status, 400, "{:?}: {}", name, r.text);
        Ok(())
    });
}

/// Query strings (`wait`, `limit`, `user`) and path segments as sent: arbitrary text is a 400
/// (or a 404 for an unknown id), never a 5xx; numbers out of range are refused or clamped.
#[test]
fn issue9_item21_server_http_query_strings_and_paths_never_fail_the_server() {
    let srv = common::start();
    let key = srv.rp_key();
    let rp = format!("Bearer {key}");
    let admin = format!("Bearer {}", common::ADMIN);
    let device = srv.device("frank");
    let value = prop_oneof![
        "[0-9]{1,25}",
        "-[0-9]{1,3}",
        "[ -~]{0,12}",
        Just("%FF%FE".to_owned()),
        Just("%00".to_owned()),
        Just("1e3".to_owned()),
        Just("0x10".to_owned()),
    ];
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'%' || b == b'-' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    run(48, (value, "[A-Za-z0-9_%.-]{1,30}"), |(v, segment)| {
        let q = encode(&v);
        let checks = [
            srv.call(
                "GET",
                &format!("/v1/admin/audit?limit={q}"),
                Some(&admin),
                None,
            ),
            srv.call(
                "GET",
                &format!("/v1/admin/audit?user={q}&limit=1"),
                Some(&admin),
                None,
            ),
            srv.call(
                "GET",
                &format!("/v1/challenges/{segment}?wait={q}"),
                Some(&rp),
                None,
            ),
            srv.call(
                "GET",
                &format!("/v1/users/{segment}/devices"),
                Some(&rp),
                None,
            ),
            srv.call(
                "DELETE",
                &format!("/v1/challenges/{segment}"),
                Some(&rp),
                None,
            ),
        ];
        for r in &checks {
            prop_assert!(r.status < 500, "{}: {}", r.status, r.text);
            if r.status >= 400 {
                assert_error_body(r)?;
            }
        }
        // wait=… on the device's long-poll: only whole numbers, clamped to 30 s; use 0 to not wait.
        let number = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        if !number || v.trim_start_matches('0').is_empty() {
            let path = format!("/v1/device/challenges?wait={q}");
            let r = device.send(&srv, "GET", &path, b"");
            prop_assert!(r.status < 500, "{}: {}", r.status, r.text);
            if number {
                prop_assert_eq!(r.status, 200, "{}", r.text);
            } else {
                prop_assert_eq!(r.status, 400, "{:?}: {}", v, r.text);
                prop_assert_eq!(assert_error_body(&r)?, ErrorCode::MalformedRequest);
            }
        }
        Ok(())
    });
}

//! Issue 10 item 5: `wire-fixtures.json` fixes the shim API's JSON the way `test-vectors.json`
//! fixes the result token's signed bytes. The file holds one example of every request and
//! response body and every error body, as the real types of `pushauth_idp_sidecar::wire`
//! serialize them; the Java shim's tests (`keycloak/…/WireFixturesTest.java`) parse it as they
//! parse real answers.
//!
//! After a deliberate change to the wire types, regenerate the file with
//! `PUSHAUTH_BLESS=1 cargo test -p pushauth-idp-sidecar --test wire_fixtures` and review the diff:
//! every change there is a change of the shim API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::collections::{BTreeMap, BTreeSet};

use pushauth_idp_sidecar::result_token::{ResultFields, ResultSigner};
use pushauth_idp_sidecar::wire::{
    BackupCodeVerified, BackupCodesState, BackupCodesView, ChannelRequest, CibaCallback,
    CibaStatus, DeviceList, DeviceListItem, DeviceSummary, DeviceView, EnrollmentState,
    EnrollmentView, Health, LoginOutcome, LoginView, PublicKeyView, RemovedDevice,
    StartBackupCodes, StartEnrollment, StartLogin, VerifyBackupCode,
};
use pushauth_idp_sidecar::{ApiError, ErrorCode};
use pushauth_proto::DeviceSigningKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wire-fixtures.json");
/// The seed of `test-vectors.json`, so the Java tests can verify the fixture's result tokens.
const SEED: [u8; 32] = [0x5a; 32];
const EXPIRES: &str = "2030-03-17T17:46:40Z";

/// One example body: its name, route, status and the typed value's own serialization.
struct Example {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    status: u16,
    compact: String,
}

fn example<T: Serialize>(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    status: u16,
    body: &T,
) -> Example {
    Example {
        name,
        method,
        path,
        status,
        compact: serde_json::to_string(body).expect("serialize"),
    }
}

fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn requests() -> Vec<Example> {
    vec![
        example(
            "start_login",
            "POST",
            "/v1/logins",
            0,
            &StartLogin {
                realm: "demo".into(),
                username: "alice".into(),
                nonce: "bm9uY2Utb25lLWZvci1sb2dpbi0xMjM0NTY3ODkwYWJj".into(),
                session: Some("c2Vzc2lvbi1kaWdlc3QtMDEyMzQ1Njc4OQ".into()),
                context: context(&[("client", "account-console"), ("ip", "192.0.2.7")]),
            },
        ),
        example(
            "start_enrollment",
            "POST",
            "/v1/enrollments",
            0,
            &StartEnrollment {
                realm: "demo".into(),
                username: "alice".into(),
                device_name: Some("Alice's phone".into()),
                session: Some("c2Vzc2lvbi1kaWdlc3QtMDEyMzQ1Njc4OQ".into()),
                context: context(&[("client", "account-console")]),
                backup_code: None,
            },
        ),
        example(
            "ciba_authentication_request",
            "POST",
            "/ciba/{key}",
            0,
            &ChannelRequest {
                login_hint: "alice".into(),
                binding_message: Some("Pay 10 EUR to Bob".into()),
                scope: Some("openid".into()),
            },
        ),
        example(
            "ciba_callback",
            "POST",
            "{keycloak}/realms/{realm}/protocol/openid-connect/ext/ciba/auth/callback",
            0,
            &CibaCallback {
                status: CibaStatus::Succeed,
            },
        ),
        example(
            "verify_backup_code",
            "POST",
            "/v1/backup-codes/verify",
            0,
            &VerifyBackupCode {
                realm: "demo".into(),
                username: "alice".into(),
                code: "7KQM-W3XA-9HRT-4FNC".into(),
                nonce: "bm9uY2Utb25lLWZvci1sb2dpbi0xMjM0NTY3ODkwYWJj".into(),
                session: Some("c2Vzc2lvbi1kaWdlc3QtMDEyMzQ1Njc4OQ".into()),
                context: context(&[("client", "app"), ("ip", "192.0.2.7")]),
            },
        ),
        example(
            "start_backup_codes",
            "POST",
            "/v1/backup-codes",
            0,
            &StartBackupCodes {
                realm: "demo".into(),
                username: "alice".into(),
                session: Some("c2Vzc2lvbi1kaWdlc3QtMDEyMzQ1Njc4OQ".into()),
                context: context(&[("client", "account-console")]),
            },
        ),
        example(
            "start_enrollment_with_backup_code",
            "POST",
            "/v1/enrollments",
            0,
            &StartEnrollment {
                realm: "demo".into(),
                username: "alice".into(),
                device_name: None,
                session: Some("c2Vzc2lvbi1kaWdlc3QtMDEyMzQ1Njc4OQ".into()),
                context: context(&[("client", "app")]),
                backup_code: Some("7KQM-W3XA-9HRT-4FNC".into()),
            },
        ),
    ]
}

fn backup_codes(state: BackupCodesState) -> BackupCodesView {
    BackupCodesView {
        code: None,
        codes: None,
        devices: None,
        expires_at: None,
        id: "YmFja3VwLWNvZGVzLTAxMjM0NTY3".into(),
        outcome: None,
        state,
        user: "demo/alice".into(),
    }
}

fn login(state: LoginOutcome) -> LoginView {
    LoginView {
        code: Some("402913".into()),
        device_id: None,
        device_name: None,
        devices: vec![DeviceView {
            id: "ZGV2aWNlLWFsaWNlLTE".into(),
            name: "Alice's phone".into(),
        }],
        expires_at: EXPIRES.into(),
        id: "Q2hhbGxlbmdlSWQxMjM0NQ".into(),
        message: None,
        result: None,
        state,
        user: "demo/alice".into(),
    }
}

/// A login that ended with `outcome`, with its result token and answering device.
fn ended(outcome: LoginOutcome, device: Option<&str>, name: Option<&str>) -> LoginView {
    let mut view = login(outcome);
    view.device_id = Some(device.map(str::to_owned));
    view.device_name = Some(name.map(str::to_owned));
    view.result = Some(token(&view));
    view
}

fn token(view: &LoginView) -> pushauth_idp_sidecar::ResultToken {
    ResultSigner::new(DeviceSigningKey::from_seed(&SEED)).sign(&ResultFields {
        challenge_id: &view.id,
        user: &view.user,
        nonce: "bm9uY2Utb25lLWZvci1sb2dpbi0xMjM0NTY3ODkwYWJj",
        outcome: view.state.as_str(),
        expires_at: 1_900_000_000,
    })
}

fn enrollment(state: EnrollmentState) -> EnrollmentView {
    EnrollmentView {
        code: None,
        device: None,
        devices: None,
        expires_at: None,
        id: "ZW5yb2xsbWVudC0wMTIzNDU2Nzg5".into(),
        outcome: None,
        qr_svg: None,
        replacement: None,
        state,
        url: None,
        user: "demo/alice".into(),
    }
}

fn responses() -> Vec<Example> {
    let device = DeviceSummary {
        created_at: "2030-03-17T17:40:00Z".into(),
        id: "ZGV2aWNlLWFsaWNlLTI".into(),
        name: "Alice's tablet".into(),
    };
    let mut failed = login(LoginOutcome::Error);
    failed.message = Some("the push could not be completed; the login fails closed".into());
    failed.result = Some(token(&failed));
    let approval = EnrollmentView {
        code: Some(Some("715204".into())),
        devices: Some(vec!["Alice's phone".into()]),
        expires_at: Some(EXPIRES.into()),
        ..enrollment(EnrollmentState::ApprovalPending)
    };
    let refused = EnrollmentView {
        outcome: Some(LoginOutcome::Denied),
        ..enrollment(EnrollmentState::ApprovalRefused)
    };
    let link = EnrollmentView {
        expires_at: Some(EXPIRES.into()),
        qr_svg: Some("<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".into()),
        url: Some("https://push.example.com/enroll?token=ZW5yb2xsLXRva2Vu".into()),
        ..enrollment(EnrollmentState::Pending)
    };
    let enrolled = EnrollmentView {
        device: Some(device.clone()),
        ..enrollment(EnrollmentState::Enrolled)
    };
    let link_for_code = EnrollmentView {
        replacement: Some("R2D5-PX8M-QW4K-NH7C".into()),
        ..link.clone()
    };
    let verified_id = "backup-YmFja3VwLXVzZS0wMTIz";
    let verified = BackupCodeVerified {
        id: verified_id.into(),
        remaining: 9,
        replacement: "R2D5-PX8M-QW4K-NH7C".into(),
        result: ResultSigner::new(DeviceSigningKey::from_seed(&SEED)).sign(&ResultFields {
            challenge_id: verified_id,
            user: "demo/alice",
            nonce: "bm9uY2Utb25lLWZvci1sb2dpbi0xMjM0NTY3ODkwYWJj",
            outcome: "backup_code",
            expires_at: 1_900_000_000,
        }),
        user: "demo/alice".into(),
    };
    let issuing = BackupCodesView {
        code: Some(Some("380416".into())),
        devices: Some(vec!["Alice's phone".into()]),
        expires_at: Some(EXPIRES.into()),
        ..backup_codes(BackupCodesState::ApprovalPending)
    };
    let issue_refused = BackupCodesView {
        outcome: Some(LoginOutcome::Denied),
        ..backup_codes(BackupCodesState::ApprovalRefused)
    };
    let issued = BackupCodesView {
        codes: Some(vec![
            "7KQM-W3XA-9HRT-4FNC".into(),
            "MX4P-2TQW-KH9R-C7NA".into(),
        ]),
        ..backup_codes(BackupCodesState::Issued)
    };
    let logins = "/v1/logins/{id}";
    let enrollments = "/v1/enrollments/{id}";
    let devices = "/v1/realms/{realm}/users/{username}/devices";
    vec![
        example(
            "health",
            "GET",
            "/healthz",
            200,
            &Health {
                logins: 3,
                status: "ok",
            },
        ),
        example(
            "public_key",
            "GET",
            "/v1/public-key",
            200,
            &PublicKeyView {
                alg: "ed25519",
                public_key: DeviceSigningKey::from_seed(&SEED).public_key().to_b64(),
            },
        ),
        example(
            "login_started",
            "POST",
            "/v1/logins",
            201,
            &login(LoginOutcome::Pending),
        ),
        example(
            "login_pending",
            "GET",
            logins,
            200,
            &login(LoginOutcome::Pending),
        ),
        example(
            "login_approved",
            "GET",
            logins,
            200,
            &ended(
                LoginOutcome::Approved,
                Some("ZGV2aWNlLWFsaWNlLTE"),
                Some("Alice's phone"),
            ),
        ),
        example(
            "login_denied",
            "GET",
            logins,
            200,
            &ended(LoginOutcome::Denied, Some("ZGV2aWNlLWFsaWNlLTE"), None),
        ),
        example(
            "login_reported",
            "GET",
            logins,
            200,
            &ended(LoginOutcome::Reported, Some("ZGV2aWNlLWFsaWNlLTE"), None),
        ),
        example(
            "login_code_mismatch",
            "GET",
            logins,
            200,
            &ended(
                LoginOutcome::CodeMismatch,
                Some("ZGV2aWNlLWFsaWNlLTE"),
                None,
            ),
        ),
        example(
            "login_expired",
            "GET",
            logins,
            200,
            &ended(LoginOutcome::Expired, None, None),
        ),
        example("login_failed", "GET", logins, 200, &failed),
        example(
            "login_cancelled",
            "DELETE",
            logins,
            200,
            &ended(LoginOutcome::Cancelled, None, None),
        ),
        example(
            "enrollment_approval_pending",
            "POST",
            "/v1/enrollments",
            201,
            &approval,
        ),
        example(
            "enrollment_approval_refused",
            "GET",
            enrollments,
            200,
            &refused,
        ),
        example("enrollment_link_pending", "GET", enrollments, 200, &link),
        example("enrollment_enrolled", "GET", enrollments, 200, &enrolled),
        example(
            "enrollment_expired",
            "GET",
            enrollments,
            200,
            &enrollment(EnrollmentState::Expired),
        ),
        example(
            "enrollment_link_for_backup_code",
            "POST",
            "/v1/enrollments",
            201,
            &link_for_code,
        ),
        example(
            "backup_code_verified",
            "POST",
            "/v1/backup-codes/verify",
            200,
            &verified,
        ),
        example(
            "backup_codes_approval_pending",
            "POST",
            "/v1/backup-codes",
            201,
            &issuing,
        ),
        example(
            "backup_codes_approval_refused",
            "GET",
            "/v1/backup-codes/{id}",
            200,
            &issue_refused,
        ),
        example(
            "backup_codes_issued",
            "GET",
            "/v1/backup-codes/{id}",
            200,
            &issued,
        ),
        example(
            "devices",
            "GET",
            devices,
            200,
            &DeviceList {
                devices: vec![
                    DeviceListItem {
                        created_at: "2030-03-01T09:00:00Z".into(),
                        id: "ZGV2aWNlLWFsaWNlLTE".into(),
                        last_seen_at: Some("2030-03-17T17:45:00Z".into()),
                        name: "Alice's phone".into(),
                    },
                    DeviceListItem {
                        created_at: "2030-03-17T17:40:00Z".into(),
                        id: "ZGV2aWNlLWFsaWNlLTI".into(),
                        last_seen_at: None,
                        name: "Alice's tablet".into(),
                    },
                ],
                user: "demo/alice".into(),
            },
        ),
        example(
            "device_removed",
            "DELETE",
            "/v1/realms/{realm}/users/{username}/devices/{id}",
            200,
            &RemovedDevice { device },
        ),
    ]
}

fn errors() -> Vec<Example> {
    ErrorCode::ALL
        .iter()
        .map(|code| {
            let error = ApiError::new(*code, format!("what went wrong ({code}) and what to do"));
            example("error", "", "", error.status, &error.body())
        })
        .collect()
}

fn section(examples: &[Example], with_route: bool) -> Value {
    examples
        .iter()
        .map(|e| {
            let body: Value = serde_json::from_str(&e.compact).expect("json");
            if with_route {
                json!({"name": e.name, "method": e.method, "path": e.path, "status": e.status, "body": body})
            } else if e.status == 0 {
                json!({"name": e.name, "method": e.method, "path": e.path, "body": body})
            } else {
                json!({"status": e.status, "body": body})
            }
        })
        .collect()
}

fn document() -> Value {
    json!({
        "about": "pushauth IdP sidecar shim API: one example of every request and response body and every error body (code and status), as the Rust types in idp-sidecar/src/wire.rs serialize them. Checked by idp-sidecar/tests/wire_fixtures.rs, read by keycloak/src/test/java/org/pushauth/keycloak/WireFixturesTest.java. Result tokens are signed with the seed of test-vectors.json.",
        "requests": section(&requests(), false),
        "responses": section(&responses(), true),
        "errors": section(&errors(), false),
    })
}

fn render() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("render");
    text.push('\n');
    text
}

/// Parses `compact` as `T`, so every request example is one the sidecar accepts.
fn parses_as<T: DeserializeOwned + Serialize>(compact: &str) -> String {
    let typed: T = serde_json::from_str(compact).expect("request example parses");
    serde_json::to_string(&typed).expect("serialize")
}

#[test]
fn issue10_item5_wire_fixtures_match_types() {
    let expected = render();
    if std::env::var_os("PUSHAUTH_BLESS").is_some() {
        std::fs::write(FIXTURE, &expected).expect("write wire-fixtures.json");
    }
    let on_disk = std::fs::read_to_string(FIXTURE).expect("read wire-fixtures.json");
    assert!(
        on_disk == expected,
        "wire-fixtures.json differs from what the wire types serialize to; if the change is \
         meant, regenerate it with PUSHAUTH_BLESS=1 cargo test -p pushauth-idp-sidecar --test \
         wire_fixtures and review the diff"
    );

    // Each body the sidecar writes has the bytes of the sorted map it used to build by hand: the
    // field order on the wire has not changed. (Requests are only read; order is free there.)
    for e in responses().iter().chain(&errors()).chain(&requests()[3..4]) {
        let sorted: Value = serde_json::from_str(&e.compact).expect("json");
        assert_eq!(
            sorted.to_string(),
            e.compact,
            "{} fields out of order",
            e.name
        );
    }

    // Request examples are bodies the sidecar takes.
    let requests = requests();
    assert_eq!(
        parses_as::<StartLogin>(&requests[0].compact),
        requests[0].compact
    );
    assert_eq!(
        parses_as::<StartEnrollment>(&requests[1].compact),
        requests[1].compact
    );
    assert_eq!(
        parses_as::<ChannelRequest>(&requests[2].compact),
        requests[2].compact
    );
    assert_eq!(
        parses_as::<CibaCallback>(&requests[3].compact),
        requests[3].compact
    );
    assert_eq!(
        parses_as::<VerifyBackupCode>(&requests[4].compact),
        requests[4].compact
    );
    assert_eq!(
        parses_as::<StartBackupCodes>(&requests[5].compact),
        requests[5].compact
    );
    assert_eq!(
        parses_as::<StartEnrollment>(&requests[6].compact),
        requests[6].compact
    );

    // From the file alone: every error code, each with its status and nothing else.
    let doc: Value = serde_json::from_str(&on_disk).expect("fixture is JSON");
    let listed: BTreeMap<String, u64> = doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            let body = e["body"].as_object().expect("error body");
            assert_eq!(body.len(), 2, "{e}");
            assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{e}");
            (
                body["error"].as_str().expect("code").to_owned(),
                e["status"].as_u64().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        listed.len(),
        ErrorCode::ALL.len(),
        "an error code is listed twice"
    );
    for code in ErrorCode::ALL {
        assert_eq!(
            listed.get(code.as_str()),
            Some(&u64::from(code.status())),
            "{code} missing or with another status"
        );
    }

    // Every outcome and enrollment state a shim can see has an example.
    let states: BTreeSet<String> = doc["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .filter_map(|r| {
            r["body"]["state"]
                .as_str()
                .map(|s| format!("{} {s}", r["path"]))
        })
        .collect();
    for outcome in LoginOutcome::ENDED.iter().chain(&[LoginOutcome::Pending]) {
        assert!(
            states.contains(&format!("\"/v1/logins/{{id}}\" {outcome}"))
                || states.contains(&format!("\"/v1/logins\" {outcome}")),
            "no login example for {outcome}: {states:?}"
        );
    }
    for state in [
        "approval_pending",
        "approval_refused",
        "pending",
        "enrolled",
        "expired",
    ] {
        assert!(
            states
                .iter()
                .any(|s| s.contains("enrollments") && s.ends_with(&format!(" {state}"))),
            "no enrollment example for {state}"
        );
    }
}

//! Issue 9 item 21: property tests for what the IdP sidecar parses from outside: its config file
//! ([`FileConfig::parse`]), the CIBA bearer token's issuer ([`ciba::issuer`]), user names
//! ([`api::check_user`]) and the shim API's JSON bodies (through a running sidecar).
//!
//! Properties: arbitrary input never panics; refusals are typed with a message naming the file,
//! key or problem; valid generated configs give back their settings; near-misses (a misspelt or
//! repeated key, a wrong type; an issuer outside the configured Keycloak or naming no single
//! realm; a user name with a hidden character; a body with a field dropped, repeated, unknown or
//! of the wrong type) are refused; a 64 KiB input is handled quickly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use pushauth_idp_sidecar::config::{ConfigError, FileConfig};
use pushauth_idp_sidecar::{api, ciba, RunningSidecar, Settings};
use pushauth_proto::{b64, DeviceSigningKey};
use serde_json::{json, Value};
use zeroize::Zeroizing;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

const PATH: &str = "/etc/pushauth/sidecar-under-test.toml";
const KEYCLOAK: &str = "https://sso.example.com/auth";

fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    FileConfig::parse(text, Path::new(PATH))
}

#[derive(Debug, Clone)]
struct Spec {
    listen: Option<SocketAddr>,
    servers: Option<Vec<String>>,
    files: Vec<(&'static str, String)>,
    numbers: Vec<(&'static str, u64)>,
    ciba: Option<(String, String, Option<u64>)>,
}

const FILES: &[&str] = &[
    "api_key_file",
    "shared_secret_file",
    "signing_key_file",
    "ca_file",
];
const NUMBERS: &[&str] = &["login_ttl_secs", "result_ttl_secs", "max_pending"];

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_.-]{1,8}){1,4}"
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        ),
        prop::option::of(prop::collection::vec(
            "https://[a-z]{1,8}\\.example(:[1-9][0-9]{3})?",
            0..3,
        )),
        prop::collection::vec(prop::option::of(path()), FILES.len()),
        prop::collection::vec(prop::option::of(0u64..100_000), NUMBERS.len()),
        prop::option::of((
            path(),
            "https://[a-z]{1,8}\\.example(/[a-z]{1,5})?",
            prop::option::of(1u64..600),
        )),
    )
        .prop_map(|(listen, servers, files, numbers, ciba)| Spec {
            listen,
            servers,
            files: FILES
                .iter()
                .zip(files)
                .filter_map(|(k, v)| v.map(|v| (*k, v)))
                .collect(),
            numbers: NUMBERS
                .iter()
                .zip(numbers)
                .filter_map(|(k, v)| v.map(|v| (*k, v)))
                .collect(),
            ciba,
        })
}

fn render(spec: &Spec) -> String {
    let mut text = String::new();
    if let Some(listen) = spec.listen {
        text.push_str(&format!("listen = \"{listen}\"\n"));
    }
    if let Some(servers) = &spec.servers {
        let items: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
        text.push_str(&format!("servers = [{}]\n", items.join(", ")));
    }
    for (k, v) in &spec.files {
        text.push_str(&format!("{k} = {v:?}\n"));
    }
    for (k, v) in &spec.numbers {
        text.push_str(&format!("{k} = {v}\n"));
    }
    if let Some((key_file, url, ttl)) = &spec.ciba {
        text.push_str(&format!(
            "[ciba]\nkey_file = {key_file:?}\nkeycloak_url = {url:?}\n"
        ));
        if let Some(ttl) = ttl {
            text.push_str(&format!("ttl_secs = {ttl}\n"));
        }
    }
    text
}

fn refused(text: &str, needle: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(cfg) => Err(TestCaseError::fail(format!("{text:?} accepted as {cfg:?}"))),
        Err(err) => {
            prop_assert!(matches!(err, ConfigError::Parse { .. }), "{:?}", err);
            let message = err.to_string();
            prop_assert!(message.starts_with(PATH), "{:?}", message);
            prop_assert!(
                message.contains(needle),
                "{:?} refused with {:?}, expected {:?}",
                text,
                message,
                needle
            );
            Ok(())
        }
    }
}

/// A JWT-shaped token (header.payload.signature) whose payload is `claims`.
fn token(claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(br#"{"alg":"RS256"}"#),
        b64::encode(claims.to_string()),
        b64::encode([1u8; 16])
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_sidecar_config_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "((\\[ciba\\]\n)?[a-z_]{1,20} = (\"[ -~]{0,20}\"|-?[0-9]{1,22}|true|\\[\\])\n){0,6}",
        ],
    ) {
        if let Err(err) = parse(&text) {
            prop_assert!(matches!(err, ConfigError::Parse { .. }), "{:?}", err);
            prop_assert!(err.to_string().starts_with(PATH));
        }
    }

    #[test]
    fn issue9_item21_sidecar_config_valid_configs_give_their_settings(spec in spec()) {
        let text = render(&spec);
        let cfg = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(cfg.listen, spec.listen);
        prop_assert_eq!(&cfg.servers, &spec.servers);
        let file = |name: &str| spec.files.iter().find(|(k, _)| *k == name).map(|(_, v)| PathBuf::from(v));
        prop_assert_eq!(&cfg.api_key_file, &file("api_key_file"));
        prop_assert_eq!(&cfg.shared_secret_file, &file("shared_secret_file"));
        prop_assert_eq!(&cfg.signing_key_file, &file("signing_key_file"));
        prop_assert_eq!(&cfg.ca_file, &file("ca_file"));
        let number = |name: &str| spec.numbers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        prop_assert_eq!(cfg.login_ttl_secs, number("login_ttl_secs"));
        prop_assert_eq!(cfg.result_ttl_secs, number("result_ttl_secs"));
        prop_assert_eq!(cfg.max_pending.map(|m| m as u64), number("max_pending"));
        match (&cfg.ciba, &spec.ciba) {
            (None, None) => {}
            (Some(c), Some((key_file, url, ttl))) => {
                prop_assert_eq!(&c.key_file, &PathBuf::from(key_file));
                prop_assert_eq!(&c.keycloak_url, url);
                prop_assert_eq!(c.ttl_secs, *ttl);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn issue9_item21_sidecar_config_near_misses_are_refused(
        spec in spec(),
        key in prop::sample::select(vec!["servers", "api_key_file", "login_ttl_secs", "max_pending"]),
        typo in "[a-z]",
        bad in prop::sample::select(vec!["-1", "\"60\"", "1.5", "true", "{}"]),
    ) {
        let text = render(&spec);
        let misspelt = format!("{key}{typo}");
        refused(&format!("{misspelt} = 1\n{text}"), &misspelt)?;
        refused("[ciba]\nkey_file = \"/k\"\nkeycloak_url = \"https://k\"\nttl_secondz = 1\n", "ttl_secondz")?;
        refused(&format!("login_ttl_secs = 1\nlogin_ttl_secs = 2\n{text}"), "duplicate")?;
        refused(&format!("login_ttl_secs = {bad}\n"), "login_ttl_secs")?;
        refused(&format!("max_pending = {bad}\n"), "max_pending")?;
        refused("servers = \"https://a\"\n", "servers")?;
        refused("[ciba]\nkey_file = \"/k\"\n", "keycloak_url")?;
        refused("listen = \"127.0.0.1:8787\u{200B}\"\n", "listen")?;
    }

    #[test]
    fn issue9_item21_sidecar_ciba_arbitrary_tokens_are_refused_cleanly(
        text in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_.-]{0,120}",
            prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| format!("x.{}.y", b64::encode(b))),
        ],
    ) {
        if let Err(err) = ciba::issuer(&text, KEYCLOAK) {
            prop_assert_eq!(err.status, 401);
            prop_assert_eq!(err.code, "unauthorized");
            prop_assert!(err.message.starts_with("the bearer token is not a Keycloak CIBA token: "));
        }
    }

    #[test]
    fn issue9_item21_sidecar_ciba_issuer_round_trips_and_near_misses_are_refused(
        realm in "[A-Za-z0-9_-]{1,20}",
        client in prop::option::of("[a-z-]{1,12}"),
        bad_tail in prop::sample::select(vec!["/x", "/", "?a=1", "#f", "\\x", "/../master", ".."]),
        other_base in prop::sample::select(vec![
            "https://sso.example.com", "https://sso.example.com/authx", "http://sso.example.com/auth",
            "https://sso.example.com.evil.example/auth", "https://SSO.example.com/auth",
        ]),
    ) {
        let iss = format!("{KEYCLOAK}/realms/{realm}");
        let mut claims = json!({"iss": iss});
        if let Some(c) = &client {
            claims["azp"] = json!(c);
        }
        let got = ciba::issuer(&token(&claims), KEYCLOAK).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(got, (iss.clone(), realm.clone(), client.clone()));
        // A realm that is not one path segment, or an issuer under another base URL.
        let near = json!({"iss": format!("{iss}{bad_tail}")});
        prop_assert!(ciba::issuer(&token(&near), KEYCLOAK).is_err(), "{}", near);
        let elsewhere = json!({"iss": format!("{other_base}/realms/{realm}")});
        prop_assert!(ciba::issuer(&token(&elsewhere), KEYCLOAK).is_err(), "{}", elsewhere);
        let numeric = token(&json!({"iss": 7}));
        prop_assert!(ciba::issuer(&numeric, KEYCLOAK).is_err(), "{}", numeric);
        let no_iss = token(&json!({"azp": realm}));
        prop_assert!(ciba::issuer(&no_iss, KEYCLOAK).is_err(), "{}", no_iss);
        // The payload in standard base64 or padded: not a JWT.
        let padded = format!("{}==", b64::encode(claims.to_string()));
        let padded = format!("h.{padded}.s");
        prop_assert!(ciba::issuer(&padded, KEYCLOAK).is_err(), "{}", padded);
    }

    #[test]
    fn issue9_item21_sidecar_user_names_with_hidden_characters_are_refused(
        name in "[a-z.@-]{1,12}",
        hidden in prop::sample::select(vec!['\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', '\u{00AD}', '\u{0}', '\u{1B}', '\u{2028}', '\u{E000}']),
        position in any::<prop::sample::Index>(),
    ) {
        prop_assert!(api::check_user(&name).is_ok());
        let chars: Vec<char> = name.chars().collect();
        let at = position.index(chars.len() + 1);
        let mut mangled: String = chars[..at].iter().collect();
        mangled.push(hidden);
        mangled.extend(&chars[at..]);
        let err = api::check_user(&mangled).expect_err("hidden character accepted");
        prop_assert_eq!(err.code, "malformed_request");
        prop_assert!(!err.message.is_empty());
    }
}

/// The shim API's bodies through a running sidecar (its pushauthd is unreachable, so bodies are
/// judged before any upstream call): anything that is not a valid request is a 400 with the
/// stable error body, never a 5xx or a dropped connection.
#[test]
fn issue9_item21_sidecar_http_bodies_are_refused_cleanly() {
    let mut settings = Settings::new(
        vec!["http://127.0.0.1:9".into()],
        Zeroizing::new("rp.key".into()),
        Zeroizing::new("shim-shared-secret-0123456789".into()),
        DeviceSigningKey::from_seed(&[2u8; 32]),
    );
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    let sidecar = RunningSidecar::start(settings).expect("sidecar");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let post = |path: &str, body: &[u8]| -> (u16, String) {
        let result = agent
            .post(&format!("{}{path}", sidecar.url()))
            .set("Authorization", "Bearer shim-shared-secret-0123456789")
            .set("Content-Type", "application/json")
            .send_bytes(body);
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{path}: {e}"),
        };
        (resp.status(), resp.into_string().expect("body"))
    };
    let valid_login = json!({"realm": "demo", "username": "alice", "nonce": "n".repeat(16), "context": {"client": "app"}});
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop::sample::select(vec!["realm", "username", "nonce", "context", "extra"]),
            prop::sample::select(vec![
                json!(null),
                json!(7),
                json!("x"),
                json!([]),
                json!({"a": 1}),
                json!("\u{202E}"),
                json!({"client": "a\u{202E}b"}),
            ]),
            0usize..3,
        )
            .prop_map(move |(field, value, how)| {
                let mut body = valid_login.clone();
                match how {
                    0 => body[field] = value,
                    1 => {
                        if let Some(o) = body.as_object_mut() {
                            o.remove(field);
                        }
                    }
                    _ => {
                        return format!("{{\"{field}\":{value},{}", &body.to_string()[1..])
                            .into_bytes()
                    }
                }
                body.to_string().into_bytes()
            }),
    ];
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 64,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let result = runner.run(&bodies, |body| {
        for path in ["/v1/logins", "/v1/enrollments"] {
            let (status, text) = post(path, &body);
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == 400 {
                prop_assert!(parsed["error"].is_string(), "{}", text);
                prop_assert!(
                    !parsed["message"].as_str().unwrap_or("").is_empty(),
                    "{}",
                    text
                );
            } else {
                // Only a well-formed request gets past the checks (and then finds its realm not
                // configured, pushauthd unreachable, or enrollment not allowed).
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                prop_assert!(
                    request["realm"].is_string()
                        && request["username"]
                            .as_str()
                            .is_some_and(|u| api::check_user(u).is_ok()),
                    "{} {}: {:?} -> {}",
                    path,
                    status,
                    String::from_utf8_lossy(&body),
                    text
                );
                prop_assert!(status != 500, "{}", text);
            }
        }
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    // A context naming a key twice: which value would the person see?
    let twice = format!(
        r#"{{"realm":"demo","username":"alice","nonce":"{}","context":{{"client":"app","client":"other"}}}}"#,
        "n".repeat(16)
    );
    let (status, text) = post("/v1/logins", twice.as_bytes());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("duplicate"), "{text}");
}

#[test]
fn issue9_item21_sidecar_64k_input_is_handled_quickly() {
    let started = Instant::now();
    for text in [
        format!("login_ttl_secs = 5\n{}", "# c\n".repeat(64 * 1024 / 4)),
        "[".repeat(64 * 1024),
        format!("servers = [{}]\n", "\"https://a\",".repeat(64 * 1024 / 12)),
    ] {
        let _ = parse(&text);
    }
    let big = token(&json!({"iss": format!("{KEYCLOAK}/realms/{}", "r".repeat(48 * 1024))}));
    assert!(ciba::issuer(&big, KEYCLOAK).is_ok());
    let _ = ciba::issuer(&".".repeat(64 * 1024), KEYCLOAK);
    assert!(api::check_user(&"a".repeat(64 * 1024)).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

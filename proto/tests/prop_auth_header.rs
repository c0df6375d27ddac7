//! Issue 9 item 21: property tests for the device `Authorization: PushAuth …` header parser
//! ([`DeviceAuth::parse`] and [`DeviceAuth::ts_secs`]).
//!
//! Properties: arbitrary text never panics and a refusal is the typed
//! [`ProtoError::BadAuthHeader`] with a message; every valid header round-trips (Display → parse →
//! equal, in any parameter order); a near-miss (a parameter dropped, repeated, over-long, renamed,
//! unquoted, a hidden character or a NUL or a stray byte inserted anywhere) is either refused or
//! parses to exactly the same values, never to a mangled one; a 64 KiB header is handled quickly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::ProtoError;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Characters that look like nothing or change how text around them reads, plus NUL and ESC.
const HIDDEN: &[char] = &[
    '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{00AD}',
    '\u{061C}', '\u{2028}', '\u{0000}', '\u{001B}', '\u{007F}', '\u{E000}',
];

fn hidden_char() -> impl Strategy<Value = char> {
    prop::sample::select(HIDDEN)
}

/// 1 to 64 characters of base64url, the only characters a parameter value may hold.
fn b64url(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[A-Za-z0-9_-]{{1,{max}}}")).expect("regex")
}

fn valid_auth() -> impl Strategy<Value = DeviceAuth> {
    (b64url(40), 0u64..=99_999_999_999, b64url(43), b64url(86)).prop_map(
        |(device, ts, nonce, sig)| DeviceAuth {
            device,
            ts: ts.to_string(),
            nonce,
            sig,
        },
    )
}

fn params(auth: &DeviceAuth) -> Vec<(String, String)> {
    vec![
        ("device".into(), auth.device.clone()),
        ("ts".into(), auth.ts.clone()),
        ("nonce".into(), auth.nonce.clone()),
        ("sig".into(), auth.sig.clone()),
    ]
}

fn render(params: &[(String, String)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("PushAuth {}", parts.join(", "))
}

/// A refusal must be the typed header error with a message a person can act on.
fn assert_clear_error(result: Result<DeviceAuth, ProtoError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Err(TestCaseError::fail("accepted")),
        Err(err @ ProtoError::BadAuthHeader(why)) => {
            prop_assert!(!why.is_empty());
            prop_assert!(err
                .to_string()
                .starts_with("malformed Authorization header: "));
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("untyped error {other:?}"))),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_auth_header_arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(auth) = DeviceAuth::parse(&text) {
            // Whatever is accepted holds only plain base64url values.
            for value in [&auth.device, &auth.ts, &auth.nonce, &auth.sig] {
                prop_assert!(!value.is_empty() && value.len() <= 256);
                prop_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
            let _ = auth.ts_secs();
        } else {
            assert_clear_error(DeviceAuth::parse(&text))?;
        }
    }

    #[test]
    fn issue9_item21_auth_header_arbitrary_scheme_prefixed_text_never_panics(
        rest in "[ -~]{0,300}",
    ) {
        let text = format!("PushAuth {rest}");
        if DeviceAuth::parse(&text).is_err() {
            assert_clear_error(DeviceAuth::parse(&text))?;
        }
    }

    #[test]
    fn issue9_item21_auth_header_valid_headers_round_trip(
        auth in valid_auth(),
        order in Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
    ) {
        prop_assert_eq!(DeviceAuth::parse(&auth.to_string()), Ok(auth.clone()));
        let all = params(&auth);
        let shuffled: Vec<_> = order.iter().map(|&i| all[i].clone()).collect();
        prop_assert_eq!(DeviceAuth::parse(&render(&shuffled)), Ok(auth.clone()));
        let ts: i64 = auth.ts.parse().expect("digits");
        prop_assert_eq!(auth.ts_secs(), Ok(ts));
    }

    #[test]
    fn issue9_item21_auth_header_dropped_or_repeated_parameter_is_refused(
        auth in valid_auth(),
        which in 0usize..4,
        repeat_value in b64url(20),
    ) {
        let mut dropped = params(&auth);
        dropped.remove(which);
        assert_clear_error(DeviceAuth::parse(&render(&dropped)))?;

        let mut repeated = params(&auth);
        let name = repeated[which].0.clone();
        repeated.push((name, repeat_value));
        let err = DeviceAuth::parse(&render(&repeated));
        prop_assert_eq!(err, Err(ProtoError::BadAuthHeader("repeated parameter")));
    }

    #[test]
    fn issue9_item21_auth_header_over_long_unquoted_or_unknown_parameter_is_refused(
        auth in valid_auth(),
        which in 0usize..4,
        extra in 1usize..64,
        unknown in "[a-z]{1,10}",
    ) {
        let mut long = params(&auth);
        long[which].1 = "A".repeat(256 + extra);
        assert_clear_error(DeviceAuth::parse(&render(&long)))?;

        let mut unquoted = params(&auth);
        let (name, value) = unquoted.remove(which);
        let mut text = render(&unquoted);
        text.push_str(&format!(", {name}={value}"));
        assert_clear_error(DeviceAuth::parse(&text))?;

        prop_assume!(!["device", "ts", "nonce", "sig"].contains(&unknown.as_str()));
        let mut renamed = params(&auth);
        renamed.push((unknown, "x".into()));
        assert_clear_error(DeviceAuth::parse(&render(&renamed)))?;
    }

    /// A hidden character, a NUL or any other character that cannot be part of a value, inserted
    /// anywhere, is refused, or
    /// (where it only pads a separator, like a tab) changes nothing: never a different value.
    #[test]
    fn issue9_item21_auth_header_inserted_character_never_mangles_a_value(
        auth in valid_auth(),
        position in any::<prop::sample::Index>(),
        inserted in prop_oneof![hidden_char(), any::<char>()]
            .prop_filter("a base64url character makes another valid value", |c| {
                !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            }),
    ) {
        let text = auth.to_string();
        let chars: Vec<char> = text.chars().collect();
        let at = position.index(chars.len() + 1);
        let mut mangled: String = chars[..at].iter().collect();
        mangled.push(inserted);
        mangled.extend(&chars[at..]);
        match DeviceAuth::parse(&mangled) {
            Ok(parsed) => {
                prop_assert_eq!(&parsed, &auth, "{:?} accepted as a different header", mangled);
                // Only whitespace between parameters can be absorbed.
                prop_assert!(inserted.is_whitespace(), "{:?} silently accepted", inserted);
            }
            Err(_) => assert_clear_error(DeviceAuth::parse(&mangled))?,
        }
        // A hidden character inside a value, or trailing garbage after the last quote, is refused.
        if HIDDEN.contains(&inserted) && !inserted.is_whitespace() {
            prop_assert!(DeviceAuth::parse(&mangled).is_err(), "{:?}", mangled);
        }
        let trailing = format!("{text}{}", if inserted.is_whitespace() { 'x' } else { inserted });
        assert_clear_error(DeviceAuth::parse(&trailing))?;
    }

    #[test]
    fn issue9_item21_auth_header_ts_secs_never_panics(ts in "[0-9+-]{0,20}|\\PC{0,20}") {
        let auth = DeviceAuth { device: "d".into(), ts: ts.clone(), nonce: "n".into(), sig: "s".into() };
        match auth.ts_secs() {
            Ok(secs) => {
                prop_assert!(secs >= 0);
                let text = secs.to_string();
                prop_assert_eq!(text.trim_start_matches('0'), ts.trim_start_matches('0'));
            }
            Err(err) => prop_assert_eq!(err, ProtoError::BadAuthHeader("ts must be unix seconds")),
        }
    }
}

#[test]
fn issue9_item21_auth_header_64k_input_is_refused_quickly() {
    let started = Instant::now();
    for text in [
        format!("PushAuth {}", "a=\"b\",".repeat(64 * 1024 / 6)),
        format!("PushAuth device=\"{}\"", "A".repeat(64 * 1024)),
        format!("PushAuth {}", ",".repeat(64 * 1024)),
        "PushAuth ".repeat(64 * 1024 / 9),
        "\u{202E}".repeat(64 * 1024 / 3),
    ] {
        assert!(DeviceAuth::parse(&text).is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

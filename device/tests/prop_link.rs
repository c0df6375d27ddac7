//! Issue 9 item 21: property tests for enrollment links ([`parse_enroll_link`], [`base_url`]).
//!
//! Properties: arbitrary text never panics and a refusal is [`DeviceError::BadLink`] with a
//! message; valid generated links of both forms (`<base>/enroll?token=…` and
//! `pushauth://enroll?server=…&token=…`) give back exactly their server and token; a near-miss (a
//! hidden character, a NUL or a line break inserted anywhere, the token or server given twice, an
//! empty or non-base64url token, a path not ending in `/enroll`, another scheme, a user name in the
//! server URL) is refused: a link that does not say plainly where it enrolls, and with what, is
//! never silently read as something else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_device::link::{base_url, parse_enroll_link, EnrollLink};
use pushauth_device::DeviceError;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

const HIDDEN: &[char] = &[
    '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}',
    '\u{FEFF}', '\u{00AD}', '\u{061C}', '\u{2028}', '\u{0000}', '\u{0009}', '\u{000A}', '\u{000D}',
    '\u{001B}', '\u{007F}', '\u{E000}',
];

/// A server base URL as pushauthd prints it: scheme, lowercase host, a non-default port maybe,
/// a path prefix maybe; no trailing slash.
fn base() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["https", "http"]),
        prop_oneof![
            "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9-]{0,8}[a-z0-9]){0,3}",
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
        ],
        prop::option::of(1024u16..=65535),
        prop::collection::vec("[a-z0-9_-]{1,8}", 0..3),
    )
        .prop_map(|(scheme, host, port, path)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let path: String = path.iter().map(|seg| format!("/{seg}")).collect();
            format!("{scheme}://{host}{port}{path}")
        })
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

/// `server` percent-encoded for a query parameter.
fn encode(server: &str) -> String {
    server
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn both_forms(server: &str, token: &str) -> [String; 2] {
    [
        format!("{server}/enroll?token={token}"),
        format!("pushauth://enroll?server={}&token={token}", encode(server)),
    ]
}

fn assert_bad_link(link: &str) -> Result<(), TestCaseError> {
    match parse_enroll_link(link) {
        Ok(parsed) => Err(TestCaseError::fail(format!(
            "{link:?} accepted as {parsed:?}"
        ))),
        Err(err @ DeviceError::BadLink(_)) => {
            let message = err.to_string();
            prop_assert!(message.starts_with("bad enrollment link: ") && message.len() > 22);
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("untyped error {other:?}"))),
    }
}

fn insert(text: &str, position: prop::sample::Index, c: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = position.index(chars.len() + 1);
    let mut out: String = chars[..at].iter().collect();
    out.push(c);
    out.extend(&chars[at..]);
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_link_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "(https?|pushauth)://[a-z0-9.:@/?&=%#\\[\\]-]{0,40}",
        ],
    ) {
        if parse_enroll_link(&text).is_err() {
            assert_bad_link(&text)?;
        }
        if let Err(err) = base_url(&text) {
            prop_assert!(matches!(err, DeviceError::BadLink(_)));
        }
    }

    #[test]
    fn issue9_item21_link_valid_links_round_trip(server in base(), token in token()) {
        let expected = EnrollLink { server: server.clone(), token: token.clone() };
        for link in both_forms(&server, &token) {
            prop_assert_eq!(parse_enroll_link(&link).ok(), Some(expected.clone()), "{}", link);
        }
        prop_assert_eq!(base_url(&format!("{server}/")).ok(), Some(server));
    }

    /// A hidden character, NUL, tab or line break anywhere in a link is refused (the URL parser
    /// would otherwise drop some silently and keep others inside the token or server).
    #[test]
    fn issue9_item21_link_hidden_characters_are_refused(
        server in base(),
        token in token(),
        form in 0usize..2,
        position in any::<prop::sample::Index>(),
        hidden in prop::sample::select(HIDDEN),
    ) {
        let link = both_forms(&server, &token)[form].clone();
        let mangled = insert(&link, position, hidden);
        // Leading and trailing whitespace (a pasted line) is not part of the link.
        let at_edge = mangled.trim() == link;
        if !at_edge {
            assert_bad_link(&mangled)?;
        }
    }

    #[test]
    fn issue9_item21_link_repeated_or_bad_parameters_are_refused(
        server in base(),
        token in token(),
        other in token(),
        bad_token in prop_oneof![
            Just(String::new()),
            "[A-Za-z0-9_-]{0,8}[+/=. !*'()~][A-Za-z0-9_-]{1,8}",
            prop::sample::select(vec!["a%2Bb", "a%2Fb", "a%3Db", "a%20b", "a%00b", "a%E2%80%AEb", "%FF", "a+b"])
                .prop_map(str::to_owned),
        ],
    ) {
        let [plain, qr] = both_forms(&server, &token);
        // The token twice (the same or another): which one was meant?
        assert_bad_link(&format!("{plain}&token={other}"))?;
        assert_bad_link(&format!("{qr}&token={token}"))?;
        assert_bad_link(&format!("{qr}&server={}", encode("https://evil.example")))?;
        // A token pushauthd cannot have made.
        assert_bad_link(&format!("{server}/enroll?token={bad_token}"))?;
        assert_bad_link(&format!("pushauth://enroll?server={}&token={bad_token}", encode(&server)))?;
    }

    #[test]
    fn issue9_item21_link_wrong_shapes_are_refused(
        server in base(),
        token in token(),
        user in "[a-z]{1,8}",
        scheme in prop::sample::select(vec!["ftp", "file", "javascript", "data", "pushauths", "HTTPS+x"]),
    ) {
        let host_part = server.split_once("://").expect("scheme").1;
        assert_bad_link(&format!("{server}/enrol?token={token}"))?;
        assert_bad_link(&format!("{server}/enroll/?token={token}"))?;
        assert_bad_link(&format!("{server}/enroll?tok={token}"))?;
        assert_bad_link(&format!("{scheme}://{host_part}/enroll?token={token}"))?;
        assert_bad_link(&format!("pushauth://enroll?token={token}"))?;
        assert_bad_link(&format!("pushauth://enroll?server={}&token={token}", encode(&format!("ftp://{host_part}"))))?;
        // A user name in the server URL ("https://bank.example@evil.example") hides the real host.
        assert_bad_link(&format!("pushauth://enroll?server={}&token={token}", encode(&format!("https://{user}@{host_part}"))))?;
        assert_bad_link(&format!("pushauth://enroll?server={}&token={token}", encode(&format!("{server}?x=1"))))?;
    }
}

/// The hostile shapes, `n` bytes long.
fn hostile_links(n: usize) -> Vec<String> {
    vec![
        format!("https://h/enroll?token={}", "A".repeat(n)),
        format!("https://{}/enroll?token=x", "a.".repeat(n / 2)),
        format!("https://h/{}enroll?token=x", "../".repeat(n / 3)),
        format!("https://h/enroll?{}token=x", "a=b&".repeat(n / 4)),
        "\u{202E}".repeat(n / 3),
        "%".repeat(n),
    ]
}

/// The quickest of five parses of every hostile link of size `n`.
fn parse_time(n: usize) -> Duration {
    let links = hostile_links(n);
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for text in &links {
                let _ = parse_enroll_link(text);
            }
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn issue9_item21_link_64k_input_is_handled_quickly() {
    // A complexity guard, not a speed target (a loaded machine once took 3 s): 64 KiB of
    // hostile input must cost about four times 16 KiB (linear), far from the sixteen times a
    // quadratic parser would take. The quickest of five runs keeps scheduling noise out.
    let small = parse_time(16 * 1024);
    let large = parse_time(64 * 1024);
    assert!(
        large < small * 10 + Duration::from_millis(20),
        "16 KiB: {small:?}, 64 KiB: {large:?}"
    );
}

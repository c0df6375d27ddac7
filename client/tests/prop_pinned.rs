//! Issue 9 item 21: property tests for `authorized_devices` files
//! ([`parse_authorized_devices`], [`load_pinned`]).
//!
//! Properties: arbitrary text never panics and a refusal names the line; a valid generated file
//! (keys, comments, blank lines, tabs, comment fields) gives exactly its keys in order; a near-miss
//! of a key line (a character dropped or added, padding, the standard alphabet, another algorithm,
//! a hidden character or a NUL inserted anywhere) makes the whole file an error naming that line,
//! or (only where the insertion is whitespace between fields or lands in a comment) leaves the keys
//! unchanged; never a different key. User names never reach a file outside the directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_client::pinned::{load_pinned, parse_authorized_devices};
use pushauth_client::ClientError;
use pushauth_proto::{Alg, DevicePublicKey, DeviceSigningKey};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// An Ed25519 or (issue 11) an ES256 key.
fn key() -> impl Strategy<Value = DevicePublicKey> {
    (any::<[u8; 32]>(), any::<bool>()).prop_map(|(secret, es256)| {
        match DeviceSigningKey::from_secret(Alg::Es256, &secret) {
            Ok(key) if es256 => key.public_key(),
            // Ed25519, or a scalar out of P-256's range (about 2^-32 of draws).
            _ => DeviceSigningKey::from_seed(&secret).public_key(),
        }
    })
}

/// One line of a file: a key (with optional comment) or a line that holds none.
#[derive(Debug, Clone)]
enum Line {
    Key {
        key: Box<DevicePublicKey>,
        lead: String,
        sep: String,
        comment: String,
    },
    Comment(String),
    Blank(String),
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => (key(), "[ \t]{0,3}", "[ \t]{1,3}", prop_oneof![Just(String::new()), "[ \t]{1,2}[ -~]{0,20}".prop_map(|s| s)])
            .prop_map(|(key, lead, sep, comment)| Line::Key { key: Box::new(key), lead, sep, comment }),
        1 => "[ \t]{0,2}#[^\r\n]{0,30}".prop_map(Line::Comment),
        1 => "[ \t]{0,3}".prop_map(Line::Blank),
    ]
}

fn render(lines: &[Line]) -> (String, Vec<DevicePublicKey>) {
    let mut text = String::new();
    let mut keys = Vec::new();
    for line in lines {
        match line {
            Line::Key {
                key,
                lead,
                sep,
                comment,
            } => {
                text.push_str(&format!(
                    "{lead}{}{sep}{}{comment}\n",
                    key.alg(),
                    key.to_b64()
                ));
                keys.push((**key).clone());
            }
            Line::Comment(c) => text.push_str(&format!("{c}\n")),
            Line::Blank(b) => text.push_str(&format!("{b}\n")),
        }
    }
    (text, keys)
}

fn assert_names_line(
    result: Result<Vec<DevicePublicKey>, String>,
    line: usize,
) -> Result<(), TestCaseError> {
    match result {
        Ok(keys) => Err(TestCaseError::fail(format!("accepted as {keys:?}"))),
        Err(message) => {
            let expected = format!("line {line}: ");
            prop_assert!(
                message.starts_with(&expected),
                "{:?} does not name line {}",
                message,
                line
            );
            prop_assert!(message.len() > expected.len());
            Ok(())
        }
    }
}

/// `<tmp>/pins` (empty) beside `<tmp>/outside`, a valid pin file that must never be read.
fn pin_dir() -> PathBuf {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir(root.path().join("pins")).expect("mkdir");
        let outside = DeviceSigningKey::from_seed(&[9u8; 32]).public_key();
        fs::write(
            root.path().join("outside"),
            format!("ed25519 {}\n", outside.to_b64()),
        )
        .expect("write");
        root
    });
    root.path().join("pins")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_pinned_arbitrary_text_never_panics(
        text in prop_oneof![any::<String>(), "(ed25519 [A-Za-z0-9_=+/-]{0,50}[ \t\n#]{0,3}){0,4}"],
    ) {
        if let Err(message) = parse_authorized_devices(&text) {
            prop_assert!(message.starts_with("line "), "{:?}", message);
        }
    }

    #[test]
    fn issue9_item21_pinned_valid_files_give_their_keys(
        lines in prop::collection::vec(line(), 0..8),
        crlf in any::<bool>(),
    ) {
        let (mut text, keys) = render(&lines);
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        prop_assert_eq!(parse_authorized_devices(&text), Ok(keys.clone()));
        // Without the final newline too.
        prop_assert_eq!(parse_authorized_devices(text.trim_end_matches(['\r', '\n'])), Ok(keys));
    }

    #[test]
    fn issue9_item21_pinned_mangled_key_lines_are_refused_naming_the_line(
        lines in prop::collection::vec(line(), 0..4),
        bad in key(),
        mangle in 0usize..7,
        extra in "[A-Za-z0-9_-]",
    ) {
        let (before, _) = render(&lines);
        let line_no = lines.len() + 1;
        let b64 = bad.to_b64();
        let alg = bad.alg();
        let mangled = match mangle {
            0 => format!("{alg} {}", &b64[..b64.len() - 1]),
            1 => format!("{alg} {b64}{extra}"),
            2 => format!("{alg} {b64}="),
            3 => format!("{alg} {}", b64.replace('-', "+").replace('_', "/")),
            4 => format!("ssh-{alg} {b64}"),
            // Issue 11: the key under the other algorithm's name.
            5 => match alg {
                Alg::Ed25519 => format!("es256 {b64}"),
                Alg::Es256 => format!("ed25519 {b64}"),
            },
            _ => alg.to_string(),
        };
        // mangle 3 is only a near-miss where the key holds '-' or '_'.
        prop_assume!(mangle != 3 || b64.contains(['-', '_']));
        let text = format!("{before}{mangled}\n{alg} {b64}\n");
        assert_names_line(parse_authorized_devices(&text), line_no)?;
    }

    /// Any character inserted anywhere in a key line: refused naming the line, or the same keys.
    #[test]
    fn issue9_item21_pinned_inserted_character_never_changes_a_key(
        k in key(),
        comment in prop_oneof![Just(String::new()), " [a-z ]{1,10}".prop_map(|s| s)],
        position in any::<prop::sample::Index>(),
        inserted in prop_oneof![
            prop::sample::select(vec!['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2066}', '\u{00AD}', '\u{0}', '\u{1B}', '\u{7F}', '\u{00A0}', '\u{3000}', '=', '+', '/', '.', '#']),
            any::<char>(),
        ],
    ) {
        let alg = k.alg().as_str();
        let line = format!("{alg} {}{comment}", k.to_b64());
        let chars: Vec<char> = line.chars().collect();
        let at = position.index(chars.len() + 1);
        let mut mangled: String = chars[..at].iter().collect();
        mangled.push(inserted);
        mangled.extend(&chars[at..]);
        let text = format!("# header\n{mangled}\n");
        match parse_authorized_devices(&text) {
            Ok(keys) if inserted == '#' && at == 0 => {
                // The line commented out: no key (an empty pin set refuses every answer).
                prop_assert_eq!(keys, vec![]);
            }
            Ok(keys) => {
                // Whitespace between fields, a character in the comment, or a line break that
                // leaves "<alg> <key>" intact: the same key, nothing else.
                prop_assert_eq!(keys, vec![k.clone()], "{:?}", mangled);
            }
            Err(message) => prop_assert!(message.starts_with("line 2: ") || message.starts_with("line 3: "), "{:?}", message),
        }
        // A hidden character inside the algorithm or the key itself is always refused.
        let key_end = alg.len() + 1 + k.to_b64().len();
        if !inserted.is_whitespace() && at > 0 && at < key_end && at != alg.len() + 1 {
            prop_assert!(parse_authorized_devices(&text).is_err(), "{:?}", mangled);
        }
    }

    /// A user name is a file name in the directory (a `/` a subdirectory of it): whatever it
    /// is, nothing outside is read.
    #[test]
    fn issue9_item21_pinned_user_names_never_leave_the_directory(
        user in prop_oneof![
            any::<String>(),
            "(\\.\\./|\\./|/|\\\\){0,3}(outside|alice)",
            Just("..".to_owned()),
            Just("alice\0".to_owned()),
        ],
    ) {
        let dir = pin_dir();
        match load_pinned(&dir, &user) {
            Ok(Some(keys)) => prop_assert!(false, "{:?} read {:?}", user, keys),
            // A `/` starts a subdirectory (issue 10); every component stays a plain name.
            Ok(None) => prop_assert!(!user.contains(['\\', '\0']) && user.split('/').all(|c| !c.is_empty() && !c.starts_with('.'))),
            Err(ClientError::Config(message)) => prop_assert!(!message.is_empty()),
            Err(other) => prop_assert!(false, "untyped error {:?}", other),
        }
    }
}

#[test]
fn issue9_item21_pinned_64k_input_is_handled_quickly() {
    let started = Instant::now();
    let k = DeviceSigningKey::from_seed(&[1u8; 32]).public_key();
    let many = format!("ed25519 {}\n", k.to_b64()).repeat(64 * 1024 / 52);
    assert_eq!(
        parse_authorized_devices(&many).map(|keys| keys.len()),
        Ok(64 * 1024 / 52)
    );
    for text in [
        format!("ed25519 {}", "A".repeat(64 * 1024)),
        " ".repeat(64 * 1024) + "x",
        "\u{FEFF}".repeat(64 * 1024 / 3),
        "#\n".repeat(32 * 1024) + "garbage",
    ] {
        assert!(parse_authorized_devices(&text).is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

//! Issue 9 item 21: property tests for unpadded base64url ([`b64::decode`],
//! [`b64::decode_array`]), the encoding of every key, nonce and signature on the wire.
//!
//! Properties: arbitrary text never panics and a refusal names the field; every byte string
//! round-trips; one value has exactly one accepted text (no padding, no standard alphabet, no
//! non-zero trailing bits, no whitespace or hidden characters), so two texts can never stand for
//! the same key or nonce; a wrong length is named with both lengths.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_proto::{b64, ProtoError};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_b64_arbitrary_text_never_panics_and_is_canonical(text in any::<String>()) {
        match b64::decode(&text, "field_x") {
            // Whatever decodes is the one canonical text of its bytes.
            Ok(bytes) => prop_assert_eq!(b64::encode(&bytes), text),
            Err(err) => {
                prop_assert_eq!(&err, &ProtoError::Base64("field_x"));
                prop_assert!(err.to_string().contains("field_x"));
            }
        }
    }

    #[test]
    fn issue9_item21_b64_alphabet_text_never_panics_and_is_canonical(text in "[A-Za-z0-9_=+/-]{0,100}") {
        if let Ok(bytes) = b64::decode(&text, "f") {
            prop_assert_eq!(b64::encode(&bytes), text);
        }
    }

    #[test]
    fn issue9_item21_b64_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = b64::encode(&bytes);
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(b64::decode(&text, "f"), Ok(bytes.clone()));
        let array: Result<[u8; 32], _> = b64::decode_array::<32>(&text, "rp_nonce");
        if bytes.len() == 32 {
            prop_assert_eq!(array.map(|a| a.to_vec()), Ok(bytes));
        } else {
            prop_assert_eq!(
                array,
                Err(ProtoError::Length { field: "rp_nonce", expected: 32, got: bytes.len() })
            );
        }
    }

    /// Padding, the standard alphabet, a hidden character, whitespace, a NUL or a stray byte
    /// inserted anywhere: refused (never decoded to other bytes).
    #[test]
    fn issue9_item21_b64_near_misses_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 1..64),
        position in any::<prop::sample::Index>(),
        inserted in prop_oneof![
            prop::sample::select(vec!['=', '+', '/', ' ', '\n', '\t', '\0', '.', '\u{202E}', '\u{200B}', '\u{FEFF}', '\u{00A0}']),
            any::<char>().prop_filter("not base64url", |c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')),
        ],
    ) {
        let text = b64::encode(&bytes);
        let chars: Vec<char> = text.chars().collect();
        let at = position.index(chars.len() + 1);
        let mut mangled: String = chars[..at].iter().collect();
        mangled.push(inserted);
        mangled.extend(&chars[at..]);
        prop_assert_eq!(b64::decode(&mangled, "public_key"), Err(ProtoError::Base64("public_key")));
        // The padded (RFC 4648 section 5 with '=') form of the same bytes is a second text.
        let pad = (4 - text.len() % 4) % 4;
        if pad > 0 {
            let padded = format!("{text}{}", "=".repeat(pad));
            prop_assert!(b64::decode(&padded, "f").is_err());
        }
    }

    /// The same bytes with non-zero unused trailing bits: a second text for one value, refused.
    #[test]
    fn issue9_item21_b64_non_canonical_trailing_bits_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 1..64),
        bump in 1u8..4,
    ) {
        prop_assume!(bytes.len() % 3 != 0);
        let text = b64::encode(&bytes);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = text.as_bytes()[text.len() - 1];
        let index = alphabet.iter().position(|&c| c == last).expect("alphabet") as u8;
        // 1 leftover byte leaves 4 unused bits in the last character, 2 leave 2.
        let unused_mask = if bytes.len() % 3 == 1 { 0x0f } else { 0x03 };
        let other = (index & !unused_mask) | (bump & unused_mask).max(1);
        prop_assume!(other != index);
        let mut mangled = text[..text.len() - 1].to_owned();
        mangled.push(alphabet[usize::from(other)] as char);
        prop_assert!(b64::decode(&mangled, "sig").is_err(), "{} and {} both decode", text, mangled);
    }
}

#[test]
fn issue9_item21_b64_64k_input_is_handled_quickly() {
    let started = Instant::now();
    let text = b64::encode(vec![0xa5u8; 48 * 1024]);
    assert_eq!(text.len(), 64 * 1024);
    assert_eq!(b64::decode(&text, "f").map(|b| b.len()), Ok(48 * 1024));
    assert!(b64::decode(&format!("{text}="), "f").is_err());
    assert!(b64::decode(&"\u{FEFF}".repeat(64 * 1024 / 3), "f").is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

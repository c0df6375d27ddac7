//! Issue 9 item 21: property tests for RFC 3339 times as pushauthd reads them from devices
//! (`responded_at`) and writes them ([`clock::parse_rfc3339`], [`clock::rfc3339`]).
//!
//! Properties: arbitrary text never panics; every time the server writes parses back to the same
//! millisecond; near-misses (a hidden character, a missing zone, a trailing byte) are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use proptest::prelude::*;
use pushauth_server::clock::{parse_rfc3339, rfc3339};

/// 9999-12-31T23:59:59.999Z in unix milliseconds.
const MAX_MS: i64 = 253_402_300_799_999;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn issue9_item21_clock_arbitrary_text_never_panics(
        text in prop_oneof![any::<String>(), "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})"],
    ) {
        let _ = parse_rfc3339(&text);
    }

    #[test]
    fn issue9_item21_clock_written_times_round_trip(ms in 0i64..=MAX_MS) {
        let text = rfc3339(ms);
        prop_assert_eq!(parse_rfc3339(&text), Some(ms), "{}", text);
    }

    #[test]
    fn issue9_item21_clock_near_misses_are_refused(
        ms in 0i64..=MAX_MS,
        position in any::<prop::sample::Index>(),
        inserted in prop::sample::select(vec!['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{0}', ' ', 'x', '\u{0660}']),
    ) {
        let text = rfc3339(ms);
        let chars: Vec<char> = text.chars().collect();
        let at = position.index(chars.len() + 1);
        let mut mangled: String = chars[..at].iter().collect();
        mangled.push(inserted);
        mangled.extend(&chars[at..]);
        prop_assert_eq!(parse_rfc3339(&mangled), None, "{:?}", mangled);
        let no_zone = text.trim_end_matches('Z');
        prop_assert_eq!(parse_rfc3339(no_zone), None);
    }
}

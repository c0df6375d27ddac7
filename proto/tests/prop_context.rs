//! Issue 9 item 21: property tests for login contexts ([`validate_context`], [`context_digest`]
//! and the JSON form of a context).
//!
//! Properties: arbitrary maps never panic and a refusal is the typed [`ContextError`] naming the
//! key; valid generated contexts pass and round-trip through JSON with the same digest; a near-miss
//! (a hidden character in a value, a value one byte too long, a bad key, one entry too many) is the
//! matching error; distinct contexts always get distinct digests (the framing leaves no two
//! contexts the same bytes); a context given as JSON with a key twice is refused rather than one
//! of the two values being silently kept.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_proto::context::{
    validate_context, ContextError, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_KEY_BYTES,
    MAX_CONTEXT_VALUE_BYTES,
};
use pushauth_proto::wire::{CreateChallenge, PendingChallenge};
use pushauth_proto::{context_digest, text, Context};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

const HIDDEN: &[char] = &[
    '\u{202E}',
    '\u{202D}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{2060}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{061C}',
    '\u{2028}',
    '\u{2029}',
    '\u{0000}',
    '\u{0009}',
    '\u{000A}',
    '\u{000D}',
    '\u{001B}',
    '\u{007F}',
    '\u{0085}',
    '\u{E000}',
    '\u{E0041}',
];

fn key() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-z0-9_.-]{1,64}").expect("regex")
}

/// Text a person can read: no control, format, separator, private-use or unassigned character.
fn visible_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,:/@_()=+-]{0,40}",
        "[a-z é Ж 中 😀\u{00A0}]{0,12}",
        "\\PC{0,12}".prop_filter("visible only", |v| text::first_hidden(v).is_none()),
    ]
}

/// Up to `max` arbitrary characters (any code point, weighted toward the unusual ones).
fn chars(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

fn valid_context() -> impl Strategy<Value = Context> {
    prop::collection::btree_map(key(), visible_value(), 0..8)
}

fn assert_typed(err: &ContextError, context: &Context) -> Result<(), TestCaseError> {
    let message = err.to_string();
    prop_assert!(!message.is_empty());
    match err {
        ContextError::TooManyEntries(n) => prop_assert_eq!(*n, context.len()),
        ContextError::BadKey(k) | ContextError::ValueTooLong(k) => {
            prop_assert!(context.contains_key(k));
            let quoted = format!("{k:?}");
            prop_assert!(message.contains(&quoted));
        }
        ContextError::HiddenCharacter { key, code_point } => {
            let value = context.get(key).expect("named key");
            prop_assert!(value.chars().any(|c| u32::from(c) == *code_point));
            let shown = format!("U+{code_point:04X}");
            prop_assert!(message.contains(&shown));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_context_arbitrary_maps_never_panic(
        context in prop::collection::btree_map(
            prop_oneof!["[a-z0-9_.-]{1,8}", chars(8)],
            prop_oneof!["[ -~]{0,16}", chars(16)],
            0..36,
        ),
    ) {
        match validate_context(&context) {
            Ok(()) => {
                prop_assert!(context.len() <= MAX_CONTEXT_ENTRIES);
                for (k, v) in &context {
                    prop_assert!(!k.is_empty() && k.len() <= MAX_CONTEXT_KEY_BYTES);
                    prop_assert!(v.len() <= MAX_CONTEXT_VALUE_BYTES);
                    prop_assert!(text::first_hidden(v).is_none());
                }
            }
            Err(err) => assert_typed(&err, &context)?,
        }
        let _ = context_digest(&context);
    }

    #[test]
    fn issue9_item21_context_valid_contexts_pass_and_round_trip_through_json(context in valid_context()) {
        prop_assert_eq!(validate_context(&context), Ok(()));
        let json = serde_json::to_vec(&context).expect("serialize");
        let back: Context = serde_json::from_slice(&json).expect("parse");
        prop_assert_eq!(context_digest(&back), context_digest(&context));
        prop_assert_eq!(back, context);
    }

    #[test]
    fn issue9_item21_context_hidden_character_in_a_value_is_named(
        context in valid_context().prop_filter("non-empty", |c| !c.is_empty()),
        which in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        hidden in prop::sample::select(HIDDEN),
    ) {
        let mut context = context;
        let key = which.get(&context.keys().cloned().collect::<Vec<_>>()).clone();
        let value = context.get_mut(&key).expect("key");
        let chars: Vec<char> = value.chars().collect();
        let at = position.index(chars.len() + 1);
        let mut mangled: String = chars[..at].iter().collect();
        mangled.push(hidden);
        mangled.extend(&chars[at..]);
        *value = mangled;
        let err = validate_context(&context);
        prop_assert_eq!(
            &err,
            &Err(ContextError::HiddenCharacter { key, code_point: u32::from(hidden) })
        );
        assert_typed(&err.unwrap_err(), &context)?;
    }

    #[test]
    fn issue9_item21_context_over_long_bad_key_and_too_many_are_refused(
        context in valid_context(),
        bad_key in prop_oneof![
            Just(String::new()),
            "[a-z]{0,5}[A-Z /:\u{202E}\u{200B}\u{FEFF}\u{0}][a-z]{0,5}",
            "[a-z]{65,80}",
        ],
        filler in "[a-z]",
    ) {
        let mut long = context.clone();
        long.insert("message".into(), filler.repeat(MAX_CONTEXT_VALUE_BYTES + 1));
        prop_assert_eq!(validate_context(&long), Err(ContextError::ValueTooLong("message".into())));
        long.insert("message".into(), filler.repeat(MAX_CONTEXT_VALUE_BYTES));
        prop_assert_eq!(validate_context(&long), Ok(()));

        let mut bad = context.clone();
        bad.insert(bad_key.clone(), "v".into());
        prop_assert_eq!(validate_context(&bad), Err(ContextError::BadKey(bad_key)));

        let mut many = context;
        let mut i = 0;
        while many.len() <= MAX_CONTEXT_ENTRIES {
            many.insert(format!("k{i}"), "v".into());
            i += 1;
        }
        prop_assert_eq!(validate_context(&many), Err(ContextError::TooManyEntries(many.len())));
    }

    /// Small alphabets make near-identical contexts ("a"+"ab" against "aa"+"b", one entry split in
    /// two, an empty value): every pair that differs must have different digests.
    #[test]
    fn issue9_item21_context_distinct_contexts_have_distinct_digests(
        a in prop::collection::btree_map("[ab]{1,3}", "[ab]{0,3}", 0..4),
        b in prop::collection::btree_map("[ab]{1,3}", "[ab]{0,3}", 0..4),
    ) {
        if a == b {
            prop_assert_eq!(context_digest(&a), context_digest(&b));
        } else {
            prop_assert_ne!(context_digest(&a), context_digest(&b), "{:?} and {:?}", a, b);
        }
    }

    #[test]
    fn issue9_item21_context_moving_a_boundary_changes_the_digest(
        joined in "[a-z]{2,20}",
        split in any::<prop::sample::Index>(),
        value in "[a-z]{0,10}",
    ) {
        // key+value "ab"+"c…" against "a"+"bc…": the same bytes, framed differently.
        let at = 1 + split.index(joined.len() - 1);
        let one: Context = [(joined.clone(), value.clone())].into_iter().collect();
        let two: Context = [(joined[..at].to_owned(), format!("{}{value}", &joined[at..]))].into_iter().collect();
        prop_assert_ne!(context_digest(&one), context_digest(&two));
    }

    /// The same key twice in a JSON context: the server, the device and a relying party written in
    /// another language could each keep a different one of the two values, so it is refused.
    #[test]
    fn issue9_item21_context_duplicate_json_key_is_refused(
        key in key(),
        first in "[a-z0-9]{0,10}",
        second in "[a-z0-9]{0,10}",
    ) {
        let nonce = pushauth_proto::b64::encode([7u8; 32]);
        let body = format!(
            r#"{{"user":"alice","rp_nonce":"{nonce}","context":{{"{key}":"{first}","{key}":"{second}"}}}}"#
        );
        let err = serde_json::from_str::<CreateChallenge>(&body).expect_err("duplicate accepted");
        prop_assert!(err.to_string().contains("duplicate"), "{}", err);
        let pending = format!(
            r#"{{"id":"c","user":"alice","state":"pending","context":{{"{key}":"{first}","{key}":"{second}"}},
               "context_digest":"x","rp_nonce":"{nonce}","created_at":"t","expires_at":"t","code_required":true}}"#
        );
        let err = serde_json::from_str::<PendingChallenge>(&pending).expect_err("duplicate accepted");
        prop_assert!(err.to_string().contains("duplicate"), "{}", err);
    }
}

#[test]
fn issue9_item21_context_64k_input_is_handled_quickly() {
    let started = Instant::now();
    let mut big = Context::new();
    big.insert("message".into(), "x".repeat(64 * 1024));
    assert!(validate_context(&big).is_err());
    let _ = context_digest(&big);
    let hidden: Context = [("message".to_owned(), "\u{202E}".repeat(64 * 1024 / 3))]
        .into_iter()
        .collect();
    assert!(validate_context(&hidden).is_err());
    let many: Context = (0..4096)
        .map(|i| (format!("k{i}"), "v".repeat(8)))
        .collect();
    assert!(validate_context(&many).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

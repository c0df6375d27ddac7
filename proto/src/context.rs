//! The login context a person approves, and its digest.
//!
//! A context is a flat map of strings (`service`, `host`, `rhost`, `ssh_key`, `command`, `realm`,
//! `client`, `message`, …). Its digest binds a device's answer to exactly what was shown.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::signing::Framer;

/// What the person is approving, shown on the device. Keys sort, so the digest is canonical.
pub type Context = BTreeMap<String, String>;

/// Domain string that starts the digest input.
pub const CONTEXT_DOMAIN: &str = "pushauth/v1/context";

/// At most this many entries in a context.
pub const MAX_CONTEXT_ENTRIES: usize = 32;
/// Longest key, in bytes.
pub const MAX_CONTEXT_KEY_BYTES: usize = 64;
/// Longest value, in bytes.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 1024;

/// SHA-256 over `"pushauth/v1/context"` then each key and value in ascending key order, each
/// item length-framed.
pub fn context_digest(context: &Context) -> [u8; 32] {
    let mut framer = Framer::new(CONTEXT_DOMAIN);
    for (key, value) in context {
        framer.push(key.as_bytes());
        framer.push(value.as_bytes());
    }
    Sha256::digest(framer.finish()).into()
}

/// Why a context was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContextError {
    /// More than [`MAX_CONTEXT_ENTRIES`] entries (the count).
    #[error("context has {0} entries; at most {MAX_CONTEXT_ENTRIES} are allowed")]
    TooManyEntries(usize),
    /// A key outside the allowed alphabet or length (the key).
    #[error("context key {0:?} must be 1 to {MAX_CONTEXT_KEY_BYTES} characters of a-z, 0-9, '_', '-' or '.'")]
    BadKey(String),
    /// A value over [`MAX_CONTEXT_VALUE_BYTES`] (its key).
    #[error("context value for {0:?} is longer than {MAX_CONTEXT_VALUE_BYTES} bytes")]
    ValueTooLong(String),
    /// A control, format (bidi, zero-width), separator, private-use or unassigned character
    /// (see [`crate::text::is_hidden`]): it could make the value read as something else.
    #[error("context value for {key:?} holds the hidden character U+{code_point:04X} (control, bidi, format or unassigned characters are refused)")]
    HiddenCharacter {
        /// The key whose value holds it.
        key: String,
        /// Its Unicode scalar value.
        code_point: u32,
    },
}

/// Checks a context before it is stored or shown: bounded size, plain keys, and no hidden
/// characters in values ([`crate::text::is_hidden`]: a person must see exactly what they approve).
pub fn validate_context(context: &Context) -> Result<(), ContextError> {
    if context.len() > MAX_CONTEXT_ENTRIES {
        return Err(ContextError::TooManyEntries(context.len()));
    }
    for (key, value) in context {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_CONTEXT_KEY_BYTES
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
        if !key_ok {
            return Err(ContextError::BadKey(key.clone()));
        }
        if value.len() > MAX_CONTEXT_VALUE_BYTES {
            return Err(ContextError::ValueTooLong(key.clone()));
        }
        if let Some(c) = crate::text::first_hidden(value) {
            return Err(ContextError::HiddenCharacter {
                key: key.clone(),
                code_point: u32::from(c),
            });
        }
    }
    Ok(())
}

/// Deserializes a JSON context, refusing a key that appears twice. (Plain map deserialization
/// keeps the last value silently; another parser may keep the first, so a relying party, the
/// server and the device could disagree on what was shown. RFC 8259 section 4 leaves duplicate
/// names undefined.) For `#[serde(deserialize_with = "…")]`.
pub fn deserialize_unique<'de, D>(deserializer: D) -> Result<Context, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct UniqueKeys;

    impl<'de> serde::de::Visitor<'de> for UniqueKeys {
        type Value = Context;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of strings to strings")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
            let mut context = Context::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if context.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate context key {key:?}"
                    )));
                }
                context.insert(key, value);
            }
            Ok(context)
        }
    }

    deserializer.deserialize_map(UniqueKeys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn digest_ignores_insertion_order_but_not_content() {
        let a = ctx(&[("service", "sshd"), ("host", "web01")]);
        let b = ctx(&[("host", "web01"), ("service", "sshd")]);
        assert_eq!(context_digest(&a), context_digest(&b));
        let c = ctx(&[("host", "web02"), ("service", "sshd")]);
        assert_ne!(context_digest(&a), context_digest(&c));
        // Framing keeps "ab"+"c" apart from "a"+"bc".
        assert_ne!(
            context_digest(&ctx(&[("ab", "c")])),
            context_digest(&ctx(&[("a", "bc")]))
        );
    }

    #[test]
    fn issue9_item14_bidi_and_zero_width_values_are_refused() {
        // "sudo rm -rf /" shown as something harmless by a right-to-left override.
        for value in [
            "ls \u{202E}/ fr- mr",
            "web\u{200B}01",
            "\u{FEFF}prod",
            "a\u{2066}b\u{2069}",
            "x\u{2028}y",
        ] {
            assert!(
                matches!(
                    validate_context(&ctx(&[("command", value)])),
                    Err(ContextError::HiddenCharacter { .. })
                ),
                "{value:?}"
            );
        }
        assert!(validate_context(&ctx(&[("command", "café Ж 中 😀")])).is_ok());
    }

    #[test]
    fn validation() {
        assert!(validate_context(&ctx(&[("service", "sshd"), ("ssh_key", "SHA256:x")])).is_ok());
        assert!(matches!(
            validate_context(&ctx(&[("Service", "x")])),
            Err(ContextError::BadKey(_))
        ));
        assert!(matches!(
            validate_context(&ctx(&[("", "x")])),
            Err(ContextError::BadKey(_))
        ));
        assert!(matches!(
            validate_context(&ctx(&[("message", "hi\u{1b}[2J")])),
            Err(ContextError::HiddenCharacter { .. })
        ));
        let long = "x".repeat(MAX_CONTEXT_VALUE_BYTES + 1);
        assert!(matches!(
            validate_context(&ctx(&[("message", &long)])),
            Err(ContextError::ValueTooLong(_))
        ));
        let many: Context = (0..=MAX_CONTEXT_ENTRIES)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(matches!(
            validate_context(&many),
            Err(ContextError::TooManyEntries(_))
        ));
    }
}

//! Checks `test-vectors.json`: every message and signature in it must be what this crate computes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::context::Context;
use pushauth_proto::signing::{enroll_message, request_message, response_message, ResponseFields};
use pushauth_proto::{b64, context_digest, Alg, DevicePublicKey, DeviceSigningKey};
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/test-vectors.json"))
        .expect("test-vectors.json is readable");
    serde_json::from_str(&text).expect("test-vectors.json is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

/// The entry's signing key: `alg` + `secret_hex`, or (Ed25519, the older entries) `seed_hex`.
fn key(v: &Value) -> DeviceSigningKey {
    match v["alg"].as_str() {
        Some("es256") => {
            let secret = hex::decode(s(v, "secret_hex")).unwrap();
            DeviceSigningKey::from_secret(Alg::Es256, &secret).unwrap()
        }
        alg => {
            assert!(matches!(alg, None | Some("ed25519")), "alg {alg:?}");
            let seed: [u8; 32] = hex::decode(s(v, "seed_hex")).unwrap().try_into().unwrap();
            DeviceSigningKey::from_seed(&seed)
        }
    }
}

/// Every list holds entries of both algorithms.
fn assert_both_algs(items: &[Value]) {
    for alg in ["ed25519", "es256"] {
        assert!(
            items.iter().any(|v| key(v).alg().as_str() == alg),
            "no {alg} vector"
        );
    }
}

fn list<'a>(doc: &'a Value, key: &str) -> &'a Vec<Value> {
    let items = doc[key].as_array().unwrap();
    assert!(!items.is_empty(), "{key} has vectors");
    items
}

#[test]
fn keys() {
    let doc = vectors();
    assert_both_algs(list(&doc, "keys"));
    for v in list(&doc, "keys") {
        assert_eq!(key(v).public_key().to_b64(), s(v, "public_key"));
        assert_eq!(key(v).alg().as_str(), s(v, "alg"));
    }
}

#[test]
fn fingerprints() {
    let doc = vectors();
    let items = list(&doc, "fingerprint");
    for alg in ["ed25519", "es256"] {
        assert!(items.iter().any(|v| s(v, "alg") == alg), "no {alg} vector");
    }
    for v in items {
        let public = DevicePublicKey::from_wire(s(v, "alg"), s(v, "public_key")).unwrap();
        assert_eq!(public.fingerprint(), s(v, "fingerprint"));
    }
}

/// WebCrypto's ES256 signatures are not normalised: a high-S signature verifies.
#[test]
fn es256_high_s_signatures_verify() {
    for v in list(&vectors(), "es256_high_s") {
        let public = DevicePublicKey::from_wire("es256", s(v, "public_key")).unwrap();
        assert_eq!(key(v).public_key(), public);
        let msg = hex::decode(s(v, "message_hex")).unwrap();
        let sig = b64::decode(s(v, "signature"), "signature").unwrap();
        // s > n/2: its top byte is at least 0x7f (n/2 begins 0x7fffffff80...).
        assert!(sig[32] >= 0x7f, "the vector's s is high");
        assert!(public.verify(&msg, &sig).is_ok());
        assert_ne!(
            key(v).sign(&msg),
            sig,
            "deterministic signing gave the other form"
        );
    }
}

#[test]
fn context_digests() {
    for v in list(&vectors(), "context_digest") {
        let context: Context = serde_json::from_value(v["context"].clone()).unwrap();
        assert_eq!(b64::encode(context_digest(&context)), s(v, "digest"));
    }
}

#[test]
fn responses() {
    let doc = vectors();
    assert_both_algs(list(&doc, "response"));
    for v in list(&doc, "response") {
        let context: Context = serde_json::from_value(v["context"].clone()).unwrap();
        let digest = context_digest(&context);
        assert_eq!(b64::encode(digest), s(v, "context_digest"));
        let nonce = b64::decode(s(v, "rp_nonce"), "rp_nonce").unwrap();
        let fields = ResponseFields {
            challenge_id: s(v, "challenge_id"),
            user: s(v, "user"),
            device_id: s(v, "device_id"),
            rp_nonce: &nonce,
            context_digest: &digest,
            decision: s(v, "decision").parse().unwrap(),
            code: s(v, "code"),
            responded_at: s(v, "responded_at"),
        };
        let msg = response_message(&fields);
        assert_eq!(hex::encode(&msg), s(v, "message_hex"));
        let k = key(v);
        assert_eq!(k.sign_b64(&msg), s(v, "signature"));
        assert!(k.public_key().verify_b64(&msg, s(v, "signature")).is_ok());
    }
}

#[test]
fn requests() {
    let doc = vectors();
    assert_both_algs(list(&doc, "request"));
    for v in list(&doc, "request") {
        let msg = request_message(
            s(v, "method"),
            s(v, "path_and_query"),
            s(v, "ts"),
            s(v, "nonce"),
            s(v, "body").as_bytes(),
        );
        assert_eq!(hex::encode(&msg), s(v, "message_hex"));
        assert_eq!(key(v).sign_b64(&msg), s(v, "signature"));
        assert!(key(v)
            .public_key()
            .verify_b64(&msg, s(v, "signature"))
            .is_ok());
        let auth = DeviceAuth::parse(s(v, "header")).unwrap();
        assert_eq!(auth.sig, s(v, "signature"));
        assert_eq!(
            auth.message(
                s(v, "method"),
                s(v, "path_and_query"),
                s(v, "body").as_bytes()
            ),
            msg
        );
    }
}

#[test]
fn enrollment_proofs() {
    let doc = vectors();
    assert_both_algs(list(&doc, "enroll"));
    for v in list(&doc, "enroll") {
        let public = DevicePublicKey::from_wire(s(v, "alg"), s(v, "public_key")).unwrap();
        let msg = enroll_message(s(v, "token"), s(v, "alg"), &public.to_bytes());
        assert_eq!(hex::encode(&msg), s(v, "message_hex"));
        assert!(public.verify_b64(&msg, s(v, "proof")).is_ok());
        assert_eq!(key(v).sign_b64(&msg), s(v, "proof"));
        assert_eq!(key(v).public_key(), public);
    }
}

/// Issue 12: every `hotp` entry is what [`pushauth_proto::hotp::hotp`] computes, the RFC 4226
/// Appendix D values are among them, and `secret` is `secret_hex` in base64url.
#[test]
fn issue12_hotp_vectors() {
    use pushauth_proto::hotp::{hotp, HotpAlg};
    let v = vectors();
    let entries = v["hotp"].as_array().expect("hotp vectors");
    assert!(entries.len() >= 30);
    for e in entries {
        let alg: HotpAlg = s(e, "algorithm").parse().unwrap();
        let secret = hex::decode(s(e, "secret_hex")).unwrap();
        assert_eq!(b64::decode(s(e, "secret"), "secret").unwrap(), secret);
        let counter = e["counter"].as_u64().unwrap();
        let digits = e["digits"].as_u64().unwrap() as u32;
        let code = hotp(alg, &secret, counter, digits).unwrap();
        assert_eq!(code.as_str(), s(e, "code"), "{e}");
    }
    let rfc: Vec<String> = entries
        .iter()
        .filter(|e| {
            s(e, "algorithm") == "sha1" && e["digits"] == 6 && e["counter"].as_u64() < Some(10)
        })
        .map(|e| s(e, "code").to_owned())
        .collect();
    assert_eq!(
        rfc,
        [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489"
        ]
    );
}

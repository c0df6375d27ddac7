//! Issue 11: the formats proto uses for ES256 are WebCrypto's own. Node's WebCrypto (the same
//! API and byte formats as a browser's) checks `test-vectors.json` (`webcrypto.mjs` beside this
//! file), then signs with a fresh P-256 key; this side verifies those randomized signatures,
//! about half of which have a high S that WebCrypto does not normalise.
//!
//! Needs `node` (20 or later) on PATH, as the Keycloak suite does (`scripts/setup` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::process::Command;

use pushauth_proto::{b64, DevicePublicKey};
use serde_json::Value;

#[test]
fn issue11_webcrypto_checks_the_vectors_and_its_es256_signatures_verify_here() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webcrypto.mjs");
    let out = Command::new("node")
        .arg(script)
        .output()
        .expect("node 20+ on PATH (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "webcrypto.mjs failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["checked"]["es256"].as_u64().unwrap() >= 11, "{doc}");
    let public = DevicePublicKey::from_wire("es256", doc["public_key"].as_str().unwrap()).unwrap();
    let mut high_s = 0;
    for item in doc["items"].as_array().unwrap() {
        let message = hex::decode(item["message_hex"].as_str().unwrap()).unwrap();
        let sig = b64::decode(item["signature"].as_str().unwrap(), "signature").unwrap();
        assert_eq!(sig.len(), 64);
        public.verify(&message, &sig).unwrap();
        assert!(public.verify(b"another message", &sig).is_err());
        let parsed = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        if parsed.normalize_s().is_some() {
            high_s += 1;
        }
    }
    // 32 randomized signatures all low-S would happen once in 2^32 runs.
    assert!(high_s > 0, "WebCrypto gave no high-S signature in 32");
}

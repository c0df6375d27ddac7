//! The sidecar's result token: its own Ed25519 signature over what a resolved login was, so the
//! shim lets a login through only for this challenge, this user and this shim nonce.
//!
//! Signed bytes (proto's framing, each field a 4-byte big-endian length then its UTF-8 text):
//! `"pushauth/v1/sidecar-result" challenge_id user nonce outcome expires_at`, where `expires_at`
//! is the token's expiry in Unix seconds as decimal text. `test-vectors.json` beside this crate
//! is the contract the Java shim's tests read too.

use pushauth_proto::signing::Framer;
use pushauth_proto::{DevicePublicKey, DeviceSigningKey, ProtoError};
use serde::{Deserialize, Serialize};

/// Domain of the sidecar's result signature.
pub const RESULT_DOMAIN: &str = "pushauth/v1/sidecar-result";

/// What a result token covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultFields<'a> {
    /// The login's challenge id.
    pub challenge_id: &'a str,
    /// The pushauthd user.
    pub user: &'a str,
    /// The shim's own per-login nonce, exactly as it sent it.
    pub nonce: &'a str,
    /// `approved`, `denied`, `reported`, `code_mismatch`, `expired` or `cancelled`.
    pub outcome: &'a str,
    /// Unix seconds after which the token is worthless.
    pub expires_at: u64,
}

/// The signed bytes.
pub fn result_message(fields: &ResultFields<'_>) -> Vec<u8> {
    let expires = fields.expires_at.to_string();
    let mut framer = Framer::new(RESULT_DOMAIN);
    framer
        .push(fields.challenge_id.as_bytes())
        .push(fields.user.as_bytes())
        .push(fields.nonce.as_bytes())
        .push(fields.outcome.as_bytes())
        .push(expires.as_bytes());
    framer.finish()
}

/// A result token as the shim receives it (the `result` of an ended login).
///
/// Fields in alphabetical order: the order they have always been sent in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultToken {
    /// The login's challenge id.
    pub challenge_id: String,
    /// Unix seconds after which the token is worthless.
    pub expires_at: u64,
    /// The shim's nonce, exactly as it sent it.
    pub nonce: String,
    /// How the login ended (a [`crate::wire::LoginOutcome`] word, never `pending`).
    pub outcome: String,
    /// base64url Ed25519 signature over [`result_message`].
    pub signature: String,
    /// The pushauthd user.
    pub user: String,
}

impl ResultToken {
    /// Checks the signature against the sidecar's public key (the shim does the same in Java).
    pub fn verify(&self, key: &DevicePublicKey) -> Result<(), ProtoError> {
        let message = result_message(&ResultFields {
            challenge_id: &self.challenge_id,
            user: &self.user,
            nonce: &self.nonce,
            outcome: &self.outcome,
            expires_at: self.expires_at,
        });
        key.verify_b64(&message, &self.signature)
    }
}

/// Signs result tokens with the sidecar's key.
#[derive(Debug)]
pub struct ResultSigner {
    key: DeviceSigningKey,
}

impl ResultSigner {
    /// A signer with the sidecar's key (`signing_key_file`).
    pub fn new(key: DeviceSigningKey) -> Self {
        ResultSigner { key }
    }

    /// The public key shims are configured with (base64url of the raw 32 bytes).
    pub fn public_key(&self) -> DevicePublicKey {
        self.key.public_key()
    }

    /// Signs `fields`.
    pub fn sign(&self, fields: &ResultFields<'_>) -> ResultToken {
        ResultToken {
            challenge_id: fields.challenge_id.to_owned(),
            user: fields.user.to_owned(),
            nonce: fields.nonce.to_owned(),
            outcome: fields.outcome.to_owned(),
            expires_at: fields.expires_at,
            signature: self.key.sign_b64(&result_message(fields)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_proto::b64;
    use serde_json::Value;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The vectors file is what this code produces, byte for byte (Ed25519 is deterministic).
    #[test]
    fn test_vectors_match() {
        let text = include_str!("../test-vectors.json");
        let doc: Value = serde_json::from_str(text).unwrap();
        assert_eq!(doc["domain"], RESULT_DOMAIN);
        let seed: [u8; 32] = b64::decode_array(doc["seed"].as_str().unwrap(), "seed").unwrap();
        let signer = ResultSigner::new(DeviceSigningKey::from_seed(&seed));
        assert_eq!(
            signer.public_key().to_b64(),
            doc["public_key"].as_str().unwrap()
        );
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 3);
        for v in vectors {
            let fields = ResultFields {
                challenge_id: v["challenge_id"].as_str().unwrap(),
                user: v["user"].as_str().unwrap(),
                nonce: v["nonce"].as_str().unwrap(),
                outcome: v["outcome"].as_str().unwrap(),
                expires_at: v["expires_at"].as_u64().unwrap(),
            };
            assert_eq!(
                hex(&result_message(&fields)),
                v["message_hex"].as_str().unwrap()
            );
            let token = signer.sign(&fields);
            assert_eq!(token.signature, v["signature"].as_str().unwrap());
            assert!(token.verify(&signer.public_key()).is_ok());
        }
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let signer = ResultSigner::new(DeviceSigningKey::from_seed(&[3u8; 32]));
        let token = signer.sign(&ResultFields {
            challenge_id: "c1",
            user: "alice",
            nonce: "n1",
            outcome: "approved",
            expires_at: 1_900_000_000,
        });
        let key = signer.public_key();
        assert!(token.verify(&key).is_ok());
        for tamper in [
            |t: &mut ResultToken| t.challenge_id = "c2".into(),
            |t: &mut ResultToken| t.user = "bob".into(),
            |t: &mut ResultToken| t.nonce = "n2".into(),
            |t: &mut ResultToken| t.outcome = "denied".into(),
            |t: &mut ResultToken| t.expires_at += 1,
        ] {
            let mut forged = token.clone();
            tamper(&mut forged);
            assert_eq!(forged.verify(&key), Err(ProtoError::BadSignature));
        }
        // Framing keeps field boundaries: moving a character between fields changes the bytes.
        let a = result_message(&ResultFields {
            challenge_id: "ab",
            user: "c",
            nonce: "n",
            outcome: "approved",
            expires_at: 1,
        });
        let b = result_message(&ResultFields {
            challenge_id: "a",
            user: "bc",
            nonce: "n",
            outcome: "approved",
            expires_at: 1,
        });
        assert_ne!(a, b);
    }

    /// Prints fresh vectors: `cargo test -p pushauth-idp-sidecar print_vectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_vectors() {
        let seed = [0x5au8; 32];
        let signer = ResultSigner::new(DeviceSigningKey::from_seed(&seed));
        let cases = [
            (
                "Q2hhbGxlbmdlSWQxMjM0NQ",
                "alice",
                "bm9uY2Utb25lLWZvci1sb2dpbi0xMjM0NTY3ODkwYWJj",
                "approved",
                1_900_000_000u64,
            ),
            (
                "Q2hhbGxlbmdlSWQxMjM0NQ",
                "alice",
                "bm9uY2Utb25lLWZvci1sb2dpbi0xMjM0NTY3ODkwYWJj",
                "denied",
                1_900_000_000,
            ),
            (
                "-startsWithDash_0123456",
                "jürgen@example.org",
                "n",
                "approved",
                1_700_000_060,
            ),
            ("abc", "", "", "expired", 0),
        ];
        let vectors: Vec<Value> = cases
            .iter()
            .map(|(id, user, nonce, outcome, exp)| {
                let fields = ResultFields {
                    challenge_id: id,
                    user,
                    nonce,
                    outcome,
                    expires_at: *exp,
                };
                let token = signer.sign(&fields);
                serde_json::json!({
                    "challenge_id": id, "user": user, "nonce": nonce, "outcome": outcome,
                    "expires_at": exp, "message_hex": hex(&result_message(&fields)),
                    "signature": token.signature,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "about": "pushauth sidecar result tokens: Ed25519 over proto framing of domain, challenge_id, user, nonce, outcome, expires_at (decimal Unix seconds). Read by idp-sidecar and keycloak tests.",
            "domain": RESULT_DOMAIN,
            "seed": b64::encode(seed),
            "public_key": signer.public_key().to_b64(),
            "vectors": vectors,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap());
    }
}

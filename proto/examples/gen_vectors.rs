//! Writes `test-vectors.json` from fixed inputs: `cargo run -p pushauth-proto --example gen_vectors > proto/test-vectors.json`.
//! Ed25519 and ES256 (RFC 6979) signing are both deterministic here, so the file only changes when
//! the framing does (a protocol break). ES256 entries carry `"alg": "es256"` and the P-256 scalar as
//! `secret_hex`; entries without `alg` are Ed25519 with `seed_hex`. A browser's ES256 signatures are
//! randomized: other implementations verify these signatures rather than reproduce them.

use pushauth_proto::context::Context;
use pushauth_proto::signing::{
    enroll_message, request_message, response_message, Framer, ResponseFields,
};
use pushauth_proto::{b64, context_digest, Alg, Decision, DeviceSigningKey};
use serde_json::{json, Value};

fn ctx(pairs: &[(&str, &str)]) -> Context {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn context_framed(c: &Context) -> Vec<u8> {
    let mut f = Framer::new(pushauth_proto::context::CONTEXT_DOMAIN);
    for (k, v) in c {
        f.push(k.as_bytes());
        f.push(v.as_bytes());
    }
    f.finish()
}

/// The ES256 keys: the same 32 bytes as the Ed25519 seeds, read as P-256 scalars.
fn es256_key(secret: &[u8; 32]) -> DeviceSigningKey {
    match DeviceSigningKey::from_secret(Alg::Es256, secret) {
        Ok(key) => key,
        Err(e) => panic!("fixed P-256 scalar is valid: {e}"),
    }
}

/// The fields that name an entry's key: `seed_hex` (Ed25519, as before ES256 existed) or
/// `alg` + `secret_hex`.
fn key_fields(alg: Alg, secret: &[u8; 32]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    match alg {
        Alg::Ed25519 => {
            map.insert("seed_hex".into(), json!(hex::encode(secret)));
        }
        Alg::Es256 => {
            map.insert("alg".into(), json!("es256"));
            map.insert("secret_hex".into(), json!(hex::encode(secret)));
        }
    }
    map
}

fn signer(alg: Alg, secret: &[u8; 32]) -> DeviceSigningKey {
    match alg {
        Alg::Ed25519 => DeviceSigningKey::from_seed(secret),
        Alg::Es256 => es256_key(secret),
    }
}

/// Appends `extra` to the key fields of (alg, secret).
fn entry(alg: Alg, secret: &[u8; 32], extra: Value) -> Value {
    let mut map = key_fields(alg, secret);
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    Value::Object(map)
}

/// HOTP (RFC 4226): the Appendix D vectors (SHA-1, the ASCII secret "1234…890", counters 0
/// to 9, 6 digits), the same with 8 digits, and SHA-256 with RFC 6238's 32-byte ASCII seed and
/// a 32-byte binary secret, 6, 7 and 8 digits.
fn hotp_vectors() -> Vec<Value> {
    use pushauth_proto::hotp::{hotp, HotpAlg};
    let binary: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let sets: [(HotpAlg, &[u8], &[u32]); 3] = [
        (HotpAlg::Sha1, b"12345678901234567890", &[6, 8]),
        (
            HotpAlg::Sha256,
            b"12345678901234567890123456789012",
            &[6, 8],
        ),
        (HotpAlg::Sha256, &binary, &[6, 7, 8]),
    ];
    let mut out = Vec::new();
    for (alg, secret, digits) in sets {
        for &d in digits {
            for counter in (0u64..10).chain([255, 256, 4_294_967_296]) {
                let code = match hotp(alg, secret, counter, d) {
                    Ok(code) => code,
                    Err(e) => panic!("fixed HOTP input is valid: {e}"),
                };
                out.push(json!({
                    "algorithm": alg.as_str(), "secret_hex": hex::encode(secret),
                    "secret": b64::encode(secret), "counter": counter, "digits": d,
                    "code": code.as_str(),
                }));
            }
        }
    }
    out
}

fn main() -> Result<(), serde_json::Error> {
    let seeds: [[u8; 32]; 2] = [[0x11; 32], core::array::from_fn(|i| i as u8)];
    let mut keys: Vec<Value> = seeds
        .iter()
        .map(|s| {
            let k = DeviceSigningKey::from_seed(s);
            json!({"seed_hex": hex::encode(s), "alg": "ed25519", "public_key": k.public_key().to_b64()})
        })
        .collect();
    for s in &seeds {
        let k = es256_key(s);
        keys.push(entry(
            Alg::Es256,
            s,
            json!({"public_key": k.public_key().to_b64()}),
        ));
    }
    let mut fingerprints = Vec::new();
    for alg in [Alg::Ed25519, Alg::Es256] {
        for s in &seeds {
            let public = signer(alg, s).public_key();
            fingerprints.push(json!({
                "alg": alg.as_str(), "public_key": public.to_b64(), "fingerprint": public.fingerprint(),
            }));
        }
    }

    let contexts = [
        ctx(&[]),
        ctx(&[
            ("service", "sshd"),
            ("host", "web01"),
            ("rhost", "192.0.2.7"),
            ("user", "alice"),
        ]),
        ctx(&[
            ("service", "keycloak"),
            ("realm", "acme"),
            ("client", "portal"),
            ("message", "Grüße, ✓"),
        ]),
    ];
    let context_vectors: Vec<Value> = contexts
        .iter()
        .map(|c| {
            json!({"context": c, "framed_hex": hex::encode(context_framed(c)), "digest": b64::encode(context_digest(c))})
        })
        .collect();

    let nonce: [u8; 32] = core::array::from_fn(|i| (0xa0 + i) as u8);
    let mut responses = Vec::new();
    for alg in [Alg::Ed25519, Alg::Es256] {
        for (i, (decision, code, seed)) in [
            (Decision::Approve, "42", seeds[0]),
            (Decision::Deny, "", seeds[1]),
            (Decision::Report, "", seeds[0]),
            (Decision::Approve, "", seeds[1]),
        ]
        .into_iter()
        .enumerate()
        {
            let c = &contexts[1 + i % 2];
            let digest = context_digest(c);
            let fields = ResponseFields {
                challenge_id: "Zm9vYmFyYmF6cXV4cXV1eA",
                user: "alice",
                device_id: "ZGV2aWNlLW9uZS1pZC0wMQ",
                rp_nonce: &nonce,
                context_digest: &digest,
                decision,
                code,
                responded_at: "2026-11-23T10:00:00Z",
            };
            let msg = response_message(&fields);
            let key = signer(alg, &seed);
            responses.push(entry(
                alg,
                &seed,
                json!({
                    "challenge_id": fields.challenge_id,
                    "user": fields.user,
                    "device_id": fields.device_id,
                    "rp_nonce": b64::encode(nonce),
                    "context": c,
                    "context_digest": b64::encode(digest),
                    "decision": decision.as_str(),
                    "code": code,
                    "responded_at": fields.responded_at,
                    "message_hex": hex::encode(&msg),
                    "signature": key.sign_b64(&msg),
                }),
            ));
        }
    }

    let mut requests = Vec::new();
    for alg in [Alg::Ed25519, Alg::Es256] {
        for (method, path, body) in [
            ("GET", "/v1/device/challenges?wait=25", ""),
            (
                "POST",
                "/v1/device/challenges/Zm9vYmFyYmF6cXV4cXV1eA/ack",
                "",
            ),
            (
                "POST",
                "/v1/device/challenges/Zm9vYmFyYmF6cXV4cXV1eA/response",
                "{\"decision\":\"approve\"}",
            ),
        ] {
            let key = signer(alg, &seeds[0]);
            let ts = "1795428000";
            let nonce = "bm9uY2Utb25lLXRpbWUtMDE";
            let msg = request_message(method, path, ts, nonce, body.as_bytes());
            let sig = key.sign_b64(&msg);
            requests.push(entry(alg, &seeds[0], json!({
                "device": "ZGV2aWNlLW9uZS1pZC0wMQ",
                "method": method, "path_and_query": path, "ts": ts, "nonce": nonce, "body": body,
                "message_hex": hex::encode(&msg),
                "signature": sig,
                "header": format!("PushAuth device=\"ZGV2aWNlLW9uZS1pZC0wMQ\", ts=\"{ts}\", nonce=\"{nonce}\", sig=\"{sig}\""),
            })));
        }
    }

    let mut enroll = Vec::new();
    for alg in [Alg::Ed25519, Alg::Es256] {
        for s in &seeds {
            let key = signer(alg, s);
            let token = "ZW5yb2xsbWVudC10b2tlbi0wMDAwMDAwMDAwMDAwMDA";
            let public = key.public_key();
            let msg = enroll_message(token, alg.as_str(), &public.to_bytes());
            enroll.push(entry(alg, s, json!({
                "token": token, "alg": alg.as_str(),
                "public_key": public.to_b64(), "message_hex": hex::encode(&msg), "proof": key.sign_b64(&msg),
            })));
        }
    }

    // WebCrypto does not normalise s: a high-S signature (r, n - s) must verify everywhere.
    let mut high_s = Vec::new();
    for (i, s) in seeds.iter().enumerate() {
        let key = es256_key(s);
        let msg = format!("pushauth high-S vector {i}").into_bytes();
        let high = match high_s_form(&key.sign(&msg)) {
            Some(sig) => sig,
            None => panic!("a signature over fixed bytes is well formed"),
        };
        high_s.push(entry(
            Alg::Es256,
            s,
            json!({
                "public_key": key.public_key().to_b64(), "message_hex": hex::encode(&msg),
                "signature": b64::encode(high), "valid": true,
            }),
        ));
    }

    let hotp_vectors = hotp_vectors();
    let doc = json!({
        "about": "pushauth v1 signing test vectors. Every field is length-framed (4-byte big-endian length, then bytes). Binary values are unpadded base64url unless named *_hex. Entries with \"alg\": \"es256\" use ECDSA P-256 with SHA-256 (public key: 65-byte uncompressed SEC1 point; signature: 64-byte r||s; secret_hex: the private scalar; RFC 6979 deterministic here, randomized in browsers, so verify rather than reproduce); other entries are Ed25519 with seed_hex. fingerprint: \"SHA256:\" + unpadded standard base64 of SHA-256 over the raw public key. es256_high_s: signatures with s above n/2, which verifiers must accept. hotp: RFC 4226 HOTP (HMAC-SHA-1 or HMAC-SHA-256 over the 8-byte big-endian counter, dynamic truncation, mod 10^digits, zero-padded); the sha1 6-digit entries for counters 0-9 are RFC 4226 Appendix D. Generated by proto/examples/gen_vectors.rs; checked by proto/tests/vectors.rs.",
        "keys": keys,
        "fingerprint": fingerprints,
        "context_digest": context_vectors,
        "response": responses,
        "request": requests,
        "enroll": enroll,
        "es256_high_s": high_s,
        "hotp": hotp_vectors,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// `(r, n - s)` if `sig` has low S, else `sig` itself: always the high-S form.
fn high_s_form(sig: &[u8]) -> Option<Vec<u8>> {
    use p256::ecdsa::Signature;
    let parsed = Signature::from_slice(sig).ok()?;
    if parsed.normalize_s().is_some() {
        return Some(sig.to_vec());
    }
    let (r, s) = parsed.split_scalars();
    let flipped = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).ok()?;
    Some(flipped.to_bytes().to_vec())
}

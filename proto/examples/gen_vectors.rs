//! Writes `test-vectors.json` from fixed inputs: `cargo run -p pushauth-proto --example gen_vectors > proto/test-vectors.json`.
//! Ed25519 is deterministic, so the file only changes when the framing does (which is a protocol break).

use pushauth_proto::context::Context;
use pushauth_proto::signing::{
    enroll_message, request_message, response_message, Framer, ResponseFields,
};
use pushauth_proto::{b64, context_digest, Decision, DeviceSigningKey};
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

fn main() -> Result<(), serde_json::Error> {
    let seeds: [[u8; 32]; 2] = [[0x11; 32], core::array::from_fn(|i| i as u8)];
    let keys: Vec<Value> = seeds
        .iter()
        .map(|s| {
            let k = DeviceSigningKey::from_seed(s);
            json!({"seed_hex": hex::encode(s), "alg": "ed25519", "public_key": k.public_key().to_b64()})
        })
        .collect();

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
        let key = DeviceSigningKey::from_seed(&seed);
        responses.push(json!({
            "seed_hex": hex::encode(seed),
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
        }));
    }

    let mut requests = Vec::new();
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
        let key = DeviceSigningKey::from_seed(&seeds[0]);
        let ts = "1795428000";
        let nonce = "bm9uY2Utb25lLXRpbWUtMDE";
        let msg = request_message(method, path, ts, nonce, body.as_bytes());
        let sig = key.sign_b64(&msg);
        requests.push(json!({
            "seed_hex": hex::encode(seeds[0]),
            "device": "ZGV2aWNlLW9uZS1pZC0wMQ",
            "method": method, "path_and_query": path, "ts": ts, "nonce": nonce, "body": body,
            "message_hex": hex::encode(&msg),
            "signature": sig,
            "header": format!("PushAuth device=\"ZGV2aWNlLW9uZS1pZC0wMQ\", ts=\"{ts}\", nonce=\"{nonce}\", sig=\"{sig}\""),
        }));
    }

    let enroll: Vec<Value> = seeds
        .iter()
        .map(|s| {
            let key = DeviceSigningKey::from_seed(s);
            let token = "ZW5yb2xsbWVudC10b2tlbi0wMDAwMDAwMDAwMDAwMDA";
            let public = key.public_key();
            let msg = enroll_message(token, "ed25519", &public.to_bytes());
            json!({
                "seed_hex": hex::encode(s), "token": token, "alg": "ed25519",
                "public_key": public.to_b64(), "message_hex": hex::encode(&msg), "proof": key.sign_b64(&msg),
            })
        })
        .collect();

    let doc = json!({
        "about": "pushauth v1 signing test vectors. Every field is length-framed (4-byte big-endian length, then bytes). Binary values are unpadded base64url unless named *_hex. Generated by proto/examples/gen_vectors.rs; checked by proto/tests/vectors.rs.",
        "keys": keys,
        "context_digest": context_vectors,
        "response": responses,
        "request": requests,
        "enroll": enroll,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

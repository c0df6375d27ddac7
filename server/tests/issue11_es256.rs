//! Issue 11, "ES256 end to end": pushauthd enrolls, authenticates and takes answers from an ECDSA
//! P-256 device exactly as from an Ed25519 one, and refuses every forged, mislabelled or
//! malformed ES256 key or signature with the existing error codes, storing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use p256::ecdsa::Signature;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::signing::{enroll_message, response_message, ResponseFields};
use pushauth_proto::{b64, Alg, Decision, DevicePublicKey, DeviceSigningKey};
use serde_json::{json, Value};

fn es256() -> DeviceSigningKey {
    DeviceSigningKey::generate_alg(Alg::Es256).unwrap()
}

fn devices(srv: &Srv, user: &str) -> Vec<Value> {
    let r = srv.admin("GET", &format!("/v1/admin/users/{user}/devices"), None);
    if r.status == 404 {
        return Vec::new();
    }
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["devices"].as_array().unwrap().clone()
}

fn enroll(srv: &Srv, body: &Value) -> Resp {
    srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(body.to_string().as_bytes()),
    )
}

/// An enrollment body for `token`: `public` labelled `alg`, the proof signed by `signer` over
/// what that label and key frame.
fn body(token: &str, alg: &str, public: &[u8], signer: &DeviceSigningKey) -> Value {
    let proof = signer.sign_b64(&enroll_message(token, alg, public));
    json!({"token": token, "name": "phone", "alg": alg, "public_key": b64::encode(public), "proof": proof})
}

/// `(r, n - s)`: the other valid signature over the same message, as WebCrypto may produce it.
fn flip_s(sig: &[u8]) -> Vec<u8> {
    let parsed = Signature::from_slice(sig).unwrap();
    let (r, s) = parsed.split_scalars();
    Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
        .unwrap()
        .to_bytes()
        .to_vec()
}

/// An es256 device enrolled through the real HTTP API (the device library, as the CLI does) is
/// listed with `alg = "es256"` and its 65-byte key, acks and approves; the relying party's
/// outcome carries a signature that verifies with that key.
#[test]
fn issue11_es256_device_enrolls_lists_acks_and_approves() {
    let srv = start();
    let rp = srv.rp_key();
    let phone = srv.enroll_alg("alice", "browser phone", Alg::Es256);
    let listed = devices(&srv, "alice");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["alg"], "es256");
    let public =
        DevicePublicKey::from_wire("es256", listed[0]["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(public.to_bytes().len(), 65);
    assert_eq!(public, phone.signing_key().public_key());
    let r = srv.rp(&rp, "GET", "/v1/users/alice/devices", None);
    assert_eq!(r.json["devices"][0]["alg"], "es256", "{}", r.text);

    let (r, c) = srv.create(&rp, "alice", json!({}));
    let c = c.unwrap();
    assert_eq!(r.json["device_info"][0]["alg"], "es256", "{}", r.text);
    let pending = phone.find(&c.id);
    phone.ack(&pending.id).unwrap();
    assert_eq!(srv.status(&rp, &c.id).json["state"], "acknowledged");
    let code = c.code.clone().unwrap();
    let answer = phone.approve(&c.id, &code);
    assert_eq!(answer.state.as_str(), "approved");
    let r = srv.status(&rp, &c.id);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    assert_eq!(r.json["device_id"], phone.id());
    let message = response_message(&ResponseFields {
        challenge_id: &c.id,
        user: "alice",
        device_id: phone.id(),
        rp_nonce: &c.rp_nonce,
        context_digest: &c.digest,
        decision: Decision::Approve,
        code: &code,
        responded_at: r.json["responded_at"].as_str().unwrap(),
    });
    let sig = b64::decode(r.json["signature"].as_str().unwrap(), "signature").unwrap();
    assert_eq!(sig.len(), 64);
    public.verify(&message, &sig).unwrap();
}

/// Enrollment proofs: a forged es256 proof, a proof by an Ed25519 key labelled es256 (and the
/// reverse), compressed, off-curve and identity points, and 63- or 65-byte proofs are each
/// refused with the existing codes; nothing is stored and the link stays usable. A high-S proof
/// (as WebCrypto makes half the time) is accepted.
#[test]
fn issue11_es256_bad_enrollments_are_refused_and_store_nothing() {
    let srv = start();
    let token = srv.enrollment("bob", None);
    let key = es256();
    let public = key.public_key().to_bytes();
    let ed = DeviceSigningKey::generate().unwrap();
    let ed_public = ed.public_key().to_bytes();

    let mut forged = body(&token, "es256", &public, &key);
    let mut proof = b64::decode(forged["proof"].as_str().unwrap(), "proof").unwrap();
    proof[40] ^= 1;
    forged["proof"] = json!(b64::encode(&proof));
    assert_error(&enroll(&srv, &forged), 401, "bad_signature");

    // Signed by a different (Ed25519) key over the es256 message.
    assert_error(
        &enroll(&srv, &body(&token, "es256", &public, &ed)),
        401,
        "bad_signature",
    );
    // Signed by a different es256 key.
    assert_error(
        &enroll(&srv, &body(&token, "es256", &public, &es256())),
        401,
        "bad_signature",
    );
    // The proof must cover the alg the request names: signed over "ed25519" + the P-256 point.
    let mut relabelled = body(&token, "ed25519", &public, &key);
    relabelled["alg"] = json!("es256");
    assert_error(&enroll(&srv, &relabelled), 401, "bad_signature");
    // An Ed25519 key and proof labelled es256, and an es256 key and proof labelled ed25519.
    assert_error(
        &enroll(&srv, &body(&token, "es256", &ed_public, &ed)),
        400,
        "malformed_request",
    );
    assert_error(
        &enroll(&srv, &body(&token, "ed25519", &public, &key)),
        400,
        "malformed_request",
    );
    // The same point compressed; off the curve; the identity; X ‖ Y without its tag.
    let point = p256::PublicKey::from_sec1_bytes(&public).unwrap();
    let compressed = point.to_encoded_point(true).as_bytes().to_vec();
    let mut off_curve = public.clone();
    off_curve[64] ^= 1;
    for bad in [compressed, off_curve, vec![0u8], public[1..].to_vec()] {
        assert_error(
            &enroll(&srv, &body(&token, "es256", &bad, &key)),
            400,
            "malformed_request",
        );
    }
    // A proof one byte short, one byte long.
    let good = body(&token, "es256", &public, &key);
    let proof = b64::decode(good["proof"].as_str().unwrap(), "proof").unwrap();
    for bad in [proof[..63].to_vec(), [proof.clone(), vec![0]].concat()] {
        let mut b = good.clone();
        b["proof"] = json!(b64::encode(&bad));
        assert_error(&enroll(&srv, &b), 401, "bad_signature");
    }
    assert!(devices(&srv, "bob").is_empty());
    assert!(!srv.audit_kinds().iter().any(|k| k == "device_enrolled"));

    // The link still works, with the high-S form of a genuine proof.
    let mut high = good.clone();
    high["proof"] = json!(b64::encode(flip_s(&proof)));
    let r = enroll(&srv, &high);
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = devices(&srv, "bob");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["alg"], "es256");
    assert_eq!(listed[0]["public_key"], b64::encode(&public));
    assert!(srv.audit_kinds().iter().any(|k| k == "device_enrolled"));
}

/// Device request signatures of an es256 device: forged, made by another key (Ed25519 or
/// P-256), or 63/65 bytes long are `bad_signature`; the high-S form of a genuine one passes.
#[test]
fn issue11_es256_device_request_signatures() {
    let srv = start();
    let phone = srv.enroll_alg("carol", "phone", Alg::Es256);
    let key = phone.signing_key();
    let path = "/v1/device/challenges?wait=0";
    let send = |auth: &DeviceAuth| srv.call("GET", path, Some(&auth.to_string()), None);
    let signed = |k: &DeviceSigningKey| {
        DeviceAuth::sign(k, phone.id(), "GET", path, b"", now_secs()).unwrap()
    };
    let genuine = signed(&key);
    let sig = b64::decode(&genuine.sig, "sig").unwrap();
    let mut bad = Vec::new();
    let mut forged = sig.clone();
    forged[3] ^= 0x10;
    bad.push(forged);
    bad.push(sig[..63].to_vec());
    bad.push([sig.clone(), vec![0]].concat());
    for wrong in bad {
        let mut auth = signed(&key);
        auth.sig = b64::encode(&wrong);
        assert_error(&send(&auth), 401, "bad_signature");
    }
    assert_error(
        &send(&signed(&DeviceSigningKey::generate().unwrap())),
        401,
        "bad_signature",
    );
    assert_error(&send(&signed(&es256())), 401, "bad_signature");

    let mut high = signed(&key);
    let raw = b64::decode(&high.sig, "sig").unwrap();
    high.sig = b64::encode(flip_s(&raw));
    let r = send(&high);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(&genuine);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Answers of an es256 device: a forged signature, one by another key, or a 63/65-byte one is
/// `bad_signature` and the challenge stays open; the genuine answer then approves.
#[test]
fn issue11_es256_forged_answers_change_nothing() {
    let srv = start();
    let rp = srv.rp_key();
    let phone = srv.enroll_alg("dave", "phone", Alg::Es256);
    let dev = Device {
        id: phone.id().to_owned(),
        user: "dave".into(),
        key: phone.signing_key(),
    };
    let c = srv.challenge(&rp, "dave");
    let code = c.code.clone().unwrap();
    let path = format!("/v1/device/challenges/{}/response", c.id);
    let genuine: Value =
        serde_json::from_slice(&dev.answer_body(&c, Decision::Approve, &code)).unwrap();
    let sig = b64::decode(genuine["signature"].as_str().unwrap(), "signature").unwrap();
    let mut forged = sig.clone();
    forged[50] ^= 4;
    let other_ed = Device {
        id: dev.id.clone(),
        user: "dave".into(),
        key: DeviceSigningKey::generate().unwrap(),
    };
    let other_ed_body: Value =
        serde_json::from_slice(&other_ed.answer_body(&c, Decision::Approve, &code)).unwrap();
    let other_ed_sig = b64::decode(other_ed_body["signature"].as_str().unwrap(), "s").unwrap();
    for wrong in [
        forged,
        sig[..63].to_vec(),
        [sig.clone(), vec![0]].concat(),
        other_ed_sig,
    ] {
        let mut b = genuine.clone();
        b["signature"] = json!(b64::encode(&wrong));
        let r = dev.send(&srv, "POST", &path, b.to_string().as_bytes());
        assert_error(&r, 401, "bad_signature");
        assert_eq!(srv.status(&rp, &c.id).json["state"], "pending");
    }
    let r = dev.send(&srv, "POST", &path, genuine.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "approved");
    assert_eq!(
        srv.status(&rp, &c.id).json["signature"],
        genuine["signature"]
    );
}

/// `pushauthd devices` shows each device's algorithm, key fingerprint (as the device shows it)
/// and key, so an administrator can compare a phone's fingerprint and pin its key.
#[test]
fn issue11_pushauthd_devices_prints_alg_fingerprint_and_key() {
    let srv = start();
    let phone = srv.enroll_alg("erin", "phone", Alg::Es256);
    let public = phone.signing_key().public_key();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["devices", "erin"])
        .args(srv.store_args())
        .env_remove("PUSHAUTHD_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with(phone.id())).unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[2], "es256", "{line}");
    assert!(fields.contains(&public.fingerprint().as_str()), "{line}");
    assert_eq!(
        fields.last().copied(),
        Some(format!("key {}", public.to_b64()).as_str())
    );
}

//! Tests of [`super`]: both algorithms, their wire forms and what each refuses.

use super::*;
use p256::elliptic_curve::sec1::ToEncodedPoint;

fn es256(secret: u8) -> DeviceSigningKey {
    DeviceSigningKey::from_secret(Alg::Es256, &[secret; 32]).unwrap()
}

#[test]
fn sign_and_verify() {
    for key in [
        DeviceSigningKey::generate().unwrap(),
        DeviceSigningKey::generate_alg(Alg::Es256).unwrap(),
    ] {
        let public = key.public_key();
        let sig = key.sign(b"hello");
        assert_eq!(sig.len(), 64);
        assert!(public.verify(b"hello", &sig).is_ok());
        assert_eq!(public.verify(b"hellO", &sig), Err(ProtoError::BadSignature));
        let mut forged = sig.clone();
        forged[5] ^= 1;
        assert_eq!(
            public.verify(b"hello", &forged),
            Err(ProtoError::BadSignature)
        );
        assert_eq!(
            public.verify(b"hello", &sig[..63]),
            Err(ProtoError::BadSignature)
        );
        let mut long = sig.clone();
        long.push(0);
        assert_eq!(
            public.verify(b"hello", &long),
            Err(ProtoError::BadSignature)
        );
    }
}

#[test]
fn wire_form_round_trips() {
    let key = DeviceSigningKey::from_seed(&[7u8; 32]);
    let public = key.public_key();
    let parsed = DevicePublicKey::from_wire("ed25519", &public.to_b64()).unwrap();
    assert_eq!(parsed, public);
    // An Ed25519 key labelled es256 is not a P-256 point.
    assert_eq!(
        DevicePublicKey::from_wire("es256", &public.to_b64()),
        Err(ProtoError::BadPublicKey)
    );
    assert!(matches!(
        DevicePublicKey::from_wire("es384", &public.to_b64()),
        Err(ProtoError::UnsupportedAlg(_))
    ));
    assert!(DevicePublicKey::from_wire("ed25519", "AAAA").is_err());

    let es = es256(7).public_key();
    assert_eq!(es.alg(), Alg::Es256);
    assert_eq!(es.to_bytes().len(), 65);
    assert_eq!(es.to_bytes()[0], 0x04);
    assert_eq!(
        DevicePublicKey::from_wire("es256", &es.to_b64()).unwrap(),
        es
    );
    // And the reverse: a P-256 point labelled ed25519.
    assert!(matches!(
        DevicePublicKey::from_wire("ed25519", &es.to_b64()),
        Err(ProtoError::Length { got: 65, .. })
    ));
    let secret = es256(7).secret();
    assert_eq!(*secret, [7u8; 32]);
    assert_eq!(
        DeviceSigningKey::from_secret(Alg::Es256, secret.as_slice())
            .unwrap()
            .public_key(),
        es
    );
}

#[test]
fn weak_keys_are_refused() {
    // The identity point encodes as 0x01 followed by zeros.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Ed25519, &identity),
        Err(ProtoError::BadPublicKey)
    );
}

#[test]
fn es256_refuses_compressed_identity_and_off_curve_points() {
    let public = es256(3).public_key();
    let point = p256::PublicKey::from_sec1_bytes(&public.to_bytes()).unwrap();
    let compressed = point.to_encoded_point(true);
    assert_eq!(compressed.as_bytes().len(), 33);
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Es256, compressed.as_bytes()),
        Err(ProtoError::BadPublicKey)
    );
    // SEC1's identity encoding, and an all-zero "uncompressed" point.
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Es256, &[0]),
        Err(ProtoError::BadPublicKey)
    );
    let mut zero = [0u8; 65];
    zero[0] = 4;
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Es256, &zero),
        Err(ProtoError::BadPublicKey)
    );
    // Off the curve: Y changed by one.
    let mut off = public.to_bytes();
    off[64] ^= 1;
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Es256, &off),
        Err(ProtoError::BadPublicKey)
    );
    // X ‖ Y without the 0x04 tag, and with a hybrid tag.
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Es256, &public.to_bytes()[1..]),
        Err(ProtoError::BadPublicKey)
    );
    let mut hybrid = public.to_bytes();
    hybrid[0] = 6;
    assert_eq!(
        DevicePublicKey::from_bytes(Alg::Es256, &hybrid),
        Err(ProtoError::BadPublicKey)
    );
}

/// WebCrypto does not normalise `s`: both `(r, s)` and `(r, n − s)` must verify, and nothing else.
#[test]
fn es256_accepts_high_and_low_s() {
    let key = es256(5);
    let public = key.public_key();
    let mut seen_high = false;
    let mut seen_low = false;
    for i in 0u32..16 {
        let msg = i.to_be_bytes();
        let sig = p256::ecdsa::Signature::from_slice(&key.sign(&msg)).unwrap();
        let (r, s) = sig.split_scalars();
        let flipped = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        for candidate in [sig, flipped] {
            if candidate.normalize_s().is_some() {
                seen_high = true;
            } else {
                seen_low = true;
            }
            assert_eq!(public.verify(&msg, &candidate.to_bytes()), Ok(()));
            assert_eq!(
                public.verify(b"other", &candidate.to_bytes()),
                Err(ProtoError::BadSignature)
            );
        }
    }
    assert!(seen_high && seen_low);
}

#[test]
fn es256_refuses_zero_and_out_of_range_scalars() {
    let public = es256(5).public_key();
    assert_eq!(
        public.verify(b"m", &[0u8; 64]),
        Err(ProtoError::BadSignature)
    );
    assert_eq!(
        public.verify(b"m", &[0xffu8; 64]),
        Err(ProtoError::BadSignature)
    );
    assert_eq!(
        DeviceSigningKey::from_secret(Alg::Es256, &[0u8; 32]).err(),
        Some(ProtoError::BadPublicKey)
    );
    assert_eq!(
        DeviceSigningKey::from_secret(Alg::Es256, &[0xffu8; 32]).err(),
        Some(ProtoError::BadPublicKey)
    );
    assert!(matches!(
        DeviceSigningKey::from_secret(Alg::Es256, &[1u8; 31]),
        Err(ProtoError::Length { .. })
    ));
}

#[test]
fn signatures_never_cross_algorithms() {
    let ed = DeviceSigningKey::from_seed(&[5u8; 32]);
    let es = es256(5);
    let sig_ed = ed.sign(b"m");
    let sig_es = es.sign(b"m");
    assert_eq!(
        es.public_key().verify(b"m", &sig_ed),
        Err(ProtoError::BadSignature)
    );
    assert_eq!(
        ed.public_key().verify(b"m", &sig_es),
        Err(ProtoError::BadSignature)
    );
}

#[test]
fn fingerprint_is_sha256_of_the_raw_key_in_standard_base64() {
    for public in [
        DeviceSigningKey::from_seed(&[1u8; 32]).public_key(),
        es256(1).public_key(),
    ] {
        let fp = public.fingerprint();
        let b64 = fp.strip_prefix("SHA256:").unwrap();
        assert_eq!(b64.len(), 43);
        assert!(!b64.contains('='));
        let digest = STANDARD_NO_PAD.decode(b64).unwrap();
        assert_eq!(digest, Sha256::digest(public.to_bytes()).to_vec());
    }
}

#[test]
fn debug_never_shows_the_secret() {
    let key = DeviceSigningKey::from_seed(&[9u8; 32]);
    let text = format!("{key:?}");
    assert!(!text.contains(&b64::encode([9u8; 32])));
    let key = es256(9);
    let text = format!("{key:?}");
    assert!(text.contains("es256"));
    assert!(!text.contains(&b64::encode([9u8; 32])));
    assert!(!text.contains(&hex_lower(&[9u8; 32])));
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Both secrets are wiped when a [`DeviceSigningKey`] is dropped: each library's key type
/// zeroizes itself on drop (a compile-time check).
#[test]
fn both_secret_key_types_zeroize_on_drop() {
    fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroizes_on_drop::<ed25519_dalek::SigningKey>();
    zeroizes_on_drop::<p256::ecdsa::SigningKey>();
}

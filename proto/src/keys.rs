//! Device keys: the algorithm tag, public keys as stored and sent, and the device's signing key.
//!
//! `alg` exists so that `es256` (Secure Enclave, WebCrypto) can follow without a protocol break;
//! today only `ed25519` is accepted.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{b64, random, ProtoError};

/// A device key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alg {
    /// Ed25519 (RFC 8032), 32-byte public keys and 64-byte signatures.
    Ed25519,
}

impl Alg {
    /// The wire text (`ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Self, ProtoError> {
        match s {
            "ed25519" => Ok(Alg::Ed25519),
            other => Err(ProtoError::UnsupportedAlg(other.to_owned())),
        }
    }
}

/// A device's public key with its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct DevicePublicKey {
    alg: Alg,
    key: VerifyingKey,
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({} {})", self.alg, self.to_b64())
    }
}

impl DevicePublicKey {
    /// Parses a key from its raw bytes (32 for Ed25519).
    pub fn from_bytes(alg: Alg, bytes: &[u8]) -> Result<Self, ProtoError> {
        match alg {
            Alg::Ed25519 => {
                let raw: [u8; 32] = bytes.try_into().map_err(|_| ProtoError::Length {
                    field: "public_key",
                    expected: 32,
                    got: bytes.len(),
                })?;
                let key = VerifyingKey::from_bytes(&raw).map_err(|_| ProtoError::BadPublicKey)?;
                // A weak (small-order) key would let many signatures verify; refuse it.
                if key.is_weak() {
                    return Err(ProtoError::BadPublicKey);
                }
                Ok(DevicePublicKey { alg, key })
            }
        }
    }

    /// Parses the wire form: the `alg` name and the key in base64url.
    pub fn from_wire(alg: &str, public_key_b64: &str) -> Result<Self, ProtoError> {
        let alg = Alg::from_str(alg)?;
        let bytes = b64::decode(public_key_b64, "public_key")?;
        Self::from_bytes(alg, &bytes)
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The raw key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    /// The key as unpadded base64url.
    pub fn to_b64(&self) -> String {
        b64::encode(self.key.to_bytes())
    }

    /// Verifies `signature` over `message` (strict Ed25519: no malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ProtoError> {
        let signature = Signature::from_slice(signature).map_err(|_| ProtoError::BadSignature)?;
        self.key
            .verify_strict(message, &signature)
            .map_err(|_| ProtoError::BadSignature)
    }

    /// Verifies a base64url signature.
    pub fn verify_b64(&self, message: &[u8], signature_b64: &str) -> Result<(), ProtoError> {
        let signature = b64::decode(signature_b64, "signature")?;
        self.verify(message, &signature)
    }
}

/// A device's private key. Its seed is zeroized on drop and never printed.
pub struct DeviceSigningKey {
    key: SigningKey,
}

impl fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceSigningKey(public {})", self.public_key().to_b64())
    }
}

impl DeviceSigningKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<Self, ProtoError> {
        let seed = Zeroizing::new(random::bytes::<32>()?);
        Ok(Self::from_seed(&seed))
    }

    /// The key for a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        DeviceSigningKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The seed, for storing the key (keep it 0600).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Alg {
        Alg::Ed25519
    }

    /// The public half, to send at enrollment.
    pub fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey {
            alg: Alg::Ed25519,
            key: self.key.verifying_key(),
        }
    }

    /// Signs a message; returns the raw 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_bytes().to_vec()
    }

    /// Signs a message; returns the signature as base64url.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        b64::encode(self.sign(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = DeviceSigningKey::generate().unwrap();
        let public = key.public_key();
        let sig = key.sign(b"hello");
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
    }

    #[test]
    fn wire_form_round_trips() {
        let key = DeviceSigningKey::from_seed(&[7u8; 32]);
        let public = key.public_key();
        let parsed = DevicePublicKey::from_wire("ed25519", &public.to_b64()).unwrap();
        assert_eq!(parsed, public);
        assert!(matches!(
            DevicePublicKey::from_wire("es256", &public.to_b64()),
            Err(ProtoError::UnsupportedAlg(_))
        ));
        assert!(DevicePublicKey::from_wire("ed25519", "AAAA").is_err());
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
    fn debug_never_shows_the_seed() {
        let key = DeviceSigningKey::from_seed(&[9u8; 32]);
        let text = format!("{key:?}");
        assert!(!text.contains(&b64::encode([9u8; 32])));
    }
}

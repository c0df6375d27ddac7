//! Device keys: the algorithm tag, public keys as stored and sent, and the device's signing key.
//!
//! Two algorithms (DESIGN.md, "Devices"):
//! - `ed25519` (RFC 8032): 32-byte public keys, 64-byte signatures, verified strictly;
//! - `es256` (ECDSA over P-256 with SHA-256, FIPS 186-5 / RFC 6979; what WebCrypto offers where it
//!   lacks Ed25519): the public key as the 65-byte uncompressed SEC1 point `0x04 ‖ X ‖ Y`, signatures
//!   as the 64-byte `r ‖ s` that WebCrypto produces (IEEE P1363 form, not DER).
//!
//! ES256 and signature malleability: given a valid `(r, s)`, `(r, n − s)` is valid too. WebCrypto
//! does not normalise `s`, so a browser produces "high-S" signatures half of the time, and
//! [`DevicePublicKey::verify`] accepts both. That is harmless here because no pushauth part keys
//! anything by signature bytes: request replay is keyed by the signed `nonce`, a challenge accepts one
//! answer (by its id and state), and the answer's signature is stored and passed on only to be
//! verified again. A second valid signature over the same message therefore says nothing new.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
// One `signature` 2.x crate serves both algorithms' Signer/Verifier traits.
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{b64, random, ProtoError};

/// Length of an uncompressed SEC1 P-256 point (`0x04 ‖ X ‖ Y`), in bytes.
pub const ES256_PUBLIC_KEY_LEN: usize = 65;

/// Length of every device signature (Ed25519, or ES256 `r ‖ s`), in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A device key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alg {
    /// Ed25519 (RFC 8032), 32-byte public keys and 64-byte signatures.
    Ed25519,
    /// ECDSA P-256 with SHA-256: 65-byte uncompressed public keys, 64-byte `r ‖ s` signatures.
    Es256,
}

impl Alg {
    /// The wire text (`ed25519`, `es256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Ed25519 => "ed25519",
            Alg::Es256 => "es256",
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
            "es256" => Ok(Alg::Es256),
            other => Err(ProtoError::UnsupportedAlg(other.to_owned())),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
enum PublicInner {
    Ed25519(ed25519_dalek::VerifyingKey),
    Es256(p256::ecdsa::VerifyingKey),
}

/// A device's public key with its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct DevicePublicKey {
    inner: PublicInner,
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({} {})", self.alg(), self.to_b64())
    }
}

impl DevicePublicKey {
    /// Parses a key from its raw bytes: 32 for Ed25519, the 65-byte uncompressed point for ES256.
    ///
    /// Errors: [`ProtoError::Length`] for an Ed25519 key of another length; [`ProtoError::BadPublicKey`]
    /// for a weak Ed25519 key, and for an ES256 key that is compressed, the identity, off the curve or
    /// of another length.
    pub fn from_bytes(alg: Alg, bytes: &[u8]) -> Result<Self, ProtoError> {
        let inner = match alg {
            Alg::Ed25519 => {
                let raw: [u8; 32] = bytes.try_into().map_err(|_| ProtoError::Length {
                    field: "public_key",
                    expected: 32,
                    got: bytes.len(),
                })?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| ProtoError::BadPublicKey)?;
                // A weak (small-order) key would let many signatures verify; refuse it.
                if key.is_weak() {
                    return Err(ProtoError::BadPublicKey);
                }
                PublicInner::Ed25519(key)
            }
            Alg::Es256 => {
                // Only the uncompressed form: one encoding per key, so stored keys and pinned lines
                // compare byte for byte. The identity (a lone 0x00) fails this test too.
                if bytes.len() != ES256_PUBLIC_KEY_LEN || bytes[0] != 0x04 {
                    return Err(ProtoError::BadPublicKey);
                }
                // Checks that the point is on the curve (and not the identity).
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                    .map_err(|_| ProtoError::BadPublicKey)?;
                PublicInner::Es256(key)
            }
        };
        Ok(DevicePublicKey { inner })
    }

    /// Parses the wire form: the `alg` name and the key in base64url.
    pub fn from_wire(alg: &str, public_key_b64: &str) -> Result<Self, ProtoError> {
        let alg = Alg::from_str(alg)?;
        let bytes = b64::decode(public_key_b64, "public_key")?;
        Self::from_bytes(alg, &bytes)
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Alg {
        match self.inner {
            PublicInner::Ed25519(_) => Alg::Ed25519,
            PublicInner::Es256(_) => Alg::Es256,
        }
    }

    /// The raw key bytes (32 for Ed25519, 65 for ES256).
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            PublicInner::Ed25519(key) => key.to_bytes().to_vec(),
            PublicInner::Es256(key) => key.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// The key as unpadded base64url.
    pub fn to_b64(&self) -> String {
        b64::encode(self.to_bytes())
    }

    /// The key's fingerprint as people compare it: `SHA256:` then the unpadded standard base64 of
    /// SHA-256 over the raw key bytes ([`Self::to_bytes`]). It looks like an OpenSSH fingerprint, but
    /// OpenSSH hashes its own key blob, so the two differ for the same key.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.to_bytes());
        format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
    }

    /// Verifies the raw 64-byte `signature` over `message`.
    ///
    /// Ed25519 is verified strictly (no malleable signatures). ES256 hashes `message` with SHA-256
    /// and accepts both low- and high-S signatures, because WebCrypto does not normalise `s` (see the
    /// module documentation for why that is harmless). Any other length is [`ProtoError::BadSignature`].
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ProtoError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(ProtoError::BadSignature);
        }
        match &self.inner {
            PublicInner::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| ProtoError::BadSignature)?;
                key.verify_strict(message, &signature)
                    .map_err(|_| ProtoError::BadSignature)
            }
            PublicInner::Es256(key) => {
                // from_slice refuses r or s equal to zero or not below the group order.
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| ProtoError::BadSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| ProtoError::BadSignature)
            }
        }
    }

    /// Verifies a base64url signature.
    pub fn verify_b64(&self, message: &[u8], signature_b64: &str) -> Result<(), ProtoError> {
        let signature = b64::decode(signature_b64, "signature")?;
        self.verify(message, &signature)
    }
}

enum SigningInner {
    Ed25519(ed25519_dalek::SigningKey),
    // p256's SigningKey zeroizes its scalar on drop, as ed25519-dalek does its seed.
    Es256(p256::ecdsa::SigningKey),
}

/// A device's private key. Its secret is zeroized on drop and never printed.
pub struct DeviceSigningKey {
    inner: SigningInner,
}

impl fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceSigningKey({} public {})",
            self.alg(),
            self.public_key().to_b64()
        )
    }
}

impl DeviceSigningKey {
    /// A fresh Ed25519 key from the OS random source.
    pub fn generate() -> Result<Self, ProtoError> {
        Self::generate_alg(Alg::Ed25519)
    }

    /// A fresh key of `alg` from the OS random source.
    pub fn generate_alg(alg: Alg) -> Result<Self, ProtoError> {
        loop {
            let secret = Zeroizing::new(random::bytes::<32>()?);
            match Self::from_secret(alg, secret.as_slice()) {
                Ok(key) => return Ok(key),
                // A P-256 scalar of zero or not below the group order: chance about 2^-32; draw again.
                Err(ProtoError::BadPublicKey) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The Ed25519 key for a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        DeviceSigningKey {
            inner: SigningInner::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed)),
        }
    }

    /// The key of `alg` for its 32 secret bytes ([`Self::secret`]): the Ed25519 seed, or the P-256
    /// scalar big-endian. Errors: [`ProtoError::Length`] for another length, and
    /// [`ProtoError::BadPublicKey`] for a P-256 scalar that is zero or not below the group order.
    pub fn from_secret(alg: Alg, secret: &[u8]) -> Result<Self, ProtoError> {
        let raw: &[u8; 32] = secret.try_into().map_err(|_| ProtoError::Length {
            field: "secret",
            expected: 32,
            got: secret.len(),
        })?;
        match alg {
            Alg::Ed25519 => Ok(Self::from_seed(raw)),
            Alg::Es256 => {
                let key = p256::ecdsa::SigningKey::from_bytes(raw.into())
                    .map_err(|_| ProtoError::BadPublicKey)?;
                Ok(DeviceSigningKey {
                    inner: SigningInner::Es256(key),
                })
            }
        }
    }

    /// The 32 secret bytes, for storing the key (keep them 0600): the Ed25519 seed, or the P-256
    /// scalar big-endian. [`Self::from_secret`] reads them back.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        match &self.inner {
            SigningInner::Ed25519(key) => Zeroizing::new(key.to_bytes()),
            SigningInner::Es256(key) => {
                let bytes = Zeroizing::new(key.to_bytes());
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(bytes.as_slice());
                out
            }
        }
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Alg {
        match self.inner {
            SigningInner::Ed25519(_) => Alg::Ed25519,
            SigningInner::Es256(_) => Alg::Es256,
        }
    }

    /// The public half, to send at enrollment.
    pub fn public_key(&self) -> DevicePublicKey {
        let inner = match &self.inner {
            SigningInner::Ed25519(key) => PublicInner::Ed25519(key.verifying_key()),
            SigningInner::Es256(key) => PublicInner::Es256(*key.verifying_key()),
        };
        DevicePublicKey { inner }
    }

    /// Signs a message; returns the raw 64-byte signature. ES256 signatures are deterministic
    /// (RFC 6979) with SHA-256, as `r ‖ s`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.inner {
            SigningInner::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SigningInner::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }

    /// Signs a message; returns the signature as base64url.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        b64::encode(self.sign(message))
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;

//! Random values the protocol needs: ids, nonces, codes. All from the OS CSPRNG.

use crate::{b64, ProtoError};

/// Fills an array from the operating system's random source.
pub fn bytes<const N: usize>() -> Result<[u8; N], ProtoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| ProtoError::Random)?;
    Ok(out)
}

/// A fresh URL-safe identifier with 128 bits of randomness (22 characters).
pub fn id() -> Result<String, ProtoError> {
    Ok(b64::encode(bytes::<16>()?))
}

/// A fresh 32-byte relying-party nonce.
pub fn rp_nonce() -> Result<[u8; 32], ProtoError> {
    bytes::<32>()
}

/// A fresh one-time request nonce for the device `Authorization` header (base64url of 16 bytes).
pub fn request_nonce() -> Result<String, ProtoError> {
    id()
}

/// A secret token of 256 bits, base64url (enrollment tokens, API keys, admin tokens).
pub fn secret_token() -> Result<String, ProtoError> {
    Ok(b64::encode(bytes::<32>()?))
}

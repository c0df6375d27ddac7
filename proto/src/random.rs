//! Random values the protocol needs: ids, nonces, codes. All from the OS CSPRNG.

use crate::{b64, ProtoError};

/// Fills an array from the operating system's random source.
pub fn bytes<const N: usize>() -> Result<[u8; N], ProtoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| ProtoError::Random)?;
    Ok(out)
}

/// A fresh URL-safe identifier with 128 bits of randomness (22 characters), never starting with
/// `-`: ids are typed as command-line arguments (`pushauthd rp revoke ID`), where a leading `-`
/// reads as an option (one id in 64 did; drawn again, which costs under 0.03 bits).
pub fn id() -> Result<String, ProtoError> {
    loop {
        let id = b64::encode(bytes::<16>()?);
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_start_with_a_dash_and_follow_the_id_rule() {
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            let id = id().unwrap();
            assert_eq!(id.len(), 22);
            assert!(!id.starts_with('-'), "{id}");
            assert!(crate::names::check_id("challenge", &id).is_ok(), "{id}");
            firsts.insert(id.as_bytes()[0]);
        }
        // Every other first character still occurs (63 of the 64).
        assert_eq!(firsts.len(), 63, "{firsts:?}");
    }
}

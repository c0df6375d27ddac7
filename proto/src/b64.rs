//! Unpadded base64url: every binary value in pushauth JSON (keys, nonces, signatures).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::ProtoError;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `field` names the value in the error.
pub fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, ProtoError> {
    URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .map_err(|_| ProtoError::Base64(field))
}

/// Decodes unpadded base64url that must be exactly `N` bytes long.
pub fn decode_array<const N: usize>(
    text: &str,
    field: &'static str,
) -> Result<[u8; N], ProtoError> {
    let bytes = decode(text, field)?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| ProtoError::Length {
        field,
        expected: N,
        got,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_without_padding() {
        let text = encode([0xfb, 0xff, 0x01]);
        assert_eq!(text, "-_8B");
        assert_eq!(decode(&text, "x").unwrap(), vec![0xfb, 0xff, 0x01]);
    }

    #[test]
    fn rejects_padding_and_standard_alphabet() {
        assert!(decode("-_8B==", "x").is_err());
        assert!(decode("+/8B", "x").is_err());
    }

    #[test]
    fn wrong_length_is_named() {
        let err = decode_array::<32>(&encode([1u8; 31]), "rp_nonce").unwrap_err();
        assert_eq!(
            err,
            ProtoError::Length {
                field: "rp_nonce",
                expected: 32,
                got: 31
            }
        );
    }
}

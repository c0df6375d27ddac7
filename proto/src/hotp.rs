//! HOTP, RFC 4226: the offline codes a device shows when pushauthd cannot be reached.
//!
//! `HOTP(K, C) = Truncate(HMAC(K, C)) mod 10^digits` where `C` is the 8-byte big-endian counter
//! and `Truncate` is the dynamic truncation of RFC 4226 §5.3 (the low 4 bits of the last MAC
//! byte pick an offset; the 31 bits at that offset are the number). RFC 4226 names HMAC-SHA-1;
//! HMAC-SHA-256 is the same construction over a 32-byte MAC (as RFC 6238 §1.2 allows), and is
//! pushauthd's default. The vectors of RFC 4226 Appendix D and our SHA-256 ones are in
//! `test-vectors.json` (`hotp`), which the web authenticator is tested against too.

use hmac::{Hmac, Mac};
use thiserror::Error;
use zeroize::Zeroizing;

/// Fewest digits a code may have (RFC 4226 §5.3: at least 6).
pub const MIN_DIGITS: u32 = 6;
/// Most digits a code may have (the 31-bit number has at most 10; 8 keeps codes typeable).
pub const MAX_DIGITS: u32 = 8;

/// The MAC under HOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotpAlg {
    /// HMAC-SHA-1 (RFC 4226 itself); secrets of 20 bytes.
    Sha1,
    /// HMAC-SHA-256; secrets of 32 bytes. The default.
    Sha256,
}

impl HotpAlg {
    /// The wire and config name: `sha1` or `sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            HotpAlg::Sha1 => "sha1",
            HotpAlg::Sha256 => "sha256",
        }
    }

    /// The secret length pushauthd issues for this MAC, in bytes (its output size, as RFC 4226
    /// §4 R6 recommends at least 128 bits and RFC 2104 the hash's length).
    pub fn secret_len(self) -> usize {
        match self {
            HotpAlg::Sha1 => 20,
            HotpAlg::Sha256 => 32,
        }
    }
}

impl std::str::FromStr for HotpAlg {
    type Err = HotpError;

    /// `sha1` or `sha256`.
    fn from_str(s: &str) -> Result<HotpAlg, HotpError> {
        match s {
            "sha1" => Ok(HotpAlg::Sha1),
            "sha256" => Ok(HotpAlg::Sha256),
            other => Err(HotpError::Algorithm(other.to_owned())),
        }
    }
}

/// Why no code could be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HotpError {
    /// `digits` outside 6 to 8.
    #[error("offline codes have {MIN_DIGITS} to {MAX_DIGITS} digits, not {0}")]
    Digits(u32),
    /// An algorithm other than `sha1` and `sha256`.
    #[error("offline code algorithm {0:?} must be \"sha1\" or \"sha256\"")]
    Algorithm(String),
    /// An empty secret.
    #[error("the offline secret is empty")]
    EmptySecret,
}

/// Dynamic truncation (RFC 4226 §5.3) of a MAC of at least 20 bytes: the 31-bit number.
fn truncate(mac: &[u8]) -> u32 {
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bytes = [
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ];
    u32::from_be_bytes(bytes)
}

/// The HOTP value for `counter` as `digits` decimal digits (leading zeros kept).
///
/// # Errors
/// [`HotpError::Digits`] outside 6 to 8, [`HotpError::EmptySecret`] for an empty secret.
pub fn hotp(
    alg: HotpAlg,
    secret: &[u8],
    counter: u64,
    digits: u32,
) -> Result<Zeroizing<String>, HotpError> {
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
        return Err(HotpError::Digits(digits));
    }
    if secret.is_empty() {
        return Err(HotpError::EmptySecret);
    }
    let message = counter.to_be_bytes();
    // HMAC takes keys of any length, so `new_from_slice` cannot fail; mapped anyway.
    let mac: Zeroizing<Vec<u8>> = match alg {
        HotpAlg::Sha1 => {
            let mut mac =
                Hmac::<sha1::Sha1>::new_from_slice(secret).map_err(|_| HotpError::EmptySecret)?;
            mac.update(&message);
            Zeroizing::new(mac.finalize().into_bytes().to_vec())
        }
        HotpAlg::Sha256 => {
            let mut mac =
                Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| HotpError::EmptySecret)?;
            mac.update(&message);
            Zeroizing::new(mac.finalize().into_bytes().to_vec())
        }
    };
    let modulus = 10u32.pow(digits);
    let value = truncate(&mac) % modulus;
    Ok(Zeroizing::new(format!(
        "{value:0width$}",
        width = digits as usize
    )))
}

/// A code as a person reads it: groups of 3 or 4 digits split by a space (`123 456`,
/// `1234 5678`, `123 4567`).
pub fn group(code: &str) -> String {
    let split = if code.len() == 8 { 4 } else { 3 };
    match code.get(..split) {
        Some(head) if code.len() > split => format!("{head} {}", &code[split..]),
        _ => code.to_owned(),
    }
}

/// What a person typed as a code, with spaces and dashes dropped: `Some(digits)` when the rest
/// is exactly `digits` ASCII digits.
pub fn normalize_typed(typed: &str, digits: u32) -> Option<Zeroizing<String>> {
    let code: Zeroizing<String> = Zeroizing::new(
        typed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .collect(),
    );
    (code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_appendix_d() {
        let secret = b"12345678901234567890";
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in want.iter().enumerate() {
            let got = hotp(HotpAlg::Sha1, secret, counter as u64, 6).unwrap();
            assert_eq!(got.as_str(), *want, "counter {counter}");
        }
    }

    #[test]
    fn bounds_and_text() {
        assert_eq!(hotp(HotpAlg::Sha1, b"k", 0, 5), Err(HotpError::Digits(5)));
        assert_eq!(hotp(HotpAlg::Sha1, b"k", 0, 9), Err(HotpError::Digits(9)));
        assert_eq!(
            hotp(HotpAlg::Sha256, b"", 0, 6),
            Err(HotpError::EmptySecret)
        );
        assert_eq!(
            hotp(HotpAlg::Sha1, b"12345678901234567890", 1, 8)
                .unwrap()
                .len(),
            8
        );
        assert_eq!("sha1".parse(), Ok(HotpAlg::Sha1));
        assert!("md5".parse::<HotpAlg>().is_err());
        assert_eq!(group("123456"), "123 456");
        assert_eq!(group("1234567"), "123 4567");
        assert_eq!(group("12345678"), "1234 5678");
        assert_eq!(
            normalize_typed(" 123 456\n".trim(), 6).unwrap().as_str(),
            "123456"
        );
        assert_eq!(normalize_typed("123-456", 6).unwrap().as_str(), "123456");
        assert!(normalize_typed("12345", 6).is_none());
        assert!(normalize_typed("12345a", 6).is_none());
    }
}

//! The exact bytes every pushauth signature covers.
//!
//! Each message is a list of fields, each written as a 4-byte big-endian length then the bytes,
//! starting with a domain string so a signature for one purpose never verifies for another.

use sha2::{Digest, Sha256};

use crate::Decision;

/// Domain of a device's answer to a challenge.
pub const RESPONSE_DOMAIN: &str = "pushauth/v1/response";
/// Domain of a signed device HTTP request.
pub const REQUEST_DOMAIN: &str = "pushauth/v1/request";
/// Domain of the enrollment proof of possession.
pub const ENROLL_DOMAIN: &str = "pushauth/v1/enroll";

/// Builds a length-framed message.
#[derive(Debug, Clone)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Starts a message with its domain string.
    pub fn new(domain: &str) -> Self {
        let mut framer = Framer {
            buf: Vec::with_capacity(256),
        };
        framer.push(domain.as_bytes());
        framer
    }

    /// Appends one field: its length as 4 bytes big-endian, then its bytes.
    pub fn push(&mut self, field: &[u8]) -> &mut Self {
        // Fields are bounded by the 64 KiB body limit, far below u32::MAX.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(field);
        self
    }

    /// The framed bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Everything a device's answer signature covers.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFields<'a> {
    /// The challenge answered.
    pub challenge_id: &'a str,
    /// The user it was for.
    pub user: &'a str,
    /// The answering device.
    pub device_id: &'a str,
    /// The relying party's nonce, raw bytes.
    pub rp_nonce: &'a [u8],
    /// SHA-256 of the context ([`crate::context_digest`]).
    pub context_digest: &'a [u8; 32],
    /// What the device decided.
    pub decision: Decision,
    /// What the person typed; empty without number matching.
    pub code: &'a str,
    /// RFC 3339 UTC text, exactly as sent.
    pub responded_at: &'a str,
}

/// `"pushauth/v1/response" challenge_id user device_id rp_nonce context_digest decision code responded_at`
pub fn response_message(fields: &ResponseFields<'_>) -> Vec<u8> {
    let mut framer = Framer::new(RESPONSE_DOMAIN);
    framer
        .push(fields.challenge_id.as_bytes())
        .push(fields.user.as_bytes())
        .push(fields.device_id.as_bytes())
        .push(fields.rp_nonce)
        .push(fields.context_digest)
        .push(fields.decision.as_str().as_bytes())
        .push(fields.code.as_bytes())
        .push(fields.responded_at.as_bytes());
    framer.finish()
}

/// `"pushauth/v1/request" method path_and_query ts nonce sha256(body)`; `ts` and `nonce` exactly as
/// the header's text, the body hash as 32 raw bytes (an empty body is hashed too).
pub fn request_message(
    method: &str,
    path_and_query: &str,
    ts: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let body_hash: [u8; 32] = Sha256::digest(body).into();
    let mut framer = Framer::new(REQUEST_DOMAIN);
    framer
        .push(method.as_bytes())
        .push(path_and_query.as_bytes())
        .push(ts.as_bytes())
        .push(nonce.as_bytes())
        .push(&body_hash);
    framer.finish()
}

/// `"pushauth/v1/enroll" token alg public_key`, the key as its raw bytes.
pub fn enroll_message(token: &str, alg: &str, public_key: &[u8]) -> Vec<u8> {
    let mut framer = Framer::new(ENROLL_DOMAIN);
    framer
        .push(token.as_bytes())
        .push(alg.as_bytes())
        .push(public_key);
    framer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_length_prefixed_big_endian() {
        let mut framer = Framer::new("d");
        framer.push(b"ab").push(b"");
        assert_eq!(
            framer.finish(),
            vec![0, 0, 0, 1, b'd', 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]
        );
    }

    #[test]
    fn request_message_hashes_empty_body() {
        let msg = request_message(
            "GET",
            "/v1/device/challenges?wait=5",
            "1700000000",
            "n",
            b"",
        );
        let empty_hash: [u8; 32] = Sha256::digest(b"").into();
        assert!(msg.ends_with(&empty_hash));
    }
}

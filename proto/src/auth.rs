//! The `Authorization: PushAuth device="…", ts="…", nonce="…", sig="…"` header of device requests.

use std::fmt;

use crate::{random, signing, DeviceSigningKey, ProtoError};

/// Scheme name in the `Authorization` header.
pub const SCHEME: &str = "PushAuth";

/// The parsed parameters of a device request's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    /// The device id the request claims to come from.
    pub device: String,
    /// Unix seconds, as text exactly as sent.
    pub ts: String,
    /// base64url random nonce; the server refuses one it has seen.
    pub nonce: String,
    /// base64url signature over [`signing::request_message`].
    pub sig: String,
}

impl DeviceAuth {
    /// Signs a request as device `device_id` at unix time `now`, with a fresh nonce.
    pub fn sign(
        key: &DeviceSigningKey,
        device_id: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Self, ProtoError> {
        let nonce = random::request_nonce()?;
        Ok(Self::sign_with_nonce(
            key,
            device_id,
            method,
            path_and_query,
            body,
            now,
            nonce,
        ))
    }

    /// As [`DeviceAuth::sign`] with a given nonce (tests and vectors).
    pub fn sign_with_nonce(
        key: &DeviceSigningKey,
        device_id: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: i64,
        nonce: String,
    ) -> Self {
        let ts = now.to_string();
        let message = signing::request_message(method, path_and_query, &ts, &nonce, body);
        DeviceAuth {
            device: device_id.to_owned(),
            ts,
            nonce,
            sig: key.sign_b64(&message),
        }
    }

    /// The bytes this header's signature must cover for a given request.
    pub fn message(&self, method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
        signing::request_message(method, path_and_query, &self.ts, &self.nonce, body)
    }

    /// The timestamp as unix seconds.
    pub fn ts_secs(&self) -> Result<i64, ProtoError> {
        if self.ts.is_empty() || !self.ts.bytes().all(|b| b.is_ascii_digit()) || self.ts.len() > 12
        {
            return Err(ProtoError::BadAuthHeader("ts must be unix seconds"));
        }
        self.ts
            .parse()
            .map_err(|_| ProtoError::BadAuthHeader("ts must be unix seconds"))
    }

    /// Parses a header value. Parameters may come in any order; each must appear once; values
    /// are quoted and hold only base64url or digits, so no escaping is needed.
    pub fn parse(header: &str) -> Result<Self, ProtoError> {
        let rest = header
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(ProtoError::BadAuthHeader("scheme must be PushAuth"))?;
        let (mut device, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for part in rest.split(',') {
            let (name, value) = part
                .trim()
                .split_once('=')
                .ok_or(ProtoError::BadAuthHeader("parameter without '='"))?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or(ProtoError::BadAuthHeader("parameter value must be quoted"))?;
            if value.is_empty()
                || value.len() > 256
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ProtoError::BadAuthHeader(
                    "parameter value has bad characters",
                ));
            }
            let slot = match name.trim() {
                "device" => &mut device,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => return Err(ProtoError::BadAuthHeader("unknown parameter")),
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(ProtoError::BadAuthHeader("repeated parameter"));
            }
        }
        match (device, ts, nonce, sig) {
            (Some(device), Some(ts), Some(nonce), Some(sig)) => Ok(DeviceAuth {
                device,
                ts,
                nonce,
                sig,
            }),
            _ => Err(ProtoError::BadAuthHeader(
                "device, ts, nonce and sig are all required",
            )),
        }
    }
}

impl fmt::Display for DeviceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME} device=\"{}\", ts=\"{}\", nonce=\"{}\", sig=\"{}\"",
            self.device, self.ts, self.nonce, self.sig
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_verifies() {
        let key = DeviceSigningKey::from_seed(&[3u8; 32]);
        let auth = DeviceAuth::sign(
            &key,
            "dev1",
            "POST",
            "/v1/device/challenges/x/ack",
            b"{}",
            1_700_000_000,
        )
        .unwrap();
        let parsed = DeviceAuth::parse(&auth.to_string()).unwrap();
        assert_eq!(parsed, auth);
        assert_eq!(parsed.ts_secs().unwrap(), 1_700_000_000);
        let msg = parsed.message("POST", "/v1/device/challenges/x/ack", b"{}");
        assert!(key.public_key().verify_b64(&msg, &parsed.sig).is_ok());
        let other = parsed.message("POST", "/v1/device/challenges/y/ack", b"{}");
        assert!(key.public_key().verify_b64(&other, &parsed.sig).is_err());
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "Bearer abc",
            "PushAuth device=\"a\"",
            "PushAuth device=a, ts=\"1\", nonce=\"n\", sig=\"s\"",
            "PushAuth device=\"a\", device=\"b\", ts=\"1\", nonce=\"n\", sig=\"s\"",
            "PushAuth device=\"a b\", ts=\"1\", nonce=\"n\", sig=\"s\"",
            "PushAuth device=\"a\", ts=\"1\", nonce=\"n\", sig=\"s\", extra=\"x\"",
        ] {
            assert!(DeviceAuth::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let auth =
            DeviceAuth::parse("PushAuth device=\"a\", ts=\"-5\", nonce=\"n\", sig=\"s\"").unwrap();
        assert!(auth.ts_secs().is_err());
        let auth =
            DeviceAuth::parse("PushAuth device=\"a\", ts=\"1x\", nonce=\"n\", sig=\"s\"").unwrap();
        assert!(auth.ts_secs().is_err());
    }
}

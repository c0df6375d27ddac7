//! HTTP handlers, one module per caller (relying parties, devices, admins, operations), and the
//! request extractors they share. Every failure is an [`ApiError`].

pub mod admin;
pub mod device;
pub mod ops;
pub mod rp;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use pushauth_proto::wire::{ChallengeStatus, DeviceInfo, DeviceList, ErrorCode};
use serde::de::DeserializeOwned;

use crate::app::SharedState;
use crate::clock;
use crate::error::ApiError;
use crate::store::{ChallengeRecord, DeviceRecord};

/// The raw request body, at most [`pushauth_proto::MAX_BODY_BYTES`].
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl FromRequest<SharedState> for RawBody {
    type Rejection = ApiError;

    /// Reads the body within `[limits] body_timeout_secs`, so a client that trickles one
    /// cannot hold its connection (issue 9 item 11).
    async fn from_request(req: Request, state: &SharedState) -> Result<Self, ApiError> {
        let within = Duration::from_secs(state.config.limits.body_timeout_secs.max(1));
        let read = tokio::time::timeout(within, Bytes::from_request(req, state)).await;
        let Ok(read) = read else {
            return Err(ApiError::malformed(format!(
                "the body did not arrive within {} seconds",
                within.as_secs()
            )));
        };
        match read {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "the body is larger than {} bytes",
                        pushauth_proto::MAX_BODY_BYTES
                    ),
                ))
            }
            Err(rejection) => Err(ApiError::malformed(format!(
                "cannot read the body: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Parses a JSON body; unknown fields and wrong types are `malformed_request`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("bad JSON body: {e}")))
}

/// A JSON request body (no content type required).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<SharedState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Query parameters as text.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Params(map))
            .map_err(|e| ApiError::malformed(format!("bad query string: {}", e.body_text())))
    }
}

impl Params {
    /// A non-negative integer parameter, if present.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                ApiError::malformed(format!("{name} must be a non-negative whole number"))
            }),
        }
    }

    /// `wait=SECS`, clamped to [`pushauth_proto::MAX_WAIT_SECS`]; 0 when absent.
    pub fn wait_secs(&self) -> Result<u64, ApiError> {
        Ok(self
            .number("wait")?
            .unwrap_or(0)
            .min(pushauth_proto::MAX_WAIT_SECS))
    }
}

/// A device as relying parties and admins see it.
/// A user's active devices, for the relying-party and admin listings alike.
pub async fn active_devices(state: &SharedState, user: String) -> Result<DeviceList, ApiError> {
    let devices = state
        .db(move |s| s.user_devices(&user))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownUser, "no such user"))?;
    Ok(DeviceList {
        devices: devices
            .iter()
            .filter(|d| d.is_active())
            .map(device_info)
            .collect(),
    })
}

pub fn device_info(device: &DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: device.id.clone(),
        name: device.name.clone(),
        alg: device.alg.clone(),
        public_key: device.public_key.clone(),
        created_at: clock::rfc3339(device.created_at),
        last_seen_at: device.last_seen_at.map(clock::rfc3339),
    }
}

/// A challenge's status as returned to relying parties and devices.
pub fn challenge_status(c: &ChallengeRecord) -> ChallengeStatus {
    ChallengeStatus {
        id: c.id.clone(),
        state: c.state,
        expires_at: clock::rfc3339(c.expires_at),
        device_id: c.device_id.clone(),
        decision: c.decision,
        reason: c.reason,
        responded_at: c.responded_at.clone(),
        signature: c.signature.clone(),
        typed_code: c.typed_code.clone(),
    }
}

/// 1 to `max` characters, none of them hidden ([`pushauth_proto::text::first_hidden`]:
/// control, bidi and other format characters, separators, private-use and unassigned code
/// points). Names (users, devices, relying parties) are shown to the person who approves, so
/// they must look like what they are.
pub fn printable(text: &str, max: usize) -> bool {
    let count = text.chars().count();
    (1..=max).contains(&count) && pushauth_proto::text::first_hidden(text).is_none()
}

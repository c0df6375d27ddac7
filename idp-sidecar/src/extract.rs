//! Request extractors of the shim API: the shared-secret check, JSON bodies and the `wait`
//! query parameter. Each refuses with an [`ApiError`], so every refusal has the stable error body.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::app::SharedState;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;

/// How long a request body may take to arrive once its head has: a client that trickles one
/// (authenticated or not: the CIBA key is checked after the body) cannot hold its connection.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest long-poll a shim may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 25;

/// A caller that presented the shared secret (`Authorization: Bearer <secret>`, compared in
/// constant time). Refusal: 401 `unauthorized`, counted and logged.
#[derive(Debug, Clone, Copy)]
pub struct Shim;

impl FromRequestParts<SharedState> for Shim {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        if bool::from(
            bearer(parts)
                .as_bytes()
                .ct_eq(state.shared_secret.as_bytes()),
        ) {
            Ok(Shim)
        } else {
            Metrics::inc(&state.metrics.unauthorized);
            tracing::warn!("request with a missing or wrong shared secret");
            Err(ApiError::unauthorized())
        }
    }
}

/// The bearer token of the `Authorization` header, or `""` when there is none.
pub fn bearer(parts: &Parts) -> &str {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// A JSON body of type `T`. Refusals: 413 `payload_too_large` over 64 KiB; 400
/// `malformed_request` for a body that cannot be read, wrong JSON, wrong types and (where `T`
/// says so) unknown fields.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Ok(read) = tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(req, state)).await
        else {
            return Err(ApiError::malformed(format!(
                "the body did not arrive within {} seconds",
                BODY_TIMEOUT.as_secs()
            )));
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the body is larger than 64 KiB",
                ))
            }
            Err(r) => {
                return Err(ApiError::malformed(format!(
                    "cannot read the body: {}",
                    r.body_text()
                )))
            }
        };
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::malformed(format!("bad JSON body: {e}")))
    }
}

/// `?wait=SECS`: how long a state call may long-poll, 0 (the default) to [`MAX_WAIT_SECS`].
/// Refusal: 400 `malformed_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl<S: Send + Sync> FromRequestParts<S> for Wait {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(query) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::malformed(format!("bad query string: {}", e.body_text())))?;
        wait_param(&query).map(Wait)
    }
}

/// `wait` from a parsed query string, bounded.
fn wait_param(query: &HashMap<String, String>) -> Result<Duration, ApiError> {
    match query.get("wait") {
        None => Ok(Duration::ZERO),
        Some(text) => match text.parse::<u64>() {
            Ok(secs) if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
            _ => Err(ApiError::malformed(format!(
                "wait must be 0 to {MAX_WAIT_SECS} seconds"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_bounded() {
        let q = |v: &str| HashMap::from([("wait".to_owned(), v.to_owned())]);
        assert_eq!(wait_param(&HashMap::new()).unwrap(), Duration::ZERO);
        assert_eq!(wait_param(&q("25")).unwrap(), Duration::from_secs(25));
        for bad in ["26", "-1", "x", ""] {
            assert_eq!(wait_param(&q(bad)).unwrap_err().code, "malformed_request");
        }
    }
}

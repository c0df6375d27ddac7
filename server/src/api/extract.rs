//! Request extractors: the body (bounded in size and time), JSON, query parameters, the
//! caller's credentials (relying-party key, admin token, signed device request) and the peer
//! address. Every rejection is an [`ApiError`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::wire::ErrorCode;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::auth::secret_eq;
use crate::bounds::SignatureFailures;
use crate::service::devices::SignedRequest;
use crate::service::keys::RpKey;
use crate::state::SharedState;
use crate::store::{DeviceRecord, Store};

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
///
/// # Errors
/// `malformed_request` naming what is wrong.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("bad JSON body: {e}")))
}

/// A JSON request body (no content type required). Handlers that check the caller in their
/// store job take `Result<JsonBody<T>, ApiError>`, so a body error is reported only to a caller
/// whose credentials hold (as when the credentials were checked first).
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
    ///
    /// # Errors
    /// `malformed_request` for anything but digits.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                ApiError::malformed(format!("{name} must be a non-negative whole number"))
            }),
        }
    }

    /// `wait=SECS`, clamped to [`pushauth_proto::MAX_WAIT_SECS`]; 0 when absent.
    ///
    /// # Errors
    /// As [`Params::number`].
    pub fn wait_secs(&self) -> Result<u64, ApiError> {
        Ok(self
            .number("wait")?
            .unwrap_or(0)
            .min(pushauth_proto::MAX_WAIT_SECS))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<SharedState> for RpKey {
    type Rejection = ApiError;

    /// A well-formed relying-party key or the admin token; the key is checked against the
    /// store by the handler's own store job ([`crate::service::keys::authenticate`]).
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        Ok(RpKey::parse(key, &state.config.admin_token)?)
    }
}

/// The TCP peer of a request (`ip:port`), when the server records it (it serves with
/// `ConnectInfo`); `None` otherwise, never a failure.
#[derive(Debug, Clone)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A request made with the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller;

impl FromRequestParts<SharedState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        match bearer(&parts.headers) {
            Some(token) if secret_eq(token, &state.config.admin_token) => Ok(AdminCaller),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// A signed device request as received, parsed but not yet checked; see [`SignedRequest`].
#[derive(Debug)]
pub struct DeviceRequest(pub SignedRequest);

impl DeviceRequest {
    /// Parses the `Authorization: PushAuth` header and builds the signed message over method,
    /// path-and-query as received, ts, nonce and body. `peer` is the client's address.
    ///
    /// # Errors
    /// `unauthorized` for a missing or malformed header, `stale_timestamp` for a bad ts.
    pub fn parse(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        peer: SocketAddr,
    ) -> Result<DeviceRequest, ApiError> {
        let header_text = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "device requests need an Authorization: PushAuth header",
                )
            })?;
        let auth = DeviceAuth::parse(header_text)
            .map_err(|e| ApiError::new(ErrorCode::Unauthorized, e.to_string()))?;
        let ts = auth
            .ts_secs()
            .map_err(|e| ApiError::new(ErrorCode::StaleTimestamp, e.to_string()))?;
        let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        let message = auth.message(method.as_str(), path_and_query, body);
        Ok(DeviceRequest(SignedRequest {
            device: auth.device,
            nonce: auth.nonce,
            sig: auth.sig,
            ts,
            message,
            detail: format!("request {method} {}", uri.path()),
            // One client per IPv6 /64, as the connection caps count them (issue 9 item 12).
            source: crate::conn::client_label(peer.ip()),
        }))
    }

    /// The device the request claims to come from (not yet verified).
    pub fn claimed_device(&self) -> &str {
        &self.0.device
    }

    /// Checks the request on a store thread ([`SignedRequest::verify`]).
    ///
    /// # Errors
    /// As [`SignedRequest::verify`].
    pub fn verify(
        self,
        s: &dyn Store,
        failures: &SignatureFailures,
    ) -> crate::service::Result<DeviceRecord> {
        self.0.verify(s, failures)
    }

    /// Checks the request but leaves its nonce to the operation it asks for
    /// ([`SignedRequest::check`](crate::service::devices::SignedRequest::check)).
    ///
    /// # Errors
    /// As [`SignedRequest::check`](crate::service::devices::SignedRequest::check).
    pub fn check(
        self,
        s: &dyn Store,
        failures: &SignatureFailures,
    ) -> crate::service::Result<crate::service::devices::CheckedRequest> {
        self.0.check(s, failures)
    }
}

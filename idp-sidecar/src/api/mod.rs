//! The HTTP API for IdP shims. Every route but `/healthz`, `/metrics`, `/v1/public-key` and the
//! CIBA channel needs `Authorization: Bearer <shared secret>`, compared in constant time.
//!
//! The shim names the IdP realm and user name; the sidecar maps them to the pushauthd user by
//! its own `[realms]` rules (a realm without a rule is refused: 403 `realm_not_configured`).
//!
//! - `POST /v1/logins` `{"realm","username","nonce","session"?,"context"}` → 201
//!   `{"id","user","code","devices","expires_at","state"}`; a pending login of the same
//!   `session` (and user) is cancelled first
//! - `GET /v1/logins/{id}?wait=SECS` (at most 25) → `{"id","user","state",…,"result"?}`
//! - `DELETE /v1/logins/{id}` → the cancelled login
//! - `POST /v1/enrollments` `{"realm","username","device_name"?,"session"?,"context"?}` → 201
//!   `{"id","user","state",…}`: `approval_pending` (with `code` and `devices`: an existing
//!   device must approve first) or `pending` (with `url` and `qr_svg`); 403
//!   `bootstrap_not_allowed` for a user with no device where the realm does not allow it
//! - `GET /v1/enrollments/{id}?wait=SECS` → `{"id","user","state","code"?,"url"?,"qr_svg"?,"device"?,"outcome"?}`
//!   With `"backup_code"` instead (a lost device): the link at once, plus its `replacement`
//! - `POST /v1/backup-codes/verify` `{"realm","username","code","nonce","session"?,"context"}` →
//!   200 `{"id","user","replacement","remaining","result"}` (a result token with outcome
//!   `backup_code`); 403 `backup_code_invalid`, 429 `user_locked`
//! - `POST /v1/backup-codes` `{"realm","username","session"?,"context"}` → 201 an issuance
//!   `approval_pending` (push `action = "issue_backup_codes"`); `GET /v1/backup-codes/{id}?wait=`
//!   → `approval_refused` (+`outcome`) or `issued` (+`codes`, in that one answer only)
//! - `GET /v1/realms/{realm}/users/{username}/devices` → `{"user","devices"}`
//! - `DELETE /v1/realms/{realm}/users/{username}/devices/{id}` → `{"device"}` (revoked)
//!
//! The bodies are the types of [`crate::wire`]; errors are [`ApiError`]s. Every pushauthd call a
//! request makes is bounded by `call_timeout_secs` (504 `upstream_timeout`); waits are bounded
//! by `wait` and the login's own deadline.
//!
//! Handlers live by resource: [`logins`], [`enrollments`], [`devices`]; the CIBA channel is
//! [`crate::ciba`]; extractors are [`crate::extract`].

pub mod backup;
pub mod devices;
pub mod enrollments;
pub mod logins;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pushauth_client::Context;
use pushauth_proto::context::validate_context;
use pushauth_proto::names;

use crate::app::SharedState;
use crate::error::{ApiError, ErrorCode, ErrorNote};
pub use crate::extract::MAX_WAIT_SECS;
use crate::metrics::Metrics;
use crate::wire::{Health, PublicKeyView};

/// Longest user name, in characters (the shared rule's [`names::MAX_USER_CHARS`]).
pub const MAX_USER: usize = names::MAX_USER_CHARS;

/// The shim API's routes, with the body limit and the request counter.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/public-key", get(public_key))
        .route("/v1/logins", post(logins::start))
        .route("/v1/logins/{id}", get(logins::state).delete(logins::cancel))
        .route("/v1/enrollments", post(enrollments::start))
        .route("/v1/backup-codes", post(backup::start))
        .route("/v1/backup-codes/verify", post(backup::verify))
        .route("/v1/backup-codes/{id}", get(backup::state))
        .route("/v1/enrollments/{id}", get(enrollments::state))
        .route(
            "/v1/realms/{realm}/users/{username}/devices",
            get(devices::list),
        )
        .route(
            "/v1/realms/{realm}/users/{username}/devices/{id}",
            delete(devices::remove),
        )
        .route("/ciba/{key}", post(crate::ciba::authenticate))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::extract::DefaultBodyLimit::max(
            pushauth_proto::MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts and logs every request by its route template (never the raw path: the CIBA URL holds
/// a secret), and logs the [`ErrorNote`] of a failed one: the one place errors are logged.
async fn observe(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    Metrics::inc(&state.metrics.http_requests);
    match status {
        400..=499 => Metrics::inc(&state.metrics.http_client_errors),
        500.. => Metrics::inc(&state.metrics.http_server_errors),
        _ => {}
    }
    if let Some(note) = response.extensions().get::<ErrorNote>() {
        let code = note.code.as_str();
        if status >= 500 && note.code != ErrorCode::UpstreamUnreachable {
            tracing::error!(%method, route, status, code, error = %note.detail, "request failed");
        } else {
            tracing::warn!(%method, route, status, code, error = %note.detail, "request refused");
        }
    }
    tracing::debug!(%method, route, status, micros = started.elapsed().as_micros() as u64, "request");
    response
}

/// A user name by the shared rule ([`names::check_user`]): 1 to [`MAX_USER`] characters, none
/// hidden (control, bidi, zero-width…), so `alice` and `alice\u{200B}` cannot be two users.
///
/// # Errors
/// 400 `malformed_request` with the rule's message.
pub fn check_user(user: &str) -> Result<(), ApiError> {
    Ok(names::check_user(user)?)
}

/// Whether `text` is `min` to `max` base64url characters (the shared id alphabet).
fn is_b64url(text: &str, min: usize, max: usize) -> bool {
    text.len() >= min && names::is_url_safe_id(text, max)
}

/// A shim's per-login nonce: 16 to 128 base64url characters.
fn check_nonce(nonce: &str) -> Result<(), ApiError> {
    if is_b64url(nonce, 16, 128) {
        Ok(())
    } else {
        Err(ApiError::malformed(
            "nonce must be 16 to 128 characters of base64url",
        ))
    }
}

/// A shim's login session digest: 16 to 128 base64url characters.
fn check_session(session: &Option<String>) -> Result<(), ApiError> {
    match session {
        Some(s) if !is_b64url(s, 16, 128) => Err(ApiError::malformed(
            "session must be 16 to 128 characters of base64url",
        )),
        _ => Ok(()),
    }
}

/// The shim's context, checked: `service` defaults to `keycloak`, `realm` is the mapped
/// realm, and `action` is the sidecar's to set (a login can never pass for an `add_device`
/// approval).
fn shim_context(mut context: Context, realm: &str) -> Result<Context, ApiError> {
    if context.contains_key("action") {
        return Err(ApiError::invalid_context(
            "context key `action` is set by the sidecar, not the shim",
        ));
    }
    context
        .entry("service".into())
        .or_insert_with(|| "keycloak".into());
    context.insert("realm".into(), realm.to_owned());
    validate_context(&context).map_err(|e| ApiError::invalid_context(e.to_string()))?;
    Ok(context)
}

/// `GET /healthz`.
async fn healthz(State(state): State<SharedState>) -> Json<Health> {
    Json(Health {
        logins: state.logins.len(),
        status: "ok",
    })
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(state.logins.len(), state.enrollments.len()),
    )
}

/// `GET /v1/public-key`.
async fn public_key(State(state): State<SharedState>) -> Json<PublicKeyView> {
    let key = state.signer.public_key();
    Json(PublicKeyView {
        alg: key.alg().as_str(),
        public_key: key.to_b64(),
    })
}

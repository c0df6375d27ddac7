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
//! - `GET /v1/realms/{realm}/users/{username}/devices` → `{"user","devices"}`
//! - `DELETE /v1/realms/{realm}/users/{username}/devices/{id}` → `{"device"}` (revoked)
//!
//! Every pushauthd call a request makes is bounded by `call_timeout_secs` (504
//! `upstream_timeout`); waits are bounded by `wait` and the login's own deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pushauth_client::Context;
use pushauth_proto::context::validate_context;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::app::SharedState;
use crate::enroll::{devices_of, qr_svg, EnrollRequest, EnrollState, Enrollment};
use crate::error::ApiError;
use crate::logins::{Login, LoginState, Purpose, StartRequest};
use crate::metrics::Metrics;
use crate::result_token::ResultFields;

/// Longest long-poll a shim may ask for.
pub const MAX_WAIT_SECS: u64 = 25;
/// Longest user name.
pub const MAX_USER: usize = 256;

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/public-key", get(public_key))
        .route("/v1/logins", post(start_login))
        .route("/v1/logins/{id}", get(login_state).delete(cancel_login))
        .route("/v1/enrollments", post(start_enrollment))
        .route("/v1/enrollments/{id}", get(enrollment_state))
        .route(
            "/v1/realms/{realm}/users/{username}/devices",
            get(list_devices),
        )
        .route(
            "/v1/realms/{realm}/users/{username}/devices/{id}",
            delete(remove_device),
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
/// a secret).
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
    tracing::debug!(%method, route, status, micros = started.elapsed().as_micros() as u64, "request");
    response
}

/// A caller that presented the shared secret.
pub struct Shim;

impl FromRequestParts<SharedState> for Shim {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(presented.as_bytes().ct_eq(state.shared_secret.as_bytes())) {
            Ok(Shim)
        } else {
            Metrics::inc(&state.metrics.unauthorized);
            tracing::warn!("request with a missing or wrong shared secret");
            Err(ApiError::unauthorized())
        }
    }
}

/// A JSON body; wrong JSON, wrong types and unknown fields are `malformed_request`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    413,
                    "payload_too_large",
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

/// `?wait=SECS`, bounded.
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

type QueryMap = Query<HashMap<String, String>>;

fn query_map(
    query: Result<QueryMap, axum::extract::rejection::QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::malformed(format!("bad query string: {}", e.body_text())))
}

/// A user name: 1 to [`MAX_USER`] characters, none hidden ([`pushauth_proto::text::is_hidden`]:
/// control, bidi, zero-width…), so `alice` and `alice\u{200B}` cannot be two users.
pub fn check_user(user: &str) -> Result<(), ApiError> {
    if user.is_empty()
        || user.chars().count() > MAX_USER
        || pushauth_proto::text::first_hidden(user).is_some()
    {
        return Err(ApiError::malformed(format!(
            "user must be 1 to {MAX_USER} printable characters"
        )));
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::malformed(
            "ids are 1 to 128 characters of A-Z, a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(())
}

/// Runs blocking client work on the blocking pool, answering 504 `upstream_timeout` if it takes
/// longer than `call_timeout` (the work itself then finds its deadline passed and undoes what
/// it started: see `Logins::start`).
pub async fn blocking<T: Send + 'static>(
    state: &SharedState,
    f: impl FnOnce(SharedState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    let task = state.runtime.spawn_blocking(move || f(st));
    match tokio::time::timeout(state.call_timeout, task).await {
        Ok(done) => done.map_err(|e| {
            tracing::error!(error = %e, "blocking task failed");
            ApiError::internal()
        })?,
        Err(_) => {
            tracing::warn!(
                timeout_secs = state.call_timeout.as_secs(),
                "pushauthd call took longer than call_timeout_secs"
            );
            Err(ApiError::upstream_timeout())
        }
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

fn is_b64url(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The shim's context, checked: `service` defaults to `keycloak`, `realm` is the mapped
/// realm, and `action` is the sidecar's to set (a login can never pass for an `add_device`
/// approval).
fn shim_context(mut context: Context, realm: &str) -> Result<Context, ApiError> {
    if context.contains_key("action") {
        return Err(ApiError::new(
            400,
            "invalid_context",
            "context key `action` is set by the sidecar, not the shim",
        ));
    }
    context
        .entry("service".into())
        .or_insert_with(|| "keycloak".into());
    context.insert("realm".into(), realm.to_owned());
    validate_context(&context).map_err(|e| ApiError::new(400, "invalid_context", e.to_string()))?;
    Ok(context)
}

async fn healthz(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({"status": "ok", "logins": state.logins.len()}))
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(state.logins.len(), state.enrollments.len()),
    )
}

async fn public_key(State(state): State<SharedState>) -> Json<Value> {
    let key = state.signer.public_key();
    Json(json!({"alg": key.alg().as_str(), "public_key": key.to_b64()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartLogin {
    /// The IdP realm.
    realm: String,
    /// The user name the IdP authenticated (mapped by the realm's rule).
    username: String,
    /// The shim's per-login nonce, echoed (signed) in the result token.
    nonce: String,
    /// The shim's login session digest: a pending login of the same session is cancelled.
    #[serde(default)]
    session: Option<String>,
    /// A key given twice is refused.
    #[serde(
        default,
        deserialize_with = "pushauth_proto::context::deserialize_unique"
    )]
    context: Context,
}

async fn start_login(
    State(state): State<SharedState>,
    _shim: Shim,
    JsonBody(req): JsonBody<StartLogin>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mapped = state.realms.map(&req.realm, &req.username)?;
    if !is_b64url(&req.nonce, 16, 128) {
        return Err(ApiError::malformed(
            "nonce must be 16 to 128 characters of base64url",
        ));
    }
    check_session(&req.session)?;
    let context = shim_context(req.context, &mapped.realm)?;
    let start = StartRequest {
        purpose: Purpose::Login,
        user: mapped.user,
        session: req.session,
        deadline: Instant::now() + state.call_timeout,
        nonce: req.nonce,
        context,
        number_matching: true,
        ttl: state.login_ttl,
    };
    let login = blocking(&state, move |st| st.logins.start(&st.runtime, start)).await?;
    Ok((
        StatusCode::CREATED,
        Json(login_view(&state, &login, &login.state())),
    ))
}

/// A login as the shim sees it; an ended login carries a signed result token.
fn login_view(state: &SharedState, login: &Login, current: &LoginState) -> Value {
    let mut view = json!({
        "id": login.id,
        "user": login.user,
        "state": current.outcome(),
        "code": login.code,
        "devices": login.devices,
        "expires_at": login.expires_at,
    });
    match current {
        LoginState::Pending => {}
        LoginState::Ended {
            device_id,
            device_name,
            ..
        } => {
            view["device_id"] = json!(device_id);
            view["device_name"] = json!(device_name);
        }
        LoginState::Failed { .. } => {
            view["message"] = json!("the push could not be completed; the login fails closed");
        }
    }
    if !current.is_pending() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let token = state.signer.sign(&ResultFields {
            challenge_id: &login.id,
            user: &login.user,
            nonce: &login.nonce,
            outcome: current.outcome(),
            expires_at: now + state.result_ttl.as_secs(),
        });
        view["result"] = json!(token);
    }
    view
}

async fn login_state(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
    query: Result<QueryMap, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let wait = wait_param(&query_map(query)?)?;
    Metrics::inc(&state.metrics.state_requests);
    let login = shim_login(&state, &id)?;
    let current = if wait.is_zero() {
        login.state()
    } else {
        state.logins.wait(&login, wait).await
    };
    Ok(Json(login_view(&state, &login, &current)))
}

async fn cancel_login(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let login = shim_login(&state, &id)?;
    let target = login.clone();
    blocking(&state, move |st| st.logins.cancel(&target)).await?;
    Ok(Json(login_view(&state, &login, &login.state())))
}

/// A login the shim may read or cancel (never an add-device approval).
fn shim_login(state: &SharedState, id: &str) -> Result<std::sync::Arc<Login>, ApiError> {
    state
        .logins
        .get(id)
        .filter(|l| l.purpose == Purpose::Login)
        .ok_or_else(|| ApiError::not_found("login"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartEnrollment {
    realm: String,
    username: String,
    /// The new device's name, shown in the approval push, when the shim knows it.
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    context: Context,
}

async fn start_enrollment(
    State(state): State<SharedState>,
    _shim: Shim,
    JsonBody(req): JsonBody<StartEnrollment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mapped = state.realms.map(&req.realm, &req.username)?;
    check_session(&req.session)?;
    let context = shim_context(req.context, &mapped.realm)?;
    let start = EnrollRequest {
        mapped,
        device_name: req.device_name.filter(|n| !n.is_empty()),
        context,
        session: req.session,
        ttl: state.login_ttl,
        deadline: Instant::now() + state.call_timeout,
    };
    let enrollment = blocking(&state, move |st| {
        st.enrollments.start(&st.logins, &st.runtime, start)
    })
    .await?;
    Metrics::inc(&state.metrics.enrollments_started);
    let target = enrollment.clone();
    let current = blocking(&state, move |st| {
        st.enrollments.check(st.logins.client(), &target)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(enrollment_view(&enrollment, &current)?),
    ))
}

fn enrollment_view(enrollment: &Enrollment, current: &EnrollState) -> Result<Value, ApiError> {
    let mut view = json!({
        "id": enrollment.id,
        "user": enrollment.mapped.user,
        "state": current.as_str(),
    });
    match current {
        EnrollState::Approval {
            code,
            devices,
            expires_at,
        } => {
            view["code"] = json!(code);
            view["devices"] = json!(devices);
            view["expires_at"] = json!(expires_at);
        }
        EnrollState::Refused(outcome) => view["outcome"] = json!(outcome),
        EnrollState::Pending { url, expires_at } => {
            view["url"] = json!(url);
            view["expires_at"] = json!(expires_at);
            view["qr_svg"] = json!(qr_svg(url)?);
        }
        EnrollState::Enrolled(device) => {
            view["device"] =
                json!({"id": device.id, "name": device.name, "created_at": device.created_at});
        }
        EnrollState::Expired => {}
    }
    Ok(view)
}

/// Waits (approval: on the push's outcome; link: polling pushauthd every half second) until the
/// enrollment moves on or `wait` passes.
async fn enrollment_state(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
    query: Result<QueryMap, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let wait = wait_param(&query_map(query)?)?;
    let enrollment = state
        .enrollments
        .get(&id)
        .ok_or_else(|| ApiError::not_found("enrollment"))?;
    let deadline = Instant::now() + wait;
    loop {
        if let Some(approval) = state.enrollments.approval(&enrollment) {
            let left = deadline.saturating_duration_since(Instant::now());
            state.logins.wait(&approval, left).await;
        }
        let target = enrollment.clone();
        let current = blocking(&state, move |st| {
            st.enrollments.check(st.logins.client(), &target)
        })
        .await?;
        let waiting = matches!(
            current,
            EnrollState::Pending { .. } | EnrollState::Approval { .. }
        );
        if !waiting || Instant::now() >= deadline {
            return Ok(Json(enrollment_view(&enrollment, &current)?));
        }
        if matches!(current, EnrollState::Pending { .. }) {
            tokio::time::sleep(Duration::from_millis(500).min(deadline - Instant::now())).await;
        }
    }
}

async fn list_devices(
    State(state): State<SharedState>,
    _shim: Shim,
    Path((realm, username)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mapped = state.realms.map(&realm, &username)?;
    let user = mapped.user.clone();
    let devices = blocking(&state, move |st| devices_of(st.logins.client(), &user)).await?;
    let devices: Vec<Value> = devices
        .into_iter()
        .map(|d| json!({"id": d.id, "name": d.name, "created_at": d.created_at, "last_seen_at": d.last_seen_at}))
        .collect();
    Ok(Json(json!({"user": mapped.user, "devices": devices})))
}

async fn remove_device(
    State(state): State<SharedState>,
    _shim: Shim,
    Path((realm, username, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mapped = state.realms.map(&realm, &username)?;
    check_id(&id)?;
    let user = mapped.user;
    let device = blocking(&state, move |st| {
        let client = st.logins.client();
        // Only a device of this user: a shim acting for alice must not revoke bob's phone.
        if !devices_of(client, &user)?.iter().any(|d| d.id == id) {
            return Err(ApiError::new(
                404,
                "unknown_device",
                "the user has no such active device",
            ));
        }
        let device = crate::upstream::revoke_device(client, &user, &id)?;
        tracing::info!(user, device = %id, "device revoked");
        Ok(device)
    })
    .await?;
    Ok(Json(
        json!({"device": {"id": device.id, "name": device.name, "created_at": device.created_at}}),
    ))
}

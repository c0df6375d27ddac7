//! Shared state, the route table (the one list the router and the OpenAPI check both use) and
//! the middleware that keeps every error JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use pushauth_proto::wire::ErrorCode;
use tokio::sync::watch;

use crate::api::{admin, device, ops, rp};
use crate::clock::Millis;
use crate::config::{ServerConfig, WebhookConfig};
use crate::error::ApiError;
use crate::jobs::StoreJobs;
use crate::metrics::Metrics;
use crate::store::{ChallengeRecord, Expired, SharedStore, Store, StoreResult};
use crate::waiters::Waiters;

/// Everything handlers share.
pub struct AppState {
    pub config: ServerConfig,
    /// Base URL for enrollment links.
    pub base_url: String,
    pub store: SharedStore,
    /// The threads that run store operations.
    pub jobs: StoreJobs,
    pub waiters: Waiters,
    pub metrics: Metrics,
    pub webhook: Option<Arc<WebhookConfig>>,
    /// Turns true when the server stops, so long-polls end at once.
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Runs a blocking store operation on a store thread.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        match self.jobs.run(f).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => {
                tracing::error!("store job failed");
                Err(ApiError::internal())
            }
        }
    }

    /// Runs several store operations (and checks between them) as one job on a store thread:
    /// one thread hand-off per request instead of one per operation.
    pub async fn db_try<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, ApiError> + Send + 'static,
    {
        match self.jobs.run(f).await {
            Ok(result) => result,
            Err(_) => {
                tracing::error!("store job failed");
                Err(ApiError::internal())
            }
        }
    }

    /// Reads a challenge (expiring it if due, and then waking its waiters).
    pub async fn fetch_challenge(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<ChallengeRecord>, ApiError> {
        let key = id.to_owned();
        let found = self.db(move |s| s.get_challenge(&key, now)).await?;
        Ok(found.map(|(challenge, just_expired)| {
            if just_expired {
                self.expired(&[Expired {
                    id: challenge.id.clone(),
                    devices: challenge.devices.clone(),
                }]);
            }
            challenge
        }))
    }

    /// Bookkeeping for challenges the store just expired.
    pub fn expired(&self, list: &[Expired]) {
        for e in list {
            self.metrics.challenge("expired");
            self.waiters.challenge_changed(&e.id, &e.devices);
        }
    }

    /// Bookkeeping for a challenge that just changed state.
    pub fn changed(&self, challenge: &ChallengeRecord) {
        if challenge.state.is_terminal() {
            self.metrics.challenge(challenge.state.as_str());
        }
        self.waiters.challenge_updated(challenge);
    }

    /// True once the server is stopping.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// One route: method, path (axum and OpenAPI use the same `{param}` syntax) and handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<SharedState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<SharedState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route the server serves.
pub fn routes() -> Vec<Route> {
    vec![
        // relying parties
        route(
            Method::GET,
            "/v1/users/{user}/devices",
            get(rp::user_devices),
        ),
        route(
            Method::DELETE,
            "/v1/users/{user}/devices/{id}",
            delete(rp::revoke_user_device),
        ),
        route(Method::POST, "/v1/enrollments", post(rp::create_enrollment)),
        route(Method::POST, "/v1/challenges", post(rp::create_challenge)),
        route(Method::GET, "/v1/challenges/{id}", get(rp::get_challenge)),
        route(
            Method::DELETE,
            "/v1/challenges/{id}",
            delete(rp::cancel_challenge),
        ),
        // devices
        route(Method::POST, "/v1/device/enroll", post(device::enroll)),
        route(Method::GET, "/v1/device/challenges", get(device::list)),
        route(Method::GET, "/v1/device/notices", get(device::notices)),
        route(
            Method::POST,
            "/v1/device/challenges/{id}/ack",
            post(device::ack),
        ),
        route(
            Method::POST,
            "/v1/device/challenges/{id}/response",
            post(device::respond),
        ),
        // administrators
        route(
            Method::POST,
            "/v1/admin/enrollments",
            post(admin::create_enrollment),
        ),
        route(
            Method::GET,
            "/v1/admin/users/{user}/devices",
            get(admin::user_devices),
        ),
        route(
            Method::DELETE,
            "/v1/admin/devices/{id}",
            delete(admin::revoke_device),
        ),
        route(
            Method::POST,
            "/v1/admin/relying-parties",
            post(admin::create_relying_party),
        ),
        route(
            Method::GET,
            "/v1/admin/relying-parties",
            get(admin::list_relying_parties),
        ),
        route(
            Method::DELETE,
            "/v1/admin/relying-parties/{id}",
            delete(admin::revoke_relying_party),
        ),
        route(
            Method::POST,
            "/v1/admin/relying-parties/{id}/rotate",
            post(admin::rotate_relying_party),
        ),
        route(Method::GET, "/v1/admin/audit", get(admin::audit)),
        // operations
        route(Method::GET, "/healthz", get(ops::healthz)),
        route(Method::GET, "/metrics", get(ops::metrics)),
        route(Method::GET, "/openapi.json", get(ops::openapi)),
    ]
}

/// The (method, path) pairs of [`routes`].
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|r| (r.method, r.path)).collect()
}

/// The application router with its middleware.
pub fn router(state: SharedState) -> Router {
    let mut router = Router::new();
    for r in routes() {
        // Several methods on one path merge into one method router.
        router = router.route(r.path, r.handler);
    }
    router
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(pushauth_proto::MAX_BODY_BYTES))
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed on this route"),
    )
}

/// Records request latency by route.
async fn observe(
    State(state): State<SharedState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = matched
        .as_ref()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let response = next.run(request).await;
    state.metrics.observe_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Turns any non-JSON error response (axum's own rejections) into the API's error body.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let code = match status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::LENGTH_REQUIRED => ErrorCode::MalformedRequest,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        _ => ErrorCode::Internal,
    };
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    ApiError::new(code, text).into_response()
}

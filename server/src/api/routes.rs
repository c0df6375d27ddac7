//! The route table (the one list the router and the OpenAPI check both use) and the
//! middleware: latency by route, JSON bodies for every error, and one log line for every
//! server failure.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use pushauth_proto::wire::ErrorCode;

use super::error::{FailureCause, LoggedAnswer};
use super::{
    admin, backup, device, device_self, grace, offline, ops, push, rp, rp_wait, web, ApiError,
};
use crate::state::SharedState;

/// One route: method, path (axum and OpenAPI use the same `{param}` syntax) and handler.
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path, with `{param}` placeholders.
    pub path: &'static str,
    /// The handler.
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
        route(
            Method::POST,
            "/v1/users/{user}/backup-codes",
            post(backup::rp_issue),
        ),
        route(
            Method::POST,
            "/v1/users/{user}/backup-codes/verify",
            post(backup::rp_verify),
        ),
        route(Method::POST, "/v1/challenges", post(rp::create_challenge)),
        route(Method::GET, "/v1/challenges", get(rp_wait::wait_any)),
        route(Method::GET, "/v1/challenges/{id}", get(rp::get_challenge)),
        route(
            Method::DELETE,
            "/v1/challenges/{id}",
            delete(rp::cancel_challenge),
        ),
        // offline codes (issue 12)
        route(
            Method::POST,
            "/v1/challenges/{id}/offline",
            post(offline::values),
        ),
        route(
            Method::POST,
            "/v1/users/{user}/offline-used",
            post(offline::used),
        ),
        // devices
        route(Method::POST, "/v1/device/enroll", post(device::enroll)),
        route(Method::GET, "/v1/device/challenges", get(device::list)),
        route(Method::GET, "/v1/device/notices", get(device::notices)),
        route(
            Method::POST,
            "/v1/device/backup-codes",
            post(backup::device_issue),
        ),
        route(
            Method::GET,
            "/v1/device/enrollment",
            get(device_self::enrollment),
        ),
        route(Method::DELETE, "/v1/device", delete(device_self::remove)),
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
        route(
            Method::PUT,
            "/v1/device/push-subscription",
            put(push::set_subscription),
        ),
        route(
            Method::DELETE,
            "/v1/device/push-subscription",
            delete(push::remove_subscription),
        ),
        route(Method::GET, "/v1/push/vapid", get(push::vapid)),
        route(
            Method::DELETE,
            "/v1/device/grace",
            delete(grace::device_end),
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
            Method::POST,
            "/v1/admin/users/{user}/backup-codes",
            post(backup::admin_issue),
        ),
        route(
            Method::DELETE,
            "/v1/admin/users/{user}/backup-codes",
            delete(backup::admin_void),
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
        route(
            Method::POST,
            "/v1/admin/users/{user}/unlock",
            post(admin::unlock_user),
        ),
        route(
            Method::DELETE,
            "/v1/admin/users/{user}/grace",
            delete(grace::admin_end),
        ),
        // operations
        route(Method::GET, "/healthz", get(ops::healthz)),
        route(Method::GET, "/metrics", get(ops::metrics)),
        route(Method::GET, "/openapi.json", get(ops::openapi)),
        // the web app
        route(Method::GET, "/", get(web::to_app)),
        route(Method::GET, "/app", get(web::to_app)),
        route(Method::GET, "/app/", get(web::index)),
        route(Method::GET, "/app/{*path}", get(web::file)),
        route(Method::GET, "/enroll", get(web::enroll)),
    ]
}

/// The (method, path) pairs of [`routes`], with a catch-all `{*name}` written `{name}` as
/// OpenAPI has it.
pub fn route_list() -> Vec<(Method, String)> {
    routes()
        .into_iter()
        .map(|r| (r.method, r.path.replace("{*", "{")))
        .collect()
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
        .layer(middleware::from_fn(finish_responses))
        .with_state(state)
}

/// Every response's last steps, in one middleware: [`json_errors`], then [`log_failure`],
/// then the cheap defensive headers (no framing, no referrer, no sniffing; the app's own
/// responses already carry its stricter set).
///
/// One layer rather than three because each `from_fn` layer boxes its future and the inner
/// service's for as long as the request lasts: a relying party's long-poll holds them for
/// its whole wait, and 10,000 waits held about 2 KiB more each (the bench's memory phase).
async fn finish_responses(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = json_errors(next.run(request).await).await;
    log_failure(&method, &path, &response);
    crate::web::headers::set_api_headers(response.headers_mut());
    response
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
async fn json_errors(response: Response) -> Response {
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

/// Logs a server failure once, with the cause its [`ApiError`] kept for the log (the
/// conversion to a response only maps).
fn log_failure(method: &Method, path: &str, response: &Response) {
    if response.status().is_server_error() && response.extensions().get::<LoggedAnswer>().is_none()
    {
        let cause = response
            .extensions()
            .get::<FailureCause>()
            .map_or("", |c| c.0.as_str());
        tracing::error!(status = response.status().as_u16(), %method, %path, %cause, "request failed");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    /// Log lines written while a test runs.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn issue10_item1_a_server_failure_is_logged_once_with_its_cause() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let router: Router = Router::new()
            .route(
                "/fails",
                get(|| async { ApiError::internal("store: disk I/O error") }),
            )
            .route(
                "/refuses",
                get(|| async { ApiError::new(ErrorCode::Forbidden, "no") }),
            )
            .route(
                "/not-ready",
                get(|| async {
                    let mut response = (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(serde_json::json!({"status": "not_ready"})),
                    )
                        .into_response();
                    response.extensions_mut().insert(LoggedAnswer);
                    response
                }),
            )
            .layer(middleware::from_fn(finish_responses));
        let call = |path: &'static str| {
            let router = router.clone();
            async move {
                let request = Request::builder().uri(path).body(Body::empty()).unwrap();
                router.oneshot(request).await.unwrap()
            }
        };
        let response = call("/fails").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains("\"internal\"") && !body.contains("disk"),
            "{body}"
        );
        let response = call("/refuses").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        // Session 22: `/healthz`'s "not ready" is an answer its handler logs itself, with its
        // cause; it was also logged as a failed request with an empty cause, an ERROR a line
        // for each probe of a load balancer while the database was down.
        let response = call("/not-ready").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        // One line for the failure, none for the refusal or the answer, none from the
        // conversion.
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(text.matches("request failed").count(), 1, "{text}");
        assert!(
            text.contains("store: disk I/O error") && text.contains("/fails"),
            "{text}"
        );
    }
}

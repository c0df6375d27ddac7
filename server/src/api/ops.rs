//! Operations endpoints: health, Prometheus metrics, and the checked-in OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::error::LoggedAnswer;
use super::ApiError;
use crate::clock;
use crate::service;
use crate::state::SharedState;

/// The OpenAPI 3.1 description of this API (checked in as `server/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// How long `GET /healthz` waits for the store before it says "not ready": a load balancer's
/// probe must get an answer, never a hung request.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// How often at most a probe also checks that a commit comes back
/// ([`Store::health`](crate::store::Store::health) with `commit`): on PostgreSQL that commits
/// an empty transaction, and unauthenticated requests must not make the database flush its log
/// more often than this. Every probe checks that the database answers.
pub const COMMIT_PROBE_EVERY: Duration = Duration::from_secs(1);

/// `GET /healthz`: readiness. 200 `{"status":"ready"}` when the store answered a cheap query
/// within [`HEALTH_TIMEOUT`]; else 503 `{"status":"not_ready","reason":"store_unavailable"}`
/// (a load balancer routes around this replica). At most one probe job is queued for the
/// store at a time (it holds [`crate::state::AppState::health_probe`] until it has run), so
/// probes against a stuck store cannot pile up work; later probes wait for it, within the
/// same bound. A commit is checked at most every [`COMMIT_PROBE_EVERY`].
pub async fn healthz(State(state): State<SharedState>) -> axum::response::Response {
    let deadline = tokio::time::Instant::now() + HEALTH_TIMEOUT;
    let probe = async {
        let mut last_commit = Arc::clone(&state.health_probe).lock_owned().await;
        let commit = !last_commit.is_some_and(|at| at.elapsed() < COMMIT_PROBE_EVERY);
        state
            .run(move |s| {
                let answered = s.health(commit);
                if commit && answered.is_ok() {
                    *last_commit = Some(std::time::Instant::now());
                }
                drop(last_commit);
                answered.map_err(service::Error::from)
            })
            .await
    };
    match tokio::time::timeout_at(deadline, probe).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        outcome => {
            let (why, unreachable) = match outcome {
                Ok(Err(e)) => {
                    let unreachable =
                        matches!(&e, service::Error::Store(store) if store.is_unavailable());
                    (e.to_string(), unreachable)
                }
                _ => (
                    format!("no answer within {} s", HEALTH_TIMEOUT.as_secs()),
                    true,
                ),
            };
            // A database out of reach is a state of the site (a warning for every probe); any
            // other failure of the probe is pushauthd's own, and an error, as a request's is.
            if unreachable {
                tracing::warn!(error = %why, "not ready: the store did not answer");
            } else {
                tracing::error!(error = %why, "not ready: the store's check failed");
            }
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "store_unavailable"})),
            )
                .into_response();
            // Logged just above, with its cause: not a failed request as well.
            response.extensions_mut().insert(LoggedAnswer);
            response
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<SharedState>) -> Result<impl IntoResponse, ApiError> {
    let now = clock::now_ms();
    let open = state
        .run(move |s| s.open_challenges(now).map_err(service::Error::from))
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(open),
    ))
}

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

//! Operations endpoints: health, Prometheus metrics, and the checked-in OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::ApiError;
use crate::clock;
use crate::service;
use crate::state::SharedState;

/// The OpenAPI 3.1 description of this API (checked in as `server/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /healthz`: 200 when the store answers.
pub async fn healthz(State(state): State<SharedState>) -> Result<impl IntoResponse, ApiError> {
    state
        .run(|s| s.health().map_err(service::Error::from))
        .await?;
    Ok(Json(json!({"status": "ok"})))
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

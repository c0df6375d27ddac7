//! Blocking pushauthd work (the client is blocking) run off the async workers, bounded by the
//! sidecar's call deadline (`call_timeout_secs`).

use crate::app::SharedState;
use crate::error::ApiError;

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

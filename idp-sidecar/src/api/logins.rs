//! `/v1/logins`: start a push login, read (long-poll) and cancel it.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::{check_nonce, check_session, shim_context};
use crate::app::SharedState;
use crate::blocking::blocking;
use crate::error::ApiError;
use crate::extract::{JsonBody, Shim, Wait};
use crate::logins::{Login, LoginState, Purpose, StartRequest};
use crate::metrics::Metrics;
use crate::result_token::ResultFields;
use crate::wire::{LoginView, StartLogin};

/// `POST /v1/logins` → 201 and the login.
pub async fn start(
    State(state): State<SharedState>,
    _shim: Shim,
    JsonBody(req): JsonBody<StartLogin>,
) -> Result<(StatusCode, Json<LoginView>), ApiError> {
    let mapped = state.realms.map(&req.realm, &req.username)?;
    check_nonce(&req.nonce)?;
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
        Json(view(&state, &login, &login.state())),
    ))
}

/// `GET /v1/logins/{id}?wait=SECS` → the login, once it ends or `wait` passes.
pub async fn state(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
    Wait(wait): Wait,
) -> Result<Json<LoginView>, ApiError> {
    Metrics::inc(&state.metrics.state_requests);
    let login = shim_login(&state, &id)?;
    let current = if wait.is_zero() {
        login.state()
    } else {
        state.logins.wait(&login, wait).await
    };
    Ok(Json(view(&state, &login, &current)))
}

/// `DELETE /v1/logins/{id}` → the cancelled login; 409 `wrong_state` once it has ended.
pub async fn cancel(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
) -> Result<Json<LoginView>, ApiError> {
    let login = shim_login(&state, &id)?;
    let target = login.clone();
    blocking(&state, move |st| st.logins.cancel(&target)).await?;
    Ok(Json(view(&state, &login, &login.state())))
}

/// A login the shim may read or cancel (never an add-device approval).
fn shim_login(state: &SharedState, id: &str) -> Result<Arc<Login>, ApiError> {
    state
        .logins
        .get(id)
        .filter(|l| l.purpose == Purpose::Login)
        .ok_or_else(|| ApiError::not_found("login"))
}

/// A login as the shim sees it; an ended login carries a signed result token.
fn view(state: &SharedState, login: &Login, current: &LoginState) -> LoginView {
    let mut view = LoginView {
        code: login.code.clone(),
        device_id: None,
        device_name: None,
        devices: login.devices.clone(),
        expires_at: login.expires_at.clone(),
        id: login.id.clone(),
        message: None,
        result: None,
        state: current.outcome(),
        user: login.user.clone(),
    };
    match current {
        LoginState::Pending => {}
        LoginState::Ended {
            device_id,
            device_name,
            ..
        } => {
            view.device_id = Some(device_id.clone());
            view.device_name = Some(device_name.clone());
        }
        LoginState::Failed { .. } => {
            view.message =
                Some("the push could not be completed; the login fails closed".to_owned());
        }
    }
    if !current.is_pending() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        view.result = Some(state.signer.sign(&ResultFields {
            challenge_id: &login.id,
            user: &login.user,
            nonce: &login.nonce,
            outcome: current.outcome().as_str(),
            expires_at: now + state.result_ttl.as_secs(),
        }));
    }
    view
}

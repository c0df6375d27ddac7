//! `/v1/enrollments`: start a device enrollment (an approval by an existing device first, a
//! backup code instead of it for a lost device, or a link at once for a first device where the
//! realm allows it) and follow it.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pushauth_proto::names;
use zeroize::Zeroizing;

use super::{check_session, shim_context};
use crate::api::backup::check_code;
use crate::app::SharedState;
use crate::blocking::blocking;
use crate::enroll::{qr_svg, EnrollRequest, EnrollState, Enrollment, Started};
use crate::error::ApiError;
use crate::extract::{JsonBody, Shim, Wait};
use crate::metrics::Metrics;
use crate::wire::{DeviceSummary, EnrollmentView, StartEnrollment};

/// `POST /v1/enrollments` → 201 and the enrollment (`approval_pending` or `pending`).
pub async fn start(
    State(state): State<SharedState>,
    _shim: Shim,
    JsonBody(req): JsonBody<StartEnrollment>,
) -> Result<(StatusCode, Json<EnrollmentView>), ApiError> {
    let mapped = state.realms.map(&req.realm, &req.username)?;
    check_session(&req.session)?;
    // The name is shown in the approval push: the shared device-name rule (64 printable
    // characters), as pushauthd applies to the name the device enrolls with.
    let device_name = req.device_name.filter(|n| !n.is_empty());
    if let Some(name) = &device_name {
        names::check_device_name(name)?;
    }
    let context = shim_context(req.context, &mapped.realm)?;
    let backup_code = req.backup_code.map(Zeroizing::new);
    if let Some(code) = &backup_code {
        check_code(code)?;
    }
    let start = EnrollRequest {
        mapped,
        device_name,
        context,
        session: req.session,
        ttl: state.login_ttl,
        deadline: Instant::now() + state.call_timeout,
        backup_code,
    };
    let Started {
        enrollment,
        replacement,
    } = blocking(&state, move |st| {
        st.enrollments.start(&st.logins, &st.runtime, start)
    })
    .await?;
    Metrics::inc(&state.metrics.enrollments_started);
    let target = enrollment.clone();
    let current = blocking(&state, move |st| {
        st.enrollments.check(st.logins.client(), &target)
    })
    .await?;
    let mut answer = view(&enrollment, &current)?;
    answer.replacement = replacement;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /v1/enrollments/{id}?wait=SECS`: waits (approval: on the push's outcome; link: polling
/// pushauthd every half second) until the enrollment moves on or `wait` passes.
pub async fn state(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
    Wait(wait): Wait,
) -> Result<Json<EnrollmentView>, ApiError> {
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
            return Ok(Json(view(&enrollment, &current)?));
        }
        if matches!(current, EnrollState::Pending { .. }) {
            tokio::time::sleep(Duration::from_millis(500).min(deadline - Instant::now())).await;
        }
    }
}

/// An enrollment as the shim sees it.
fn view(enrollment: &Enrollment, current: &EnrollState) -> Result<EnrollmentView, ApiError> {
    let mut view = EnrollmentView {
        code: None,
        device: None,
        devices: None,
        expires_at: None,
        id: enrollment.id.clone(),
        outcome: None,
        qr_svg: None,
        replacement: None,
        state: current.state(),
        url: None,
        user: enrollment.mapped.user.clone(),
    };
    match current {
        EnrollState::Approval {
            code,
            devices,
            expires_at,
        } => {
            view.code = Some(code.clone());
            view.devices = Some(devices.clone());
            view.expires_at = Some(expires_at.clone());
        }
        EnrollState::Refused(outcome) => view.outcome = Some(*outcome),
        EnrollState::Pending { url, expires_at } => {
            view.url = Some(url.clone());
            view.expires_at = Some(expires_at.clone());
            view.qr_svg = Some(qr_svg(url)?);
        }
        EnrollState::Enrolled(device) => {
            view.device = Some(DeviceSummary {
                created_at: device.created_at.clone(),
                id: device.id.clone(),
                name: device.name.clone(),
            });
        }
        EnrollState::Expired => {}
    }
    Ok(view)
}

//! `/v1/realms/{realm}/users/{username}/devices`: list and revoke the mapped user's devices.

use axum::extract::{Path, State};
use axum::Json;
use pushauth_proto::names;

use crate::app::SharedState;
use crate::blocking::blocking;
use crate::enroll::devices_of;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Shim;
use crate::wire::{DeviceList, DeviceListItem, DeviceSummary, RemovedDevice};

/// `GET …/devices` → the mapped user's active devices (none for a user pushauthd does not know).
pub async fn list(
    State(state): State<SharedState>,
    _shim: Shim,
    Path((realm, username)): Path<(String, String)>,
) -> Result<Json<DeviceList>, ApiError> {
    let mapped = state.realms.map(&realm, &username)?;
    let user = mapped.user.clone();
    let devices = blocking(&state, move |st| devices_of(st.logins.client(), &user)).await?;
    let devices = devices
        .into_iter()
        .map(|d| DeviceListItem {
            created_at: d.created_at,
            id: d.id,
            last_seen_at: d.last_seen_at,
            name: d.name,
        })
        .collect();
    Ok(Json(DeviceList {
        devices,
        user: mapped.user,
    }))
}

/// `DELETE …/devices/{id}` → the revoked device; 404 `unknown_device` unless it is one of the
/// mapped user's active devices.
pub async fn remove(
    State(state): State<SharedState>,
    _shim: Shim,
    Path((realm, username, id)): Path<(String, String, String)>,
) -> Result<Json<RemovedDevice>, ApiError> {
    let mapped = state.realms.map(&realm, &username)?;
    names::check_id("device", &id)?;
    let user = mapped.user;
    let device = blocking(&state, move |st| {
        let client = st.logins.client();
        // Only a device of this user: a shim acting for alice must not revoke bob's phone.
        if !devices_of(client, &user)?.iter().any(|d| d.id == id) {
            return Err(ApiError::new(
                ErrorCode::UnknownDevice,
                "the user has no such active device",
            ));
        }
        let device = crate::upstream::revoke_device(client, &user, &id)?;
        tracing::info!(user, device = %id, "device revoked");
        Ok(device)
    })
    .await?;
    Ok(Json(RemovedDevice {
        device: DeviceSummary {
            created_at: device.created_at,
            id: device.id,
            name: device.name,
        },
    }))
}

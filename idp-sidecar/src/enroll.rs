//! Device enrollments started for a user who has just logged in: the link (and its QR code) for
//! the shim to show, and whether a device has enrolled with it since.
//!
//! pushauthd has no "enrollment state" call, so the sidecar notes the user's devices when it asks
//! for the link; a device that appears afterwards is the enrolled one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pushauth_client::DeviceInfo;
use pushauth_proto::random;
use qrcode::render::svg;
use qrcode::QrCode;

use crate::admin::Admin;
use crate::error::ApiError;

/// Enrollment link lifetime.
pub const ENROLL_TTL: Duration = Duration::from_secs(600);

/// One enrollment.
#[derive(Debug)]
pub struct Enrollment {
    pub id: String,
    pub user: String,
    pub url: String,
    pub expires_at: String,
    deadline: Instant,
    known: HashSet<String>,
    done: Mutex<Option<DeviceInfo>>,
}

/// Where an enrollment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollState {
    Pending,
    Enrolled(DeviceInfo),
    Expired,
}

impl EnrollState {
    pub fn as_str(&self) -> &'static str {
        match self {
            EnrollState::Pending => "pending",
            EnrollState::Enrolled(_) => "enrolled",
            EnrollState::Expired => "expired",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry; bounded like the logins.
#[derive(Debug)]
pub struct Enrollments {
    admin: Option<Arc<Admin>>,
    map: Mutex<HashMap<String, Arc<Enrollment>>>,
    max: usize,
}

impl Enrollments {
    pub fn new(admin: Option<Arc<Admin>>, max: usize) -> Self {
        Enrollments {
            admin,
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    pub fn admin(&self) -> Result<&Admin, ApiError> {
        self.admin
            .as_deref()
            .ok_or_else(ApiError::admin_not_configured)
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &str) -> Option<Arc<Enrollment>> {
        lock(&self.map).get(id).cloned()
    }

    /// Asks pushauthd for a link (blocking).
    pub fn start(&self, user: &str) -> Result<Arc<Enrollment>, ApiError> {
        let admin = self.admin()?;
        if self.len() >= self.max {
            return Err(ApiError::new(
                429,
                "too_many_pending",
                "too many enrollments in progress; try again shortly",
            ));
        }
        let known = admin.devices(user)?.into_iter().map(|d| d.id).collect();
        let created = admin.create_enrollment(user, Some(ENROLL_TTL.as_secs()))?;
        let id = random::id().map_err(|_| ApiError::internal())?;
        let enrollment = Arc::new(Enrollment {
            id: id.clone(),
            user: user.to_owned(),
            url: created.url,
            expires_at: created.expires_at,
            deadline: Instant::now() + ENROLL_TTL,
            known,
            done: Mutex::new(None),
        });
        lock(&self.map).insert(id, enrollment.clone());
        tracing::info!(enrollment = %enrollment.id, user, "enrollment started");
        Ok(enrollment)
    }

    /// Looks once whether a new device has appeared (blocking).
    pub fn check(&self, enrollment: &Enrollment) -> Result<EnrollState, ApiError> {
        if let Some(device) = lock(&enrollment.done).clone() {
            return Ok(EnrollState::Enrolled(device));
        }
        let devices = self.admin()?.devices(&enrollment.user)?;
        if let Some(device) = devices
            .into_iter()
            .find(|d| !enrollment.known.contains(&d.id))
        {
            tracing::info!(enrollment = %enrollment.id, user = %enrollment.user, device = %device.id, "device enrolled");
            *lock(&enrollment.done) = Some(device.clone());
            return Ok(EnrollState::Enrolled(device));
        }
        if Instant::now() >= enrollment.deadline {
            return Ok(EnrollState::Expired);
        }
        Ok(EnrollState::Pending)
    }

    /// Drops enrollments well past their link's lifetime.
    pub fn sweep(&self) {
        let now = Instant::now();
        lock(&self.map).retain(|_, e| now < e.deadline + Duration::from_secs(300));
    }
}

/// The link as an SVG QR code, for the shim to show as an image.
pub fn qr_svg(url: &str) -> Result<String, ApiError> {
    let code = QrCode::new(url.as_bytes()).map_err(|_| ApiError::internal())?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_svg() {
        let svg = qr_svg("http://127.0.0.1:8443/enroll?token=abc").unwrap();
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{}",
            &svg[..40]
        );
        assert!(svg.contains("</svg>"));
    }
}

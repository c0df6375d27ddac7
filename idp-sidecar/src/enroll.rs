//! Device enrollments started for a user who has just signed in to the IdP.
//!
//! Who may get an enrollment link (issue 9 item 1):
//! - a user who already has an active device: only after one of those devices approves a push
//!   "Add a new device to your account?" (a challenge with context `action = "add_device"`,
//!   number matching on, the code shown on the IdP page). The sidecar verifies the device's
//!   signature on that answer as for a login, then asks pushauthd for the link passing the
//!   approved challenge's id as `approval`; pushauthd checks and consumes it.
//! - a user with no device: only in a realm with `bootstrap = true` (and the sidecar's
//!   relying-party key needs pushauthd's `bootstrap` right too); otherwise 403
//!   `bootstrap_not_allowed`: an administrator must enroll the first device.
//!
//! pushauthd has no "enrollment state" call, so the sidecar notes the user's devices when it asks
//! for the link; a device that appears afterwards is the enrolled one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pushauth_client::{Client, ClientError, Context, DeviceInfo};
use pushauth_proto::random;
use qrcode::render::svg;
use qrcode::QrCode;
use zeroize::Zeroizing;

use crate::account_change::{self, AccountChange, Asked};
use crate::error::{ApiError, ErrorCode};
use crate::logins::{Login, LoginState, Logins, Purpose};
use crate::realms::Mapped;
use crate::wire::{EnrollmentState, LoginOutcome};

/// Enrollment link lifetime.
pub const ENROLL_TTL: Duration = Duration::from_secs(600);

/// Where one enrollment is.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for an existing device to approve adding one.
    Approval(Arc<Login>),
    /// The approval ended without "approved" (how it ended).
    Refused(LoginOutcome),
    /// A link was issued; `known` are the device ids the user had before.
    Link {
        url: String,
        expires_at: String,
        deadline: Instant,
        known: HashSet<String>,
    },
    /// A new device appeared.
    Enrolled(DeviceInfo),
}

/// One enrollment.
#[derive(Debug)]
pub struct Enrollment {
    /// The enrollment's id on the shim API (random, not pushauthd's).
    pub id: String,
    /// Whose device it enrolls.
    pub mapped: Mapped,
    created: Instant,
    stage: Mutex<Stage>,
}

/// Where an enrollment stands, as the shim sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollState {
    /// An existing device must approve first: show `code` (sent to `devices`).
    Approval {
        /// The code to type on the existing device.
        code: Option<String>,
        /// The names of the devices asked.
        devices: Vec<String>,
        /// When the approval push expires (RFC 3339).
        expires_at: String,
    },
    /// The existing device did not approve (`denied`, `reported`, `code_mismatch`, `expired`,
    /// `cancelled` or `error`): no link was issued.
    Refused(LoginOutcome),
    /// The link is ready; the new device has not enrolled yet.
    Pending {
        /// The single-use enrollment link.
        url: String,
        /// When it expires (RFC 3339).
        expires_at: String,
    },
    /// The new device enrolled.
    Enrolled(DeviceInfo),
    /// The link expired unused.
    Expired,
}

impl EnrollState {
    /// The state word on the wire.
    pub fn state(&self) -> EnrollmentState {
        match self {
            EnrollState::Approval { .. } => EnrollmentState::ApprovalPending,
            EnrollState::Refused(_) => EnrollmentState::ApprovalRefused,
            EnrollState::Pending { .. } => EnrollmentState::Pending,
            EnrollState::Enrolled(_) => EnrollmentState::Enrolled,
            EnrollState::Expired => EnrollmentState::Expired,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The user's active devices; a user pushauthd does not know yet has none.
pub fn devices_of(client: &Client, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
    match client.devices(user) {
        Ok(devices) => Ok(devices),
        Err(ClientError::UnknownUser | ClientError::NoDevice) => Ok(Vec::new()),
        Err(e) => Err(ApiError::from(e)),
    }
}

/// What the shim sends to start an enrollment, mapped.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// Whose device it enrolls.
    pub mapped: Mapped,
    /// Shown on the existing device ("Add device 'X'?") when the shim knows it.
    pub device_name: Option<String>,
    /// Login context (ip, user agent, client…) for the approval push.
    pub context: Context,
    /// The shim's login session (see [`StartRequest::session`]).
    pub session: Option<String>,
    /// The approval push's lifetime.
    pub ttl: Duration,
    /// The start must be done by then (see [`StartRequest::deadline`]).
    pub deadline: Instant,
    /// A backup code instead of the approval push (the person lost their device): pushauthd
    /// consumes it and the link comes at once.
    pub backup_code: Option<Zeroizing<String>>,
}

/// A started enrollment, and the replacement for the backup code it used, if it used one.
#[derive(Debug)]
pub struct Started {
    /// The enrollment.
    pub enrollment: Arc<Enrollment>,
    /// The new code replacing the one used (show it once).
    pub replacement: Option<String>,
}

/// The registry; bounded like the logins.
#[derive(Debug)]
pub struct Enrollments {
    map: Mutex<HashMap<String, Arc<Enrollment>>>,
    max: usize,
}

impl Enrollments {
    /// An empty registry holding at most `max` enrollments.
    pub fn new(max: usize) -> Self {
        Enrollments {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// Enrollments held.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The enrollment with this id, if held.
    pub fn get(&self, id: &str) -> Option<Arc<Enrollment>> {
        lock(&self.map).get(id).cloned()
    }

    /// Starts an enrollment (blocking): an approval push to the user's devices, or, for a user
    /// with none in a bootstrap realm, the link at once; with a backup code, the link at once
    /// (pushauthd consumes the code; the approval push of this session, if any, is cancelled).
    pub fn start(
        &self,
        logins: &Logins,
        runtime: &tokio::runtime::Handle,
        req: EnrollRequest,
    ) -> Result<Started, ApiError> {
        if self.len() >= self.max {
            return Err(ApiError::new(
                ErrorCode::TooManyPending,
                "too many enrollments in progress; try again shortly",
            ));
        }
        let client = logins.client();
        let user = req.mapped.user.clone();
        let devices = devices_of(client, &user)?;
        let mut replacement = None;
        let stage = if let Some(code) = &req.backup_code {
            let (created, replaces) = crate::upstream::create_enrollment_with_backup_code(
                client,
                &user,
                code.trim(),
                ENROLL_TTL,
            )?;
            replacement = Some(replaces);
            if let Some(session) = &req.session {
                logins.cancel_session(&format!("enroll:{session}"), &user);
            }
            tracing::info!(
                user,
                "adding a device approved with a backup code; link issued"
            );
            Stage::Link {
                url: created.url,
                expires_at: created.expires_at,
                deadline: Instant::now() + ENROLL_TTL,
                known: devices.into_iter().map(|d| d.id).collect(),
            }
        } else if devices.is_empty() {
            if !req.mapped.bootstrap {
                tracing::warn!(realm = %req.mapped.realm, user, "enrollment refused: no device and the realm does not allow bootstrap");
                return Err(ApiError::new(
                    ErrorCode::BootstrapNotAllowed,
                    format!(
                        "{user:?} has no push device, and realm {:?} does not let users enroll their first device themselves; an administrator must enroll it",
                        req.mapped.realm
                    ),
                ));
            }
            link(client, &user, None, Vec::new())?
        } else {
            let login = account_change::start(
                logins,
                runtime,
                Asked {
                    mapped: &req.mapped,
                    context: req.context.clone(),
                    session: req.session.as_deref(),
                    deadline: req.deadline,
                    ttl: req.ttl,
                },
                AccountChange {
                    purpose: Purpose::AddDevice,
                    action: "add_device",
                    session_namespace: "enroll",
                    message: format!(
                        "Add a new device to your account {user}? Approve only if you are adding a device yourself."
                    ),
                    extra: req
                        .device_name
                        .iter()
                        .map(|name| ("device_name", name.clone()))
                        .collect(),
                },
            )?;
            Stage::Approval(login)
        };
        let id = random::id().map_err(|_| ApiError::internal())?;
        let enrollment = Arc::new(Enrollment {
            id: id.clone(),
            mapped: req.mapped,
            created: Instant::now(),
            stage: Mutex::new(stage),
        });
        lock(&self.map).insert(id, enrollment.clone());
        tracing::info!(enrollment = %enrollment.id, user, "enrollment started");
        Ok(Started {
            enrollment,
            replacement,
        })
    }

    /// The approval push, while one is pending (to wait on it without polling). Never blocks:
    /// while a check holds the enrollment, there is nothing to wait on here.
    pub fn approval(&self, enrollment: &Enrollment) -> Option<Arc<Login>> {
        let stage = enrollment.stage.try_lock().ok()?;
        match &*stage {
            Stage::Approval(login) if login.state().is_pending() => Some(login.clone()),
            _ => None,
        }
    }

    /// Moves the enrollment on as far as it can and says where it is (blocking): an approved
    /// push gets the link (passing the approval), a link gets checked for a new device. Holds
    /// the enrollment for the whole check, so an approval is never presented twice.
    pub fn check(&self, client: &Client, enrollment: &Enrollment) -> Result<EnrollState, ApiError> {
        let mut held = lock(&enrollment.stage);
        let stage = held.clone();
        let user = &enrollment.mapped.user;
        let next = match stage {
            Stage::Approval(login) => match login.state() {
                LoginState::Pending => {
                    return Ok(EnrollState::Approval {
                        code: login.code.clone(),
                        devices: login.devices.iter().map(|d| d.name.clone()).collect(),
                        expires_at: login.expires_at.clone(),
                    })
                }
                LoginState::Ended {
                    outcome: LoginOutcome::Approved,
                    device_id,
                    ..
                } => {
                    let known = devices_of(client, user)?;
                    let stage = link(client, user, Some(&login.id), known)?;
                    tracing::info!(enrollment = %enrollment.id, user, approved_by = ?device_id, "adding a device was approved; link issued");
                    stage
                }
                other => {
                    tracing::warn!(enrollment = %enrollment.id, user, outcome = other.outcome().as_str(), "adding a device was not approved; no link");
                    Stage::Refused(other.outcome())
                }
            },
            Stage::Link {
                url,
                expires_at,
                deadline,
                known,
            } => {
                let devices = devices_of(client, user)?;
                match devices.into_iter().find(|d| !known.contains(&d.id)) {
                    Some(device) => {
                        tracing::info!(enrollment = %enrollment.id, user, device = %device.id, "device enrolled");
                        Stage::Enrolled(device)
                    }
                    None if Instant::now() >= deadline => return Ok(EnrollState::Expired),
                    None => return Ok(EnrollState::Pending { url, expires_at }),
                }
            }
            other => other,
        };
        let state = match &next {
            Stage::Refused(outcome) => EnrollState::Refused(*outcome),
            Stage::Link {
                url, expires_at, ..
            } => EnrollState::Pending {
                url: url.clone(),
                expires_at: expires_at.clone(),
            },
            Stage::Enrolled(device) => EnrollState::Enrolled(device.clone()),
            Stage::Approval(_) => return Err(ApiError::internal()),
        };
        *held = next;
        Ok(state)
    }

    /// Drops enrollments well past their link's lifetime.
    pub fn sweep(&self) {
        let now = Instant::now();
        lock(&self.map).retain(|_, e| now < e.created + ENROLL_TTL + Duration::from_secs(600));
    }
}

/// Asks pushauthd for a link (with the approval, if any) and notes the devices known before.
fn link(
    client: &Client,
    user: &str,
    approval: Option<&str>,
    known: Vec<DeviceInfo>,
) -> Result<Stage, ApiError> {
    let created = crate::upstream::create_enrollment(client, user, approval, ENROLL_TTL)?;
    Ok(Stage::Link {
        url: created.url,
        expires_at: created.expires_at,
        deadline: Instant::now() + ENROLL_TTL,
        known: known.into_iter().map(|d| d.id).collect(),
    })
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

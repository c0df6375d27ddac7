//! Backup-code issuances started from the IdP (the Keycloak account console): a push "Issue a new
//! set of backup codes?" to the user's devices (context `action = "issue_backup_codes"`, number
//! matching, the code shown on the IdP page), verified like a login; once approved, the sidecar
//! asks pushauthd for the set, passing the approved challenge's id as `approval` (pushauthd checks
//! and consumes it). The set is handed to the shim in that one answer and never kept here
//! (NIST SP 800-63B-4 §3.1.2: recovery codes are shown once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pushauth_client::Context;
use pushauth_proto::random;
use zeroize::Zeroizing;

use crate::account_change::{self, AccountChange, Asked};
use crate::error::{ApiError, ErrorCode};
use crate::logins::{Login, LoginState, Logins, Purpose};
use crate::realms::Mapped;
use crate::wire::LoginOutcome;

/// How long an issuance stays readable after it started.
const RETENTION: Duration = Duration::from_secs(900);

/// Where one issuance is.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for a device to approve.
    Approval(Arc<Login>),
    /// The push ended without "approved" (how it ended).
    Refused(LoginOutcome),
    /// The set was issued and handed over once.
    Issued,
}

/// One issuance.
#[derive(Debug)]
pub struct Issuance {
    /// Its id on the shim API (random, not pushauthd's).
    pub id: String,
    /// Whose codes.
    pub mapped: Mapped,
    created: Instant,
    stage: Mutex<Stage>,
}

/// Where an issuance stands, as the shim sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueState {
    /// A device must approve: show `code` (sent to `devices`).
    Approval {
        /// The code to type on the device.
        code: Option<String>,
        /// The names of the devices asked.
        devices: Vec<String>,
        /// When the push expires (RFC 3339).
        expires_at: String,
    },
    /// The device did not approve: no codes.
    Refused(LoginOutcome),
    /// Issued: the codes in the answer that moved it here, `None` in any later one.
    Issued(Option<Zeroizing<Vec<String>>>),
}

/// What a shim asks for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Whose codes.
    pub mapped: Mapped,
    /// Login context (ip, client…) for the push.
    pub context: Context,
    /// The shim's session digest (its own namespace: never cancels a login).
    pub session: Option<String>,
    /// The push's lifetime.
    pub ttl: Duration,
    /// The start must be done by then.
    pub deadline: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry; bounded like the logins.
#[derive(Debug)]
pub struct Issuances {
    map: Mutex<HashMap<String, Arc<Issuance>>>,
    max: usize,
}

impl Issuances {
    /// An empty registry holding at most `max` issuances.
    pub fn new(max: usize) -> Self {
        Issuances {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The issuance with this id, if held.
    pub fn get(&self, id: &str) -> Option<Arc<Issuance>> {
        lock(&self.map).get(id).cloned()
    }

    /// Starts the approval push (blocking).
    pub fn start(
        &self,
        logins: &Logins,
        runtime: &tokio::runtime::Handle,
        req: IssueRequest,
    ) -> Result<Arc<Issuance>, ApiError> {
        if lock(&self.map).len() >= self.max {
            return Err(ApiError::new(
                ErrorCode::TooManyPending,
                "too many backup-code requests in progress; try again shortly",
            ));
        }
        let user = req.mapped.user.clone();
        let login = account_change::start(
            logins,
            runtime,
            Asked {
                mapped: &req.mapped,
                context: req.context,
                session: req.session.as_deref(),
                deadline: req.deadline,
                ttl: req.ttl,
            },
            AccountChange {
                purpose: Purpose::IssueBackupCodes,
                action: "issue_backup_codes",
                session_namespace: "backup-codes",
                message: format!(
                    "Issue a new set of backup codes for {user}? Your old codes stop working. Approve only if you asked for it yourself."
                ),
                extra: Vec::new(),
            },
        )?;
        let id = random::id().map_err(|_| ApiError::internal())?;
        let issuance = Arc::new(Issuance {
            id: id.clone(),
            mapped: req.mapped,
            created: Instant::now(),
            stage: Mutex::new(Stage::Approval(login)),
        });
        lock(&self.map).insert(id, issuance.clone());
        tracing::info!(issuance = %issuance.id, user, "backup-code issuance started");
        Ok(issuance)
    }

    /// The approval push while it is pending (to wait on it). Never blocks.
    pub fn approval(&self, issuance: &Issuance) -> Option<Arc<Login>> {
        let stage = issuance.stage.try_lock().ok()?;
        match &*stage {
            Stage::Approval(login) if login.state().is_pending() => Some(login.clone()),
            _ => None,
        }
    }

    /// Moves the issuance on (blocking): an approved push gets the set from pushauthd, handed
    /// back in this answer only. Holds the issuance for the whole check, so an approval is
    /// presented once and the codes are handed out once.
    pub fn check(&self, logins: &Logins, issuance: &Issuance) -> Result<IssueState, ApiError> {
        let mut held = lock(&issuance.stage);
        let user = &issuance.mapped.user;
        let login = match &*held {
            Stage::Approval(login) => login.clone(),
            Stage::Refused(outcome) => return Ok(IssueState::Refused(*outcome)),
            Stage::Issued => return Ok(IssueState::Issued(None)),
        };
        match login.state() {
            LoginState::Pending => Ok(IssueState::Approval {
                code: login.code.clone(),
                devices: login.devices.iter().map(|d| d.name.clone()).collect(),
                expires_at: login.expires_at.clone(),
            }),
            LoginState::Ended {
                outcome: LoginOutcome::Approved,
                device_id,
                ..
            } => {
                let codes = Zeroizing::new(crate::upstream::issue_backup_codes(
                    logins.client(),
                    user,
                    &login.id,
                )?);
                tracing::info!(issuance = %issuance.id, user, approved_by = ?device_id, count = codes.len(), "backup codes issued");
                *held = Stage::Issued;
                Ok(IssueState::Issued(Some(codes)))
            }
            other => {
                let outcome = other.outcome();
                tracing::warn!(issuance = %issuance.id, user, outcome = outcome.as_str(), "issuing backup codes was not approved");
                *held = Stage::Refused(outcome);
                Ok(IssueState::Refused(outcome))
            }
        }
    }

    /// Issuances held.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops issuances past [`RETENTION`].
    pub fn sweep(&self) {
        let now = Instant::now();
        lock(&self.map).retain(|_, i| now < i.created + RETENTION);
    }
}

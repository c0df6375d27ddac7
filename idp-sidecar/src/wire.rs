//! The shim API's JSON, typed: every request and response body the sidecar reads or writes,
//! and the outcome and state words, with their spelling fixed by serde.
//!
//! `wire-fixtures.json` beside this crate holds one example of each body as these types
//! serialize it (and every error code with its status); the Rust tests check the file against
//! the types, and the Java shim's tests parse it as they parse real answers.
//!
//! Response fields are declared in alphabetical order: that is the order the sidecar has always
//! sent them in (bodies used to be built as sorted JSON maps), so the bytes stay the same.
//! Fields that are absent in some states are `Option`s skipped when `None`; a field that is
//! present but may be `null` in its state is an `Option<Option<_>>`.

use pushauth_proto::Context;
use serde::{Deserialize, Serialize};

pub use crate::error::{ErrorBody, ErrorCode};
use crate::result_token::ResultToken;

/// Where a login stands, or how it ended: the `state` of a login answer, the `outcome` a result
/// token signs (never `pending`), the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// No answer yet.
    Pending,
    /// A device approved (with the right code, where number matching is on).
    Approved,
    /// A device denied.
    Denied,
    /// A device answered "this was not me".
    Reported,
    /// The person typed a wrong code on the device.
    CodeMismatch,
    /// Nobody answered in time.
    Expired,
    /// The shim (or a newer login of the same session) cancelled it.
    Cancelled,
    /// The wait failed (pushauthd unreachable to the end, an answer that did not verify): the
    /// login fails closed.
    Error,
}

impl LoginOutcome {
    /// Every outcome a login can end with, in metrics order.
    pub const ENDED: [LoginOutcome; 7] = [
        LoginOutcome::Approved,
        LoginOutcome::Denied,
        LoginOutcome::Reported,
        LoginOutcome::CodeMismatch,
        LoginOutcome::Expired,
        LoginOutcome::Cancelled,
        LoginOutcome::Error,
    ];

    /// The wire spelling (the same as serde's), as signed in result tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Pending => "pending",
            LoginOutcome::Approved => "approved",
            LoginOutcome::Denied => "denied",
            LoginOutcome::Reported => "reported",
            LoginOutcome::CodeMismatch => "code_mismatch",
            LoginOutcome::Expired => "expired",
            LoginOutcome::Cancelled => "cancelled",
            LoginOutcome::Error => "error",
        }
    }
}

impl std::fmt::Display for LoginOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `state` of an enrollment answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    /// An existing device must approve first; the answer carries the code to show.
    ApprovalPending,
    /// The existing device did not approve; the answer carries the `outcome`. No link.
    ApprovalRefused,
    /// The link is ready (`url`, `qr_svg`); the new device has not enrolled yet.
    Pending,
    /// The new device enrolled (`device`).
    Enrolled,
    /// The link expired unused.
    Expired,
}

/// The `state` of a backup-code issuance answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupCodesState {
    /// The push "Issue new backup codes?" waits for the device; the answer carries the code.
    ApprovalPending,
    /// The device did not approve (`outcome`): no codes.
    ApprovalRefused,
    /// The new set was issued: `codes` in this one answer only, never again.
    Issued,
}

// ---- requests -------------------------------------------------------------------------------

/// `POST /v1/logins`: start a push login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartLogin {
    /// The IdP realm.
    pub realm: String,
    /// The user name the IdP authenticated (mapped by the realm's rule).
    pub username: String,
    /// The shim's per-login nonce (16 to 128 base64url characters), echoed in the result token.
    pub nonce: String,
    /// The shim's login session digest (16 to 128 base64url characters): a pending login of the
    /// same session is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What the person is approving (flat string map). A key given twice is refused.
    #[serde(
        default,
        deserialize_with = "pushauth_proto::context::deserialize_unique"
    )]
    pub context: Context,
}

/// `POST /v1/enrollments`: start a device enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartEnrollment {
    /// The IdP realm.
    pub realm: String,
    /// The IdP user name.
    pub username: String,
    /// The new device's name, shown in the approval push, when the shim knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The shim's login session digest (see [`StartLogin::session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Login context for the approval push.
    #[serde(default)]
    pub context: Context,
    /// A backup code instead of an approval push (the person lost their device): pushauthd
    /// consumes it and issues the link at once; the answer carries its `replacement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_code: Option<String>,
}

/// `POST /v1/backup-codes/verify`: one of the user's backup codes instead of the push.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBackupCode {
    /// The IdP realm.
    pub realm: String,
    /// The IdP user name.
    pub username: String,
    /// The code as typed (groups, spaces and case are pushauthd's to normalise).
    pub code: String,
    /// The shim's per-login nonce (see [`StartLogin::nonce`]), echoed in the result token.
    pub nonce: String,
    /// The shim's login session digest: a push of this session still pending is cancelled once
    /// the code is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Where the code is used (client, ip, user agent…), for pushauthd's audit and notice.
    #[serde(
        default,
        deserialize_with = "pushauth_proto::context::deserialize_unique"
    )]
    pub context: Context,
}

/// Never prints the code.
impl std::fmt::Debug for VerifyBackupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyBackupCode")
            .field("realm", &self.realm)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/backup-codes`: a new set of backup codes, approved by a push to the user's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBackupCodes {
    /// The IdP realm.
    pub realm: String,
    /// The IdP user name.
    pub username: String,
    /// The shim's session digest: a pending issuance push of the same session is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Context for the approval push (client, ip…).
    #[serde(default)]
    pub context: Context,
}

/// What Keycloak POSTs to the CIBA channel (unknown fields are tolerated: Keycloak may add some).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRequest {
    /// The user the CIBA client names.
    pub login_hint: String,
    /// Shown on the device as the push's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    /// The scopes asked for, shown on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The CIBA callback's verdict, as Keycloak spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CibaStatus {
    /// Approved on the device.
    Succeed,
    /// Denied, reported or a wrong code.
    Unauthorized,
    /// Expired, cancelled or failed.
    Cancelled,
}

impl CibaStatus {
    /// The wire spelling (the same as serde's).
    pub const fn as_str(self) -> &'static str {
        match self {
            CibaStatus::Succeed => "SUCCEED",
            CibaStatus::Unauthorized => "UNAUTHORIZED",
            CibaStatus::Cancelled => "CANCELLED",
        }
    }
}

/// Lets tests compare a status with its wire spelling.
impl PartialEq<&str> for CibaStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What the sidecar POSTs to Keycloak's CIBA callback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CibaCallback {
    /// The verdict.
    pub status: CibaStatus,
}

// ---- responses ------------------------------------------------------------------------------

/// `GET /healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Logins held in memory (pending or recently ended).
    pub logins: usize,
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /v1/public-key`: the key result tokens are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicKeyView {
    /// The signature algorithm (`ed25519`).
    pub alg: &'static str,
    /// The raw public key, unpadded base64url.
    pub public_key: String,
}

/// A device a push went to: id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    /// The pushauthd device id.
    pub id: String,
    /// The device's name.
    pub name: String,
}

/// A login: the answer to start (201), state and cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginView {
    /// The code the person types on the device (`null` without number matching).
    pub code: Option<String>,
    /// Ended logins only: the device that answered (`null` when none did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<Option<String>>,
    /// Ended logins only: the approving device's name (`null` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<Option<String>>,
    /// The devices the push went to.
    pub devices: Vec<DeviceView>,
    /// When the challenge expires (RFC 3339).
    pub expires_at: String,
    /// The login (challenge) id.
    pub id: String,
    /// Failed logins only: why, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every login that is no longer pending: the signed result token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultToken>,
    /// Where the login stands.
    pub state: LoginOutcome,
    /// The pushauthd user the login was mapped to.
    pub user: String,
}

/// The new device, once enrolled (or as it was, once revoked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    /// When it enrolled (RFC 3339).
    pub created_at: String,
    /// The pushauthd device id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// An enrollment: the answer to start (201) and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentView {
    /// `approval_pending` only: the code to type on the existing device (may be `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Option<String>>,
    /// `enrolled` only: the new device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceSummary>,
    /// `approval_pending` only: the names of the devices asked to approve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// `approval_pending` and `pending`: when the approval push or the link expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The enrollment id.
    pub id: String,
    /// `approval_refused` only: how the approval push ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<LoginOutcome>,
    /// `pending` only: the link as an SVG QR code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// Started with a backup code, the start answer only: the new code that replaces it (shown
    /// to the person once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// Where the enrollment stands.
    pub state: EnrollmentState,
    /// `pending` only: the single-use enrollment link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The pushauthd user.
    pub user: String,
}

/// One active device in a device list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListItem {
    /// When it enrolled (RFC 3339).
    pub created_at: String,
    /// The pushauthd device id.
    pub id: String,
    /// When it last made a signed request (RFC 3339), `null` if never.
    pub last_seen_at: Option<String>,
    /// Its name.
    pub name: String,
}

/// `GET /v1/realms/{realm}/users/{username}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    /// The user's active devices.
    pub devices: Vec<DeviceListItem>,
    /// The pushauthd user.
    pub user: String,
}

/// `DELETE /v1/realms/{realm}/users/{username}/devices/{id}`: the revoked device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedDevice {
    /// The device as it was.
    pub device: DeviceSummary,
}

/// `POST /v1/backup-codes/verify` → 200: the code was accepted and consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupCodeVerified {
    /// The id the result token names (the sidecar's own, random: no challenge was made).
    pub id: String,
    /// How many unused codes the user has now.
    pub remaining: u32,
    /// The new code that replaces the used one: show it once ("store it with the others").
    pub replacement: String,
    /// Signed result token with outcome `backup_code` over `id`, `user` and the shim's nonce.
    pub result: ResultToken,
    /// The pushauthd user.
    pub user: String,
}

/// A backup-code issuance: the answer to start (201) and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupCodesView {
    /// `approval_pending` only: the code to type on the device (may be `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Option<String>>,
    /// `issued`, the first answer only: the new set (the old one is void).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<String>>,
    /// `approval_pending` only: the names of the devices asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// `approval_pending` only: when the push expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The issuance id.
    pub id: String,
    /// `approval_refused` only: how the push ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<LoginOutcome>,
    /// Where it stands.
    pub state: BackupCodesState,
    /// The pushauthd user.
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_item5_outcome_spelling_is_serdes() {
        for outcome in LoginOutcome::ENDED
            .into_iter()
            .chain([LoginOutcome::Pending])
        {
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{}\"", outcome.as_str())
            );
        }
    }
}

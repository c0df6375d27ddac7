//! `/v1/backup-codes`: a backup code instead of the push for a login step, and a new set issued
//! after a push approved on the user's device (issue 12; NIST SP 800-63B-4 §3.1.2).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pushauth_proto::random;
use zeroize::Zeroizing;

use super::{check_nonce, check_session, shim_context};
use crate::app::SharedState;
use crate::backup::{Issuance, IssueRequest, IssueState};
use crate::blocking::blocking;
use crate::error::ApiError;
use crate::extract::{JsonBody, Shim, Wait};
use crate::result_token::ResultFields;
use crate::wire::{
    BackupCodeVerified, BackupCodesState, BackupCodesView, StartBackupCodes, VerifyBackupCode,
};

/// The outcome a backup-code result token signs (a push login's is `approved`): a shim that
/// checks for `approved` never takes one for the other.
pub const BACKUP_CODE_OUTCOME: &str = "backup_code";

/// Longest code accepted as typed (the code itself is far shorter; groups and spaces add some).
pub const MAX_CODE_CHARS: usize = 64;

/// A typed code, checked for shape only (pushauthd normalises and verifies it): 1 to
/// [`MAX_CODE_CHARS`] printable characters.
pub fn check_code(code: &str) -> Result<(), ApiError> {
    let trimmed = code.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_CODE_CHARS
        || trimmed.chars().any(|c| c.is_control())
    {
        return Err(ApiError::malformed(format!(
            "code must be 1 to {MAX_CODE_CHARS} printable characters"
        )));
    }
    Ok(())
}

/// `POST /v1/backup-codes/verify` → 200 with the replacement and a result token.
pub async fn verify(
    State(state): State<SharedState>,
    _shim: Shim,
    JsonBody(req): JsonBody<VerifyBackupCode>,
) -> Result<Json<BackupCodeVerified>, ApiError> {
    let code = Zeroizing::new(req.code);
    let mapped = state.realms.map(&req.realm, &req.username)?;
    check_nonce(&req.nonce)?;
    check_session(&req.session)?;
    check_code(&code)?;
    let context = shim_context(req.context, &mapped.realm)?;
    let user = mapped.user.clone();
    let session = req.session;
    let deadline = Instant::now() + state.call_timeout;
    let used = blocking(&state, move |st| {
        let used = crate::upstream::verify_backup_code(
            st.logins.client(),
            &user,
            code.trim(),
            &context,
            deadline,
        )?;
        // The code stands in for the push: no push of this login may stay open on the device.
        if let Some(session) = &session {
            st.logins.cancel_session(session, &user);
        }
        Ok(used)
    })
    .await?;
    if used.user != mapped.user {
        return Err(ApiError::internal().noted(format!(
            "pushauthd answered a backup code of {:?} for {:?}",
            used.user, mapped.user
        )));
    }
    let id = format!("backup-{}", random::id().map_err(|_| ApiError::internal())?);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let result = state.signer.sign(&ResultFields {
        challenge_id: &id,
        user: &mapped.user,
        nonce: &req.nonce,
        outcome: BACKUP_CODE_OUTCOME,
        expires_at: now + state.result_ttl.as_secs(),
    });
    tracing::info!(user = %mapped.user, remaining = used.remaining, "backup code used for a login");
    Ok(Json(BackupCodeVerified {
        id,
        remaining: used.remaining,
        replacement: used.replacement,
        result,
        user: mapped.user,
    }))
}

/// `POST /v1/backup-codes` → 201: the approval push is on its way.
pub async fn start(
    State(state): State<SharedState>,
    _shim: Shim,
    JsonBody(req): JsonBody<StartBackupCodes>,
) -> Result<(StatusCode, Json<BackupCodesView>), ApiError> {
    let mapped = state.realms.map(&req.realm, &req.username)?;
    check_session(&req.session)?;
    let context = shim_context(req.context, &mapped.realm)?;
    let start = IssueRequest {
        mapped,
        context,
        session: req.session,
        ttl: state.login_ttl,
        deadline: Instant::now() + state.call_timeout,
    };
    let issuance = blocking(&state, move |st| {
        st.backup_codes.start(&st.logins, &st.runtime, start)
    })
    .await?;
    let current = check(&state, &issuance).await?;
    Ok((StatusCode::CREATED, Json(view(&issuance, current))))
}

/// `GET /v1/backup-codes/{id}?wait=SECS`: waits on the push until it ends or `wait` passes.
pub async fn state(
    State(state): State<SharedState>,
    _shim: Shim,
    Path(id): Path<String>,
    Wait(wait): Wait,
) -> Result<Json<BackupCodesView>, ApiError> {
    let issuance = state
        .backup_codes
        .get(&id)
        .ok_or_else(|| ApiError::not_found("backup-code issuance"))?;
    if let Some(approval) = state.backup_codes.approval(&issuance) {
        state.logins.wait(&approval, wait).await;
    }
    let current = check(&state, &issuance).await?;
    Ok(Json(view(&issuance, current)))
}

async fn check(
    state: &SharedState,
    issuance: &std::sync::Arc<Issuance>,
) -> Result<IssueState, ApiError> {
    let target = issuance.clone();
    blocking(state, move |st| st.backup_codes.check(&st.logins, &target)).await
}

fn view(issuance: &Issuance, current: IssueState) -> BackupCodesView {
    let mut view = BackupCodesView {
        code: None,
        codes: None,
        devices: None,
        expires_at: None,
        id: issuance.id.clone(),
        outcome: None,
        state: BackupCodesState::ApprovalPending,
        user: issuance.mapped.user.clone(),
    };
    match current {
        IssueState::Approval {
            code,
            devices,
            expires_at,
        } => {
            view.code = Some(code);
            view.devices = Some(devices);
            view.expires_at = Some(expires_at);
        }
        IssueState::Refused(outcome) => {
            view.state = BackupCodesState::ApprovalRefused;
            view.outcome = Some(outcome);
        }
        IssueState::Issued(codes) => {
            view.state = BackupCodesState::Issued;
            view.codes = codes.map(|c| c.to_vec());
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue12_code_shape_is_bounded() {
        assert!(check_code("ABCD-EFGH-JKMN-PQRS").is_ok());
        assert!(check_code("  abcd efgh  ").is_ok());
        assert!(check_code("").is_err());
        assert!(check_code("   ").is_err());
        assert!(check_code(&"A".repeat(MAX_CODE_CHARS + 1)).is_err());
        assert!(check_code("ABCD\nEFGH").is_err());
    }
}

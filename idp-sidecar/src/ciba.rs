//! Keycloak's CIBA "HTTP authentication channel", so CIBA clients get push approval with no Java.
//!
//! Keycloak POSTs `{"login_hint","binding_message","scope","is_consent_required",…}` with
//! `Authorization: Bearer <token>` to the channel URL (here `/ciba/<key>`, the key being a secret
//! only Keycloak's server config holds) and expects 201. Once the person answers on the device,
//! the sidecar POSTs `{"status": "SUCCEED" | "UNAUTHORIZED" | "CANCELLED"}` with the same bearer
//! token to the realm's `…/protocol/openid-connect/ext/ciba/auth/callback`. The realm is read from
//! the token's `iss`, and only issuers under the configured Keycloak URL are called back.
//!
//! There is no login screen to show a code on, so CIBA pushes go without number matching; the
//! device shows the binding message instead.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use pushauth_client::Context;
use pushauth_proto::{b64, names, random};
use serde_json::Value;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::app::{Ciba, SharedState};
use crate::blocking::blocking;
use crate::error::{ApiError, ErrorCode};
use crate::extract::JsonBody;
use crate::logins::{LoginState, Purpose, StartRequest};
use crate::metrics::Metrics;
pub use crate::wire::ChannelRequest;
use crate::wire::{CibaCallback, CibaStatus, LoginOutcome};

/// The callback status for an outcome.
pub fn callback_status(state: &LoginState) -> CibaStatus {
    match state.outcome() {
        LoginOutcome::Approved => CibaStatus::Succeed,
        LoginOutcome::Denied | LoginOutcome::Reported | LoginOutcome::CodeMismatch => {
            CibaStatus::Unauthorized
        }
        LoginOutcome::Pending
        | LoginOutcome::Expired
        | LoginOutcome::Cancelled
        | LoginOutcome::Error => CibaStatus::Cancelled,
    }
}

/// The realm's issuer from the bearer token, if it is under Keycloak's configured URL:
/// `(iss, realm, azp)`. The token's signature is Keycloak's business: it checks it again on the
/// callback.
///
/// # Errors
/// 401 `unauthorized` when the token is not a JWT whose `iss` is one realm under `keycloak_url`.
pub fn issuer(
    token: &str,
    keycloak_url: &str,
) -> Result<(String, String, Option<String>), ApiError> {
    let bad = |why: &str| {
        ApiError::new(
            ErrorCode::Unauthorized,
            format!("the bearer token is not a Keycloak CIBA token: {why}"),
        )
    };
    let payload = token.split('.').nth(1).ok_or_else(|| bad("not a JWT"))?;
    let bytes = b64::decode(payload, "token").map_err(|_| bad("payload is not base64url"))?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| bad("payload is not JSON"))?;
    let iss = claims["iss"].as_str().ok_or_else(|| bad("no iss"))?;
    let prefix = format!("{keycloak_url}/realms/");
    let realm = iss
        .strip_prefix(&prefix)
        .ok_or_else(|| bad("issuer is not under ciba.keycloak_url"))?;
    if realm.is_empty() || realm.contains(['/', '?', '#', '\\']) || realm.contains("..") {
        return Err(bad("issuer names no realm"));
    }
    let client = claims["azp"].as_str().map(str::to_owned);
    Ok((iss.to_owned(), realm.to_owned(), client))
}

/// `POST /ciba/{key}`: Keycloak's authentication request. Starts a push without number matching
/// and answers 201; the verdict goes to Keycloak's callback once the device answers.
///
/// Refusals: 404 `not_found` without `[ciba]` or for a wrong key (the route must not be
/// discoverable); 401 for a missing or foreign bearer token; 400 for a bad `login_hint` or
/// context; the realm's rule as for browser logins.
pub async fn authenticate(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ChannelRequest>,
) -> Result<StatusCode, ApiError> {
    let ciba = state
        .ciba
        .as_ref()
        .ok_or_else(|| ApiError::not_found("route"))?;
    if !bool::from(key.as_bytes().ct_eq(ciba.settings.key.as_bytes())) {
        Metrics::inc(&state.metrics.unauthorized);
        return Err(ApiError::not_found("route"));
    }
    Metrics::inc(&state.metrics.ciba_requests);
    let token = Zeroizing::new(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?
            .to_owned(),
    );
    let (iss, realm, client) = issuer(&token, &ciba.settings.keycloak_url)?;
    names::check_user(&req.login_hint)?;
    // The realm's rule maps the hint, as for browser logins; an unconfigured realm is refused.
    let mapped = state.realms.map(&realm, &req.login_hint)?;
    let mut context = Context::new();
    context.insert("service".into(), "keycloak-ciba".into());
    context.insert("realm".into(), realm);
    if let Some(client) = client {
        context.insert("client".into(), client);
    }
    if let Some(message) = req.binding_message.filter(|m| !m.is_empty()) {
        context.insert("message".into(), message);
    }
    if let Some(scope) = req.scope.filter(|s| !s.is_empty()) {
        context.insert("scope".into(), scope);
    }
    pushauth_proto::context::validate_context(&context)
        .map_err(|e| ApiError::invalid_context(e.to_string()))?;
    let start = StartRequest {
        purpose: Purpose::Login,
        user: mapped.user,
        session: None,
        deadline: std::time::Instant::now() + state.call_timeout,
        nonce: random::id().map_err(|_| ApiError::internal())?,
        context,
        number_matching: false,
        ttl: ciba.settings.ttl,
    };
    let login = blocking(&state, move |st| st.logins.start(&st.runtime, start)).await?;
    let callback = format!("{iss}/protocol/openid-connect/ext/ciba/auth/callback");
    let st = state.clone();
    tokio::spawn(async move {
        let mut rx = login.subscribe();
        let ended = rx.wait_for(|s| !s.is_pending()).await.map(|s| s.clone());
        let status = match ended {
            Ok(s) => callback_status(&s),
            Err(_) => CibaStatus::Cancelled,
        };
        let id = login.id.clone();
        let result = blocking(&st, move |st| {
            let ciba = st.ciba.as_ref().ok_or_else(ApiError::internal)?;
            call_back(ciba, &callback, &token, status)
        })
        .await;
        match result {
            Ok(()) => {
                tracing::info!(challenge = %id, status = status.as_str(), "CIBA callback accepted")
            }
            Err(e) => {
                Metrics::inc(&st.metrics.ciba_callbacks_failed);
                tracing::warn!(challenge = %id, status = status.as_str(), error = %e.message, "CIBA callback failed");
            }
        }
    });
    Ok(StatusCode::CREATED)
}

/// POSTs the status to Keycloak, retrying briefly if Keycloak is not reachable.
fn call_back(ciba: &Ciba, url: &str, token: &str, status: CibaStatus) -> Result<(), ApiError> {
    let body = serde_json::to_string(&CibaCallback { status }).map_err(|_| ApiError::internal())?;
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        match ciba
            .agent
            .post(url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&body)
        {
            Ok(_) => return Ok(()),
            Err(ureq::Error::Status(code, _)) => {
                return Err(ApiError::new(
                    ErrorCode::UpstreamRefused,
                    format!("Keycloak answered {code}"),
                ))
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(ApiError::new(ErrorCode::UpstreamUnreachable, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", b64::encode(claims))
    }

    #[test]
    fn issuer_must_be_under_keycloak() {
        let base = "http://127.0.0.1:8080";
        let (iss, realm, client) = issuer(
            &jwt(r#"{"iss":"http://127.0.0.1:8080/realms/demo","azp":"app"}"#),
            base,
        )
        .unwrap();
        assert_eq!(iss, "http://127.0.0.1:8080/realms/demo");
        assert_eq!(realm, "demo");
        assert_eq!(client.as_deref(), Some("app"));
        for bad in [
            r#"{"iss":"http://evil.example/realms/demo"}"#,
            r#"{"iss":"http://127.0.0.1:8080/realms/"}"#,
            r#"{"iss":"http://127.0.0.1:8080/realms/a/../b"}"#,
            r#"{"sub":"x"}"#,
        ] {
            assert_eq!(issuer(&jwt(bad), base).unwrap_err().status, 401, "{bad}");
        }
        assert!(issuer("not-a-jwt", base).is_err());
    }

    #[test]
    fn statuses_follow_outcomes() {
        let ended = |outcome| LoginState::Ended {
            outcome,
            device_id: None,
            device_name: None,
        };
        assert_eq!(callback_status(&ended(LoginOutcome::Approved)), "SUCCEED");
        assert_eq!(
            callback_status(&ended(LoginOutcome::Denied)),
            "UNAUTHORIZED"
        );
        assert_eq!(
            callback_status(&ended(LoginOutcome::Reported)),
            "UNAUTHORIZED"
        );
        assert_eq!(callback_status(&ended(LoginOutcome::Expired)), "CANCELLED");
        assert_eq!(
            callback_status(&LoginState::Failed {
                message: String::new()
            }),
            "CANCELLED"
        );
    }
}

//! The approval push for an account change a person starts in Keycloak (adding a device, a new
//! set of backup codes): one home for how such a push is built, so that every kind asks the
//! same way.
//!
//! Number matching is on (the person is at the browser that shows the code), and the session
//! digest gets a namespace of its own, so starting a change never cancels a pending login of
//! the same session (see [`StartRequest::session`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pushauth_client::Context;
use pushauth_proto::random;

use crate::error::ApiError;
use crate::logins::{Login, Logins, Purpose, StartRequest};
use crate::realms::Mapped;

/// What the push asks the person to approve.
#[derive(Debug, Clone)]
pub struct AccountChange {
    /// The challenge's purpose.
    pub purpose: Purpose,
    /// The context's `action` value (`add_device`, `issue_backup_codes`).
    pub action: &'static str,
    /// Prefixed to the shim's session digest (`enroll`, `backup-codes`).
    pub session_namespace: &'static str,
    /// The context's `message`: the sentence the device shows.
    pub message: String,
    /// Further context entries (`device_name`).
    pub extra: Vec<(&'static str, String)>,
}

/// The push's request and limits.
#[derive(Debug, Clone)]
pub struct Asked<'a> {
    /// Whose account.
    pub mapped: &'a Mapped,
    /// The login context the shim sent (ip, user agent, client).
    pub context: Context,
    /// The shim's session digest.
    pub session: Option<&'a str>,
    /// The start must be done by then.
    pub deadline: Instant,
    /// The push's lifetime.
    pub ttl: Duration,
}

/// Starts the approval push for `change` (blocking).
///
/// # Errors
/// `invalid_context` when the context with the change's entries breaks the context rules
/// (`pushauth_proto::context`); whatever [`Logins::start`] returns; internal when no
/// randomness is available for the nonce.
pub fn start(
    logins: &Logins,
    runtime: &tokio::runtime::Handle,
    asked: Asked<'_>,
    change: AccountChange,
) -> Result<Arc<Login>, ApiError> {
    let mut context = asked.context;
    context.insert("service".into(), "keycloak".into());
    context.insert("action".into(), change.action.into());
    context.insert("realm".into(), asked.mapped.realm.clone());
    for (key, value) in change.extra {
        context.insert(key.into(), value);
    }
    context.insert("message".into(), change.message);
    pushauth_proto::context::validate_context(&context)
        .map_err(|e| ApiError::invalid_context(e.to_string()))?;
    logins.start(
        runtime,
        StartRequest {
            purpose: change.purpose,
            user: asked.mapped.user.clone(),
            session: asked
                .session
                .map(|s| format!("{}:{s}", change.session_namespace)),
            deadline: asked.deadline,
            nonce: random::id().map_err(|_| ApiError::internal())?,
            context,
            number_matching: true,
            ttl: asked.ttl,
        },
    )
}

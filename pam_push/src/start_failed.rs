//! What a login does when no challenge could be started: the named failure policies
//! (`server_unreachable`, `no_device`, pinned users) decide, each with one log line and a
//! message for the person at the keyboard. A server that was reached and failed, or a TLS
//! failure, is never "unreachable".

use pushauth_client::{ClientError, ErrorCode};

use crate::authenticate::{Conversation, Level, Log, PamCode};
use crate::config::Config;
use crate::policy::{NoDevicePolicy, UnreachablePolicy};
use crate::record::Record;

/// A challenge could not be started: the named policies decide.
pub(crate) fn start_failed(
    config: &Config,
    error: ClientError,
    pinned: bool,
    record: &Record<'_>,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> PamCode {
    let detail = error.to_string();
    match error {
        // A server that was reached and failed, or a TLS failure: never "unreachable", whatever
        // the policy (issue 9 item 6).
        ClientError::ServerError(_) => {
            log.log(
                Level::Error,
                &record.line("server_error_denied", Some(&detail)),
            );
            let _ = conv.error("pushauth: the push server failed");
            PamCode::AuthinfoUnavail
        }
        ClientError::TlsFailure(_) => {
            log.log(
                Level::Error,
                &record.line("tls_failure_denied", Some(&detail)),
            );
            let _ = conv.error("pushauth: the push server's identity could not be verified");
            PamCode::AuthErr
        }
        ClientError::UnknownUser | ClientError::NoDevice if pinned => {
            let what = if matches!(error, ClientError::UnknownUser) {
                "unknown_user"
            } else {
                "no_device"
            };
            log.log(
                Level::Error,
                &record.line(
                    &format!("{what}_pinned_denied"),
                    Some("the user has pinned device keys, so the server must know a device"),
                ),
            );
            let _ = conv.error("pushauth: the push server does not know this user's device");
            PamCode::AuthErr
        }
        ClientError::Unreachable(_) => match config.server_unreachable {
            UnreachablePolicy::Secure => {
                log.log(
                    Level::Error,
                    &record.line("unreachable_denied", Some(&detail)),
                );
                let _ = conv.error("pushauth: the push server cannot be reached");
                PamCode::AuthinfoUnavail
            }
            UnreachablePolicy::Safe => {
                log.log(
                    Level::Warning,
                    &record.line("unreachable_allowed", Some(&detail)),
                );
                PamCode::Success
            }
            // Offline values are hashes the server sent: for a user whose device keys are
            // pinned they are the server's word alone, like a backup code.
            UnreachablePolicy::Offline if pinned && !config.pinned_offline_codes => {
                log.log(
                    Level::Warning,
                    &record.line(
                        "offline_pinned_denied",
                        Some("the user has pinned device keys; offline codes need pinned_offline_codes = true"),
                    ),
                );
                let _ = conv.error(
                    "pushauth: the push server cannot be reached, and offline codes are not accepted for accounts with pinned devices on this host; ask an administrator",
                );
                PamCode::AuthErr
            }
            UnreachablePolicy::Offline => crate::offline::login(
                config,
                record.user,
                conv,
                log,
                &|o, d| record.line(o, d),
                &detail,
            ),
        },
        ClientError::UnknownUser | ClientError::NoDevice => {
            let what = if matches!(error, ClientError::UnknownUser) {
                "unknown_user"
            } else {
                "no_device"
            };
            match config.no_device {
                NoDevicePolicy::Deny => {
                    log.log(Level::Notice, &record.line(&format!("{what}_denied"), None));
                    let _ = conv.error("pushauth: no enrolled device for this user");
                    PamCode::AuthErr
                }
                NoDevicePolicy::Ignore => {
                    log.log(Level::Info, &record.line(&format!("{what}_ignored"), None));
                    PamCode::Ignore
                }
                NoDevicePolicy::Allow => {
                    log.log(
                        Level::Warning,
                        &record.line(&format!("{what}_allowed"), None),
                    );
                    PamCode::Success
                }
            }
        }
        ClientError::RateLimited { code, .. } => {
            log.log(Level::Warning, &record.line("rate_limited", Some(&detail)));
            let _ = conv.error(if code == ErrorCode::UserLocked {
                "pushauth: pushes to this user are paused (a push was reported as not theirs, or \
                 too many wrong codes were typed on the device); ask an administrator"
            } else {
                "pushauth: too many login requests; try again later"
            });
            PamCode::AuthErr
        }
        ClientError::Unauthorized | ClientError::Config(_) => {
            log.log(Level::Error, &record.line("config_error", Some(&detail)));
            let _ = conv
                .error("pushauth: this host's push configuration is broken; ask an administrator");
            PamCode::ServiceErr
        }
        ClientError::Rejected {
            status: 400,
            ref message,
            ..
        } if message.contains("ttl_secs") => {
            log.log(
                Level::Error,
                &record.line(
                    "config_error",
                    Some(&format!(
                        "the server refuses the challenge lifetime ({message}); lower timeout \
                         in the config: {detail}"
                    )),
                ),
            );
            let _ = conv
                .error("pushauth: this host's push configuration is broken; ask an administrator");
            PamCode::ServiceErr
        }
        ClientError::Rejected { .. } | ClientError::BadAnswer(_) => {
            log.log(Level::Error, &record.line("error", Some(&detail)));
            let _ = conv.error("pushauth: the push request failed");
            PamCode::AuthErr
        }
    }
}

//! Offline codes on the PAM host (issue 12, `server_unreachable = "offline"`).
//!
//! - After every approved online push, [`refill`] sends the reports of codes used here while
//!   pushauthd was down, then fetches the hashes of the values this host lacks and stores them
//!   in `<state_dir>/offline/<user>` ([`cache`]); devices pushauthd no longer lists are dropped.
//! - When no server can be reached (connection refused, timeout, DNS; never a TLS failure or a
//!   5xx), [`login`] asks for the code the device shows, checks it against the cache (each hash
//!   once), and on a match deletes that value and every lower one of that device, queues the
//!   report and lets in. Wrong codes are counted per user (at most [`cache::MAX_FAILURES`]); a
//!   user with no cache here is refused. Every outcome is one log line, never the code.

pub mod cache;

use std::time::{Duration, Instant};

use pushauth_proto::hotp::normalize_typed;
use pushauth_proto::offline::OfflineUsedRequest;
use pushauth_proto::wire::ErrorCode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::authenticate::{Conversation, Level, Log, PushBackend};
use crate::config::Config;
use crate::state::StateDir;
use cache::{CacheError, Locked, MAX_FAILURES};
use pushauth_client::ClientError;

/// Most time the refill after an approval may take (reports and the fetch together): pushauthd
/// hashes up to `window` values per device with Argon2id first. Never past the login's own
/// deadline ([`refill`]).
pub const REFILL_TIME: Duration = Duration::from_secs(10);

/// Codes a person may type in one offline login.
pub const ATTEMPTS_PER_LOGIN: u32 = 3;

/// The first prompt.
pub const PROMPT: &str = "pushauth: the push server cannot be reached. Type the offline code your device shows (pushauth-device offline-code, or Offline code in the app): ";

/// The refusal of a user without offline codes on this host.
const NO_CACHE_TEXT: &str = "pushauth: the push server cannot be reached, and this host holds no offline codes for you (they are fetched when you log in here while it is reachable); ask an administrator";

/// Builds an outcome line: `(outcome, detail)` -> the module's log line for this login.
pub type LineFn<'a> = &'a dyn Fn(&str, Option<&str>) -> String;

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// After an approved push of `login`: sends this user's pending reports, then stores the values
/// this host lacks, within [`REFILL_TIME`] and never past `login_deadline` (the login's own
/// deadline: the person is let in only after the refill, so it must not make the login outlast
/// it). Best effort: never changes the login's outcome; failures and a skip are logged.
pub fn refill<B: PushBackend>(
    config: &Config,
    backend: &B,
    login: &B::Login,
    user: &str,
    login_deadline: Instant,
    log: &mut dyn Log,
    line: LineFn<'_>,
) {
    let state = StateDir::new(&config.state_dir, config.owner);
    let now = Instant::now();
    let deadline = login_deadline.min(now + REFILL_TIME);
    if deadline <= now {
        log.log(
            Level::Notice,
            &line(
                "offline_refill_skipped",
                Some("no time left before the login's deadline; the next approved login refills"),
            ),
        );
        return;
    }
    let mut locked = match Locked::open(&state, user) {
        Ok(locked) => locked,
        Err(e) => {
            log.log(
                Level::Error,
                &line("offline_cache_error", Some(&e.to_string())),
            );
            return;
        }
    };
    // Reports first, so pushauthd's counters are current before it picks the values.
    let mut kept = Vec::new();
    for report in std::mem::take(&mut locked.cache.pending) {
        // Queued before reports carried the code: pushauthd would refuse it (no proof).
        let Some(code) = report.code.clone() else {
            log.log(
                Level::Notice,
                &line(
                    "offline_report_dropped",
                    Some(&format!(
                        "device {} counter {}: queued without its code by an older pam_push",
                        report.device_id, report.counter
                    )),
                ),
            );
            continue;
        };
        let request = OfflineUsedRequest {
            device_id: report.device_id.clone(),
            counter: report.counter,
            code,
            used_at: report.used_at.clone(),
        };
        match backend.report_offline_used(user, &request, deadline) {
            Ok(counter) => log.log(
                Level::Info,
                &line(
                    "offline_use_reported",
                    Some(&format!(
                        "device {} counter {} (server at {counter})",
                        report.device_id, report.counter
                    )),
                ),
            ),
            // The device is gone (revoked): nothing left to tell.
            Err(ClientError::Rejected {
                code: Some(ErrorCode::NotFound),
                ..
            }) => log.log(
                Level::Notice,
                &line(
                    "offline_report_dropped",
                    Some(&format!("device {} is gone", report.device_id)),
                ),
            ),
            // pushauthd says the code is not the device's (a secret replaced meanwhile):
            // sending it again cannot change that.
            Err(ClientError::Rejected {
                code: Some(ErrorCode::Forbidden),
                ..
            }) => log.log(
                Level::Warning,
                &line(
                    "offline_report_dropped",
                    Some(&format!(
                        "device {} counter {}: pushauthd refused the code",
                        report.device_id, report.counter
                    )),
                ),
            ),
            Err(e) => {
                log.log(
                    Level::Warning,
                    &line("offline_report_failed", Some(&e.to_string())),
                );
                kept.push(report);
            }
        }
    }
    locked.cache.pending = kept;
    // An online approval is the person: the count of wrong offline codes starts again.
    locked.cache.failures = 0;
    let have = locked.cache.have();
    let detail = match backend.offline_values(login, &have, deadline) {
        Ok(answer) => {
            let added = locked.cache.merge(&answer);
            Ok(format!(
                "{added} new values, {} held for {} device(s)",
                locked.cache.value_count(),
                locked.cache.devices.len()
            ))
        }
        Err(e) => Err(e.to_string()),
    };
    let saved = locked.save();
    match (detail, saved) {
        (Ok(detail), Ok(())) => log.log(Level::Info, &line("offline_cache_filled", Some(&detail))),
        (Err(e), Ok(())) => log.log(Level::Warning, &line("offline_values_failed", Some(&e))),
        (_, Err(e)) => log.log(
            Level::Error,
            &line("offline_cache_error", Some(&e.to_string())),
        ),
    }
}

/// What one look at the cache decided.
enum Checked {
    Accepted { device_id: String, counter: u64 },
    Wrong,
    NoCache,
    Locked,
}

/// Checks one typed code under the lock: the failure is counted (and saved) before the slow
/// check, so killing the login mid-check does not save a guess; a match is consumed and saved
/// before the login is let in.
fn check(state: &StateDir, user: &str, code: &str) -> Result<Checked, CacheError> {
    let Some(mut locked) = Locked::open_existing(state, user)? else {
        return Ok(Checked::NoCache);
    };
    if locked.cache.value_count() == 0 {
        return Ok(Checked::NoCache);
    }
    if locked.cache.failures >= MAX_FAILURES {
        return Ok(Checked::Locked);
    }
    locked.cache.failures += 1;
    locked.save()?;
    let Some(found) = locked.cache.find(code) else {
        return Ok(Checked::Wrong);
    };
    locked.cache.failures = 0;
    locked.cache.consume(&found, now_rfc3339(), code);
    locked.save()?;
    Ok(Checked::Accepted {
        device_id: found.device_id,
        counter: found.counter,
    })
}

/// The offline login, when no server could be reached and the policy is `offline`.
pub fn login(
    config: &Config,
    user: &str,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
    line: LineFn<'_>,
    unreachable: &str,
) -> crate::authenticate::PamCode {
    use crate::authenticate::PamCode;
    let state = StateDir::new(&config.state_dir, config.owner);
    let deny = |conv: &mut dyn Conversation, text: &str| {
        let _ = conv.error(text);
        PamCode::AuthErr
    };
    // Tell a user without a cache at once, before asking for anything.
    match Locked::open_existing(&state, user) {
        Ok(None) => {
            log.log(
                Level::Notice,
                &line("offline_no_cache_denied", Some(unreachable)),
            );
            return deny(conv, NO_CACHE_TEXT);
        }
        Ok(Some(locked)) if locked.cache.value_count() == 0 => {
            drop(locked);
            log.log(
                Level::Notice,
                &line("offline_no_cache_denied", Some(unreachable)),
            );
            return deny(conv, NO_CACHE_TEXT);
        }
        Ok(_) => {}
        Err(e) => {
            log.log(
                Level::Error,
                &line("offline_cache_error", Some(&e.to_string())),
            );
            return deny(
                conv,
                "pushauth: the push server cannot be reached and this host's offline codes cannot be read; ask an administrator",
            );
        }
    }
    let mut prompt = PROMPT;
    for _ in 0..ATTEMPTS_PER_LOGIN {
        let typed = match conv.prompt(prompt) {
            Ok(typed) => typed,
            Err(_) => {
                log.log(
                    Level::Notice,
                    &line("conversation_aborted", Some("offline code")),
                );
                return PamCode::AuthErr;
            }
        };
        prompt = "Offline code: ";
        let trimmed = typed.trim();
        if matches!(trimmed, "c" | "cancel") {
            log.log(
                Level::Notice,
                &line("cancelled_by_user", Some("offline code")),
            );
            return deny(conv, "pushauth: login cancelled");
        }
        // Anything but digits of a possible length is not a guess: ask again, uncounted.
        let Some(code) = (6..=8).find_map(|digits| normalize_typed(trimmed, digits)) else {
            let _ = conv.error("pushauth: an offline code is 6 to 8 digits");
            continue;
        };
        match check(&state, user, &code) {
            Ok(Checked::Accepted { device_id, counter }) => {
                log.log(
                    Level::Warning,
                    &line(
                        "offline_code_accepted",
                        Some(&format!(
                            "device {device_id} counter {counter}; reported at the next online login ({unreachable})"
                        )),
                    ),
                );
                return PamCode::Success;
            }
            Ok(Checked::Wrong) => {
                log.log(Level::Notice, &line("offline_code_wrong", None));
                let _ = conv
                    .error("pushauth: that offline code is not valid here (each code works once)");
            }
            Ok(Checked::NoCache) => {
                log.log(Level::Notice, &line("offline_no_cache_denied", None));
                return deny(
                    conv,
                    "pushauth: this host holds no more offline codes for you; ask an administrator",
                );
            }
            Ok(Checked::Locked) => {
                log.log(Level::Warning, &line("offline_locked_denied", None));
                return deny(
                    conv,
                    "pushauth: too many wrong offline codes on this host; log in once the push server is back, or ask an administrator",
                );
            }
            Err(e) => {
                log.log(
                    Level::Error,
                    &line("offline_cache_error", Some(&e.to_string())),
                );
                return deny(
                    conv,
                    "pushauth: this host's offline codes cannot be read; ask an administrator",
                );
            }
        }
    }
    log.log(
        Level::Notice,
        &line("offline_code_denied", Some("no valid code")),
    );
    deny(conv, "pushauth: no valid offline code; login refused")
}

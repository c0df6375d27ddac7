//! Backup codes at the prompt (issue 12; NIST SP 800-63B-4 §3.1.2): a person without their
//! phone types one of their backup codes instead of pressing Enter. The push is cancelled, the
//! code is checked by pushauthd (one use), and on success the person is shown the code that
//! replaces it. `authenticate` calls [`answer_kind`] on what was typed and [`use_code`] for a
//! code; this module never logs or shows the code itself.
//!
//! A user with a pinned-key file (`authorized_devices`) is let in only on an answer signed by
//! one of their pinned device keys, so that a broken-into server cannot let anyone in. A
//! backup code is the server's word alone (nothing signed by a device), so it is refused for
//! such a user unless `pinned_backup_codes = true` says the administrator accepts that.

use std::time::{Duration, Instant};

use pushauth_client::{BackupCodeVerified, ClientError, Context, ErrorCode};
use zeroize::Zeroizing;

use crate::authenticate::{Conversation, Level, PamCode};
use crate::config::Config;

/// Fewest letters and digits an answer must have to be taken as a backup code (codes have 16;
/// the six-digit push code typed here by mistake has 6 and keeps meaning "Enter").
pub const MIN_CODE_CHARS: usize = 12;

/// The least time a code check gets, even when the push's deadline has passed while the
/// person typed.
pub const CHECK_TIME: Duration = Duration::from_secs(10);

/// How a code is checked: user, code as typed, context, deadline (the client's
/// `verify_backup_code_until`).
pub type Verify<'a> =
    dyn Fn(&str, &str, &Context, Instant) -> Result<BackupCodeVerified, ClientError> + 'a;

/// What an answer at the prompt is, as far as backup codes go.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// Not a backup code (Enter, `c`, the push code…): the push flow goes on.
    NotACode,
    /// A backup code to check.
    Code(Zeroizing<String>),
    /// Looks like a code, but this host does not take codes for this user; the reason is for
    /// the log and names no secret.
    Refused(&'static str),
    /// Long enough to be meant as a code, but not one (a password typed by habit?): refused
    /// here and never sent to pushauthd.
    Malformed,
}

/// Whether `typed` reads as a backup code the way pushauthd reads one
/// ([`pushauth_proto::backup::normalize`]). Anything else is never sent, so a password typed
/// at the prompt by mistake stays on this host.
pub fn is_code_form(typed: &str) -> bool {
    pushauth_proto::backup::normalize(typed).is_some()
}

/// Sorts what was typed at the prompt: a code when it holds at least [`MIN_CODE_CHARS`] letters
/// and digits; refused when codes are off (`backup_codes = false`) or the user has pinned keys
/// without `pinned_backup_codes = true`.
pub fn answer_kind(config: &Config, pinned: bool, answer: &str) -> AnswerKind {
    let chars = answer.chars().filter(char::is_ascii_alphanumeric).count();
    if chars < MIN_CODE_CHARS {
        return AnswerKind::NotACode;
    }
    if !config.backup_codes {
        return AnswerKind::Refused("backup codes are off on this host (backup_codes = false)");
    }
    if pinned && !config.pinned_backup_codes {
        return AnswerKind::Refused(
            "the user has pinned device keys; backup codes need pinned_backup_codes = true",
        );
    }
    if !is_code_form(answer) {
        return AnswerKind::Malformed;
    }
    AnswerKind::Code(Zeroizing::new(answer.trim().to_owned()))
}

/// What the person is told when the answer is not a backup code.
const MALFORMED_TEXT: &str = "pushauth: that is not a backup code (16 letters and digits, like \
     K7QM-3XHT-9RWD-PC4N); the login is refused.";

/// Whether the prompt mentions backup codes for this user.
pub fn offered(config: &Config, pinned: bool) -> bool {
    config.backup_codes && (!pinned || config.pinned_backup_codes)
}

/// What happened, for the one log line `authenticate` writes (no code in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    /// The PAM result.
    pub code: PamCode,
    /// `backup_code_used`, `backup_code_refused`, `backup_code_locked`, `backup_code_error`,
    /// `backup_code_not_allowed`.
    pub outcome: &'static str,
    /// Syslog priority.
    pub level: Level,
    /// Free detail (the server's error, codes left).
    pub detail: Option<String>,
}

/// The text that shows the replacement code (and how many are left).
pub fn replacement_text(verified: &BackupCodeVerified) -> String {
    format!(
        "Your backup code was used. Your new backup code: {}. Store it with the others \
         ({} unused codes).",
        verified.replacement, verified.remaining
    )
}

/// Shows `text` so that the person surely reads it: inside a prompt under sshd (OpenSSH before
/// 10.3 holds an informational message back until the next prompt, and there may be none), as
/// a message elsewhere.
fn show(conv: &mut dyn Conversation, prompt: bool, text: &str, error: bool) {
    if prompt {
        let _ = conv.prompt(&format!("{text} Press Enter: "));
    } else if error {
        let _ = conv.error(text);
    } else {
        let _ = conv.info(text);
    }
}

/// The refusal of a code that looked like one, on a host or for a user that does not take
/// them; the push was cancelled by the caller.
pub fn refuse(conv: &mut dyn Conversation, prompt: bool, why: &'static str) -> Used {
    show(
        conv,
        prompt,
        "pushauth: backup codes are not accepted for this account on this host; the login is \
         refused. Log in again and approve the push on your device, or ask an administrator.",
        true,
    );
    Used {
        code: PamCode::AuthErr,
        outcome: "backup_code_not_allowed",
        level: Level::Notice,
        detail: Some(why.to_owned()),
    }
}

/// Acts on an answer [`answer_kind`] did not find to be [`AnswerKind::NotACode`]: checks a code
/// ([`use_code`]) or refuses ([`refuse`]). The caller has cancelled the push.
pub fn answer(
    kind: AnswerKind,
    verify: &Verify<'_>,
    user: &str,
    context: &Context,
    deadline: Instant,
    conv: &mut dyn Conversation,
    prompt: bool,
) -> Used {
    match kind {
        AnswerKind::Code(typed) => use_code(verify, user, &typed, context, deadline, conv, prompt),
        AnswerKind::Refused(why) => refuse(conv, prompt, why),
        AnswerKind::Malformed => {
            show(conv, prompt, MALFORMED_TEXT, true);
            Used {
                code: PamCode::AuthErr,
                outcome: "backup_code_refused",
                level: Level::Notice,
                detail: Some("not the form of a backup code; not sent to the server".into()),
            }
        }
        AnswerKind::NotACode => refuse(conv, prompt, "not a backup code"),
    }
}

/// Checks `typed` for `user` through `verify` (the client's
/// `verify_backup_code_until`), shows the outcome, and returns what to log and return.
/// `deadline` is the login's; the check gets at least [`CHECK_TIME`].
pub fn use_code(
    verify: &Verify<'_>,
    user: &str,
    typed: &str,
    context: &Context,
    deadline: Instant,
    conv: &mut dyn Conversation,
    prompt: bool,
) -> Used {
    let deadline = deadline.max(Instant::now() + CHECK_TIME);
    match verify(user, typed, context, deadline) {
        Ok(verified) => {
            show(conv, prompt, &replacement_text(&verified), false);
            Used {
                code: PamCode::Success,
                outcome: "backup_code_used",
                level: Level::Notice,
                detail: Some(format!("{} unused codes left", verified.remaining)),
            }
        }
        Err(e) => {
            let (outcome, text) = match &e {
                ClientError::Rejected {
                    code: Some(ErrorCode::BackupCodeInvalid),
                    ..
                } => (
                    "backup_code_refused",
                    "pushauth: that backup code was not accepted (it is wrong or was used \
                     before); the login is refused.",
                ),
                ClientError::RateLimited {
                    code: ErrorCode::UserLocked,
                    ..
                } => (
                    "backup_code_locked",
                    "pushauth: too many wrong backup codes: they are locked for this account \
                     until an administrator runs `pushauthd unlock`; the login is refused.",
                ),
                ClientError::Rejected {
                    status: 400,
                    code: Some(ErrorCode::MalformedRequest),
                    ..
                } => ("backup_code_refused", MALFORMED_TEXT),
                _ => (
                    "backup_code_error",
                    "pushauth: the backup code could not be checked; the login is refused.",
                ),
            };
            show(conv, prompt, text, true);
            Used {
                code: PamCode::AuthErr,
                outcome,
                level: Level::Notice,
                detail: Some(e.to_string()),
            }
        }
    }
}

/// When no push can be sent ([`instead_of_push`]): why, in the person's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPush {
    /// pushauthd knows the user but no active device (a lost phone that was revoked).
    NoDevice,
    /// Pushes to the user are paused (`user_locked`: a report, or too many wrong push codes).
    Locked,
}

/// The prompt offered when no push can be sent.
pub fn no_push_prompt(why: NoPush) -> &'static str {
    match why {
        NoPush::NoDevice => {
            "pushauth: no device can approve this login. Type a backup code, or press Enter to \
             cancel: "
        }
        NoPush::Locked => {
            "pushauth: pushes to this account are paused. Type a backup code, or press Enter to \
             cancel: "
        }
    }
}

/// A backup code when no push can be sent (issue 12: "usable wherever a push is asked"): the
/// person who lost every device, or whose pushes are paused, is asked for one at the prompt.
/// `None` when the person typed no code (Enter, or the conversation failed): the caller then
/// refuses as it would have without codes. Only offered where the module prompts and the
/// host takes codes for this user ([`offered`]).
#[allow(clippy::too_many_arguments)]
pub fn instead_of_push(
    why: NoPush,
    config: &Config,
    pinned: bool,
    verify: &Verify<'_>,
    user: &str,
    context: &Context,
    deadline: Instant,
    conv: &mut dyn Conversation,
) -> Option<Used> {
    if !offered(config, pinned) {
        return None;
    }
    let typed = conv.prompt(no_push_prompt(why)).ok()?;
    match answer_kind(config, pinned, &typed) {
        AnswerKind::NotACode => None,
        kind => Some(answer(kind, verify, user, context, deadline, conv, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue12_replacement_text_names_the_new_code() {
        let text = replacement_text(&BackupCodeVerified {
            user: "alice".into(),
            replacement: "K7QM-3XHT-9RWD-PC4N".into(),
            remaining: 10,
        });
        assert!(text
            .starts_with("Your backup code was used. Your new backup code: K7QM-3XHT-9RWD-PC4N."));
        assert!(text.contains("Store it with the others"));
    }
}

//! Approval by someone else (issue 14): four eyes on a privileged login or command. The
//! requester types a reason; every approver (the `approvers` of the rule that applies, groups
//! expanded, the requester never among them) gets a challenge of their own naming the requester,
//! host, service, target account, command and reason, without number matching (the approver is
//! not at the requester's screen); the first answer decides. Each answer is verified as a
//! login's is, against the approver's device key and pinned keys. Approvals never fail open:
//! no server, no approver, no answer all refuse, whatever `server_unreachable` says.

pub mod rules;

use std::time::{Duration, Instant};

use pushauth_client::action::{ActionRequest, MAX_MESSAGE_CHARS, REQUESTER_KEY};
use pushauth_client::{ClientError, Outcome};

use crate::authenticate::{wait_in_slices, Waited};
use crate::backend::PushBackend;
use crate::config::Config;
use crate::context::{build_context, clean_value, sudo_args, LoginFacts, SudoArgs};
use crate::interfaces::{Conversation, Level, Log, PamCode, PamEnv};
use crate::prompt::{parse_answer, use_prompt, PromptAnswer};
use crate::record::quote;
use pushauth_proto::context::MAX_CONTEXT_VALUE_BYTES;
use rules::Approver;

/// Longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// The prompt for the reason.
pub const REASON_PROMPT: &str = "Reason for this request (shown to the approvers): ";

/// What the flow needs to know about the request.
pub struct Request<'a> {
    /// The local account asking (PAM's user name; under su, the account switched to).
    pub account: &'a str,
    /// Its pushauth name (after `user_map`): never an approver either.
    pub user: &'a str,
    /// `PAM_RUSER`, the person who runs su or sudo, when set: under su (and sudo's
    /// `targetpw`) the requester, and never an approver.
    pub ruser: Option<&'a str>,
    /// Service, host, rhost, tty, argv.
    pub facts: &'a LoginFacts,
    /// Who may approve, as configured.
    pub approvers: &'a [Approver],
    /// The whole authentication's deadline.
    pub deadline: Instant,
}

/// The reason as it goes to the approvers: white space runs made one space, hidden
/// characters shown as `?`, trimmed; `Err` with what to tell the person when it is empty or
/// longer than [`MAX_REASON_CHARS`].
pub fn clean_reason(typed: &str) -> Result<String, String> {
    let joined = typed.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = clean_value(&joined);
    if clean.is_empty() {
        return Err("pushauth: a reason is required; nothing was asked".into());
    }
    if clean.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "pushauth: the reason is over {MAX_REASON_CHARS} characters; nothing was asked"
        ));
    }
    Ok(clean)
}

/// Why the approvers could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// More than [`rules::MAX_APPROVERS`] names once groups are expanded (for the log).
    TooMany(String),
    /// The requester's own account could not be looked up, so an approver who is the
    /// requester under another name could not be told apart (for the log).
    RequesterUnknown(String),
}

/// The approvers' pushauth names: groups expanded (each member through `user_map`), the
/// requester left out (every name in `requester`: the PAM user, its pushauth name, and under su
/// or sudo the person who runs it; and any local name whose uid is one of theirs: `BOB` in a
/// directory that ignores case, an alias with the same uid), each name once, in the order
/// configured. Groups that do not exist or cannot be read, and names whose account cannot be
/// looked up, are logged and skipped: fewer people can approve, never more.
///
/// # Errors
/// [`Unresolved`]: too many names, or the requester's account cannot be looked up.
pub fn resolve(
    config: &Config,
    approvers: &[Approver],
    requester: &[String],
    pam: &dyn PamEnv,
    log: &mut dyn Log,
) -> Result<Vec<String>, Unresolved> {
    let me = |name: &str| requester.iter().any(|r| r == name);
    let mut requester_uids = Vec::new();
    for name in requester {
        match pam.user_id(name) {
            Ok(Some(uid)) => requester_uids.push(uid),
            Ok(None) => {}
            Err(_) => {
                return Err(Unresolved::RequesterUnknown(format!(
                    "the account {} cannot be looked up",
                    quote(name)
                )))
            }
        }
    }
    // Whether local name `name` is the requester's account; `None` when it cannot be told.
    let is_requester = |name: &str| match pam.user_id(name) {
        Ok(Some(uid)) => Some(requester_uids.contains(&uid)),
        Ok(None) => Some(false),
        Err(_) => None,
    };
    let mut names: Vec<String> = Vec::new();
    // Adds `name` unless it is the requester's (by name, or any of `local` by uid); how many
    // names there are then. The count stops a huge group early: one lookup per member.
    let mut add = |log: &mut dyn Log, local: &[&str], name: String| -> usize {
        if me(&name) || names.contains(&name) {
            return names.len();
        }
        for candidate in local {
            match is_requester(candidate) {
                Some(false) => {}
                Some(true) => return names.len(),
                None => {
                    log.log(
                        Level::Warning,
                        &format!(
                            "pam_push: approver {} not asked: the account cannot be looked up",
                            quote(candidate)
                        ),
                    );
                    return names.len();
                }
            }
        }
        names.push(name);
        names.len()
    };
    let mut count = 0;
    for approver in approvers {
        if count > rules::MAX_APPROVERS {
            break;
        }
        match approver {
            Approver::User(name) => count = add(log, &[name], name.clone()),
            Approver::Group(group) => match pam.group_members(group) {
                Ok(Some(members)) => {
                    for member in members {
                        if count > rules::MAX_APPROVERS {
                            break;
                        }
                        // A member that is the requester under another spelling is the
                        // requester: compare mapped names too.
                        match config.user_map.apply(&member) {
                            Ok(mapped) if !me(&mapped) && !me(&member) => {
                                count = add(log, &[&member, &mapped], mapped.clone());
                            }
                            Ok(_) => {}
                            Err(e) => log.log(
                                Level::Warning,
                                &format!(
                                    "pam_push: approvers group {} member {} skipped: {}",
                                    quote(group),
                                    quote(&member),
                                    quote(&e)
                                ),
                            ),
                        }
                    }
                }
                Ok(None) => log.log(
                    Level::Warning,
                    &format!("pam_push: approvers group {} does not exist", quote(group)),
                ),
                Err(_) => log.log(
                    Level::Error,
                    &format!(
                        "pam_push: approvers group {} cannot be read; its members are not asked",
                        quote(group)
                    ),
                ),
            },
        }
    }
    if names.len() > rules::MAX_APPROVERS {
        return Err(Unresolved::TooMany(format!(
            "approvers name more than {} users once groups are expanded",
            rules::MAX_APPROVERS
        )));
    }
    Ok(names)
}

/// The message an approver reads first, at most [`MAX_MESSAGE_CHARS`] characters (cut with
/// `…`; the command itself is in the context in full).
fn message(
    account: &str,
    facts: &LoginFacts,
    command: Option<&str>,
    target: Option<&str>,
) -> String {
    let host = facts.host.as_deref().unwrap_or("this host");
    let service = facts.service.as_deref().unwrap_or("a service");
    let text = match (command, target) {
        (Some(command), Some(target)) => {
            format!("{account} asks to run {command} as {target} on {host}")
        }
        (None, Some(target)) => format!("{account} asks to act as {target} on {host} ({service})"),
        _ => format!("{account} asks to log in to {service} on {host}"),
    };
    let clean = clean_value(&text);
    if clean.chars().count() <= MAX_MESSAGE_CHARS {
        clean
    } else {
        let mut cut: String = clean.chars().take(MAX_MESSAGE_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// One outcome line for an approval: requester, approvers asked, who decided, service,
/// command, reason, challenges, outcome.
struct Line<'a> {
    account: &'a str,
    service: String,
    rhost: String,
    command: String,
    reason: String,
    asked: String,
    challenges: String,
}

impl Line<'_> {
    fn text(&self, outcome: &str, approver: Option<&str>, detail: Option<&str>) -> String {
        let mut line = format!(
            "pam_push: approval requester={} service={} rhost={} command={} reason={} asked={} approver={} outcome={outcome} challenges={}",
            quote(self.account),
            quote(&self.service),
            quote(&self.rhost),
            quote(&self.command),
            quote(&self.reason),
            quote(&self.asked),
            quote(approver.unwrap_or("")),
            quote(&self.challenges),
        );
        if let Some(detail) = detail {
            line.push_str(" detail=");
            line.push_str(&quote(detail));
        }
        line
    }
}

/// Asks for a reason, then the approvers; the PAM result.
pub fn run<B: PushBackend>(
    config: &Config,
    backend: &B,
    request: &Request<'_>,
    pam: &dyn PamEnv,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> PamCode {
    let facts = request.facts;
    let service = facts.service.clone().unwrap_or_default();
    let sudo = sudo_args(facts);
    let command = sudo.as_ref().and_then(SudoArgs::command);
    // Under su (and sudo's targetpw) the PAM user is the account switched to; the person
    // asking is PAM_RUSER: they are the requester, and that account the target.
    let person = request
        .ruser
        .filter(|r| !r.is_empty() && *r != request.account);
    let account = person.unwrap_or(request.account);
    let target = match (&sudo, person) {
        (Some(sudo), _) => Some(sudo.target_user()),
        (None, Some(_)) => Some(request.account.to_owned()),
        (None, None) => None,
    };
    let mut requester = vec![request.account.to_owned(), request.user.to_owned()];
    if let Some(person) = person {
        requester.push(person.to_owned());
        if let Ok(mapped) = config.user_map.apply(person) {
            requester.push(mapped);
        }
    }
    let mut line = Line {
        account,
        service: service.clone(),
        rhost: facts.rhost.clone().unwrap_or_default(),
        command: command.clone().unwrap_or_default(),
        reason: String::new(),
        asked: String::new(),
        challenges: String::new(),
    };
    // The approver must read the whole command: a longer one would reach them cut (a context
    // value holds 1024 bytes), its end unseen.
    if let Some(command) = &command {
        if clean_value(command).chars().count() < command.chars().count() {
            log.log(
                Level::Notice,
                &line.text(
                    "command_too_long",
                    None,
                    Some(&format!(
                        "the command is over {MAX_CONTEXT_VALUE_BYTES} bytes and cannot be shown in full"
                    )),
                ),
            );
            let _ = conv.error(&format!(
                "pushauth: the command is too long to show an approver in full (over {MAX_CONTEXT_VALUE_BYTES} bytes); nothing was asked. Put it in a script."
            ));
            return PamCode::AuthErr;
        }
    }
    let approvers = match resolve(config, request.approvers, &requester, pam, log) {
        Ok(names) => names,
        Err(Unresolved::TooMany(e)) => {
            log.log(Level::Error, &line.text("config_error", None, Some(&e)));
            let _ = conv.error(
                "pushauth: this host's approval configuration is broken; ask an administrator",
            );
            return PamCode::ServiceErr;
        }
        Err(Unresolved::RequesterUnknown(e)) => {
            log.log(Level::Error, &line.text("lookup_failed", None, Some(&e)));
            let _ = conv.error(
                "pushauth: the user database cannot be read, so no approver can be asked; try again",
            );
            return PamCode::AuthErr;
        }
    };
    if approvers.is_empty() {
        log.log(Level::Notice, &line.text("no_approver", None, None));
        let _ = conv.error("pushauth: nobody but you could approve this request; it is refused");
        return PamCode::AuthErr;
    }
    let typed = match conv.prompt(REASON_PROMPT) {
        Ok(typed) => typed,
        Err(_) => {
            log.log(
                Level::Notice,
                &line.text("conversation_aborted", None, None),
            );
            return PamCode::AuthErr;
        }
    };
    let reason = match clean_reason(&typed) {
        Ok(reason) => reason,
        Err(message) => {
            log.log(Level::Notice, &line.text("no_reason", None, None));
            let _ = conv.error(&message);
            return PamCode::AuthErr;
        }
    };
    line.reason.clone_from(&reason);

    let mut context = build_context(facts);
    context.insert(REQUESTER_KEY.into(), clean_value(account));
    if let Some(target) = &target {
        context.insert("target_user".into(), clean_value(target));
    }
    context.insert("reason".into(), reason);
    let deadline = request.deadline;
    let left = deadline.saturating_duration_since(Instant::now());
    let action = ActionRequest {
        approvers,
        message: message(account, facts, command.as_deref(), target.as_deref()),
        context,
        ttl: Some(crate::authenticate::challenge_ttl(left)),
    };
    let (asked, skipped) = match backend.start_action(&action, deadline) {
        Ok(started) => started,
        Err(e) => {
            let (code, outcome, text) = match &e {
                ClientError::Unreachable(_) | ClientError::ServerError(_) => (
                    PamCode::AuthinfoUnavail,
                    "unreachable",
                    "pushauth: the push server cannot be reached; the request is refused",
                ),
                ClientError::BadAnswer(_) => (
                    PamCode::AuthErr,
                    "untrustworthy_answer",
                    "pushauth: the push request failed",
                ),
                _ => (
                    PamCode::AuthErr,
                    "error",
                    "pushauth: the approval request failed",
                ),
            };
            log.log(
                Level::Error,
                &line.text(outcome, None, Some(&e.to_string())),
            );
            let _ = conv.error(text);
            return code;
        }
    };
    for name in &skipped {
        log.log(
            Level::Notice,
            &format!(
                "pam_push: approval requester={} approver {} not asked: unknown to the server, or without a device",
                quote(account),
                quote(name)
            ),
        );
    }
    let (users, logins): (Vec<String>, Vec<B::Login>) = asked.into_iter().unzip();
    line.asked = users.join(",");
    line.challenges = logins
        .iter()
        .map(|l| B::challenge_id(l).to_owned())
        .collect::<Vec<_>>()
        .join(",");
    if logins.is_empty() {
        log.log(
            Level::Notice,
            &line.text("no_approver", None, Some("no approver has a device")),
        );
        let _ = conv.error("pushauth: none of the approvers can be asked; the request is refused");
        return PamCode::AuthErr;
    }
    let withdraw = |decided: Option<usize>| {
        for (i, login) in logins.iter().enumerate() {
            if Some(i) != decided {
                let _ = backend.cancel(login, deadline);
            }
        }
    };

    let left = deadline.saturating_duration_since(Instant::now()).as_secs();
    let asked_text = users.join(", ");
    let mut wait_until = deadline;
    if use_prompt(config.prompt, &service) {
        let text =
            format!("Approval asked of {asked_text}. Press Enter once approved (c to cancel): ");
        match conv.prompt(&text) {
            Ok(answer) if parse_answer(&answer) == PromptAnswer::Cancel => {
                withdraw(None);
                log.log(Level::Notice, &line.text("cancelled_by_user", None, None));
                let _ = conv.error("pushauth: request cancelled");
                return PamCode::AuthErr;
            }
            Ok(_) => wait_until = deadline.max(Instant::now() + Duration::from_secs(1)),
            Err(_) => {
                withdraw(None);
                log.log(
                    Level::Notice,
                    &line.text("conversation_aborted", None, None),
                );
                return PamCode::AuthErr;
            }
        }
    } else if conv
        .info(&format!(
            "Approval asked of {asked_text}. Waiting up to {left} s (Ctrl-C to cancel)…"
        ))
        .is_err()
    {
        withdraw(None);
        log.log(
            Level::Notice,
            &line.text("conversation_aborted", None, None),
        );
        return PamCode::AuthErr;
    }

    let waited = wait_in_slices(
        wait_until,
        pam,
        &mut |end| backend.wait_any(&logins, end),
        &|o| matches!(o, (_, Outcome::TimedOut)),
    );
    let decided = match &waited {
        Ok((Some(i), _)) => Some(*i),
        _ => None,
    };
    withdraw(decided);
    let approver = decided.and_then(|i| users.get(i)).map(String::as_str);
    let (code, outcome, level, message): (PamCode, &str, Level, Option<String>) = match &waited {
        Ok((_, Outcome::Approved { .. })) => (PamCode::Success, "approved", Level::Info, None),
        Ok((_, Outcome::Denied { .. } | Outcome::CodeMismatch { .. })) => (
            PamCode::AuthErr,
            "denied",
            Level::Notice,
            Some(format!(
                "pushauth: {} denied the request",
                approver.unwrap_or("an approver")
            )),
        ),
        Ok((_, Outcome::Reported { .. })) => (
            PamCode::AuthErr,
            "reported",
            Level::Warning,
            Some(format!(
                "pushauth: {} reported the request as not one to approve",
                approver.unwrap_or("an approver")
            )),
        ),
        Ok((_, Outcome::Expired)) => (
            PamCode::AuthErr,
            "expired",
            Level::Notice,
            Some("pushauth: the request expired".into()),
        ),
        Ok((_, Outcome::Cancelled)) => (
            PamCode::AuthErr,
            "cancelled",
            Level::Notice,
            Some("pushauth: the request was cancelled".into()),
        ),
        Ok((_, Outcome::TimedOut)) => (
            PamCode::AuthErr,
            "timed_out",
            Level::Notice,
            Some("pushauth: no approver answered in time".into()),
        ),
        Err(Waited::Interrupted) => (
            PamCode::AuthErr,
            "interrupted",
            Level::Notice,
            Some("pushauth: request cancelled".into()),
        ),
        Err(Waited::Failed(ClientError::BadAnswer(_))) => (
            PamCode::AuthErr,
            "untrustworthy_answer",
            Level::Error,
            Some("pushauth: the answer could not be verified".into()),
        ),
        Err(Waited::Failed(ClientError::Unreachable(_) | ClientError::ServerError(_))) => (
            PamCode::AuthinfoUnavail,
            "unreachable",
            Level::Error,
            Some("pushauth: the push server cannot be reached".into()),
        ),
        Err(Waited::Failed(_)) => (
            PamCode::AuthErr,
            "error",
            Level::Error,
            Some("pushauth: the approval request failed".into()),
        ),
    };
    let detail = match &waited {
        Err(Waited::Failed(e)) => Some(e.to_string()),
        _ => None,
    };
    log.log(level, &line.text(outcome, approver, detail.as_deref()));
    match (code, message) {
        (PamCode::Success, _) => {
            let _ = conv.info(&format!(
                "pushauth: approved by {}",
                approver.unwrap_or("an approver")
            ));
        }
        (_, Some(message)) => {
            let _ = conv.error(&message);
        }
        _ => {}
    }
    code
}

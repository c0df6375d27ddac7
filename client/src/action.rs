//! Approval by someone else (issue 14): a person other than the one who acts approves an
//! action (a deployment, a privileged command). Each approver gets a challenge of their own,
//! without number matching (they are not at the requester's screen), whose context carries
//! `action = "approval"` and the `message`; the first answer, from any of them, decides. Every
//! answer is verified as a login's is (signature over our nonce and context digest, the device
//! one the challenge went to, pinned keys per approver), so a server cannot approve alone.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pushauth_proto::wire::{ChallengeStatuses, ACTION_APPROVAL, MAX_WAIT_IDS};
use pushauth_proto::{ChallengeState, Context};

use crate::client::Polled;
use crate::verify;
use crate::{Client, ClientError, Outcome, PendingLogin, StartOptions};

/// Context key of what the approver is asked to approve (shown first on the device).
pub const MESSAGE_KEY: &str = "message";
/// Context key of who asks (an account, a pipeline), when known.
pub const REQUESTER_KEY: &str = "requester";
/// Longest `message`, in characters: a line a phone shows in full.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// What to ask the approvers.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// pushauthd users to ask (1 to [`MAX_WAIT_IDS`], distinct); a user the server does not
    /// know or who has no device is skipped, as long as one is asked.
    pub approvers: Vec<String>,
    /// What they approve, shown first on the device (1 to [`MAX_MESSAGE_CHARS`] characters).
    pub message: String,
    /// More to show (`requester`, `host`, `command`…); must not set `action` or `message`.
    pub context: Context,
    /// Lifetime of each approver's challenge; the server's default when `None`.
    pub ttl: Option<Duration>,
}

/// How an approval ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The approver whose device decided (`None` when none did: expired, cancelled, timed out).
    pub approver: Option<String>,
    /// The verified outcome of that approver's challenge.
    pub outcome: Outcome,
    /// Approvers who were not asked: unknown to the server, or without a device.
    pub skipped: Vec<String>,
}

/// An approval started with [`Client::start_action`]: one challenge per asked approver.
#[derive(Debug, Clone)]
pub struct PendingAction {
    /// Each asked approver's challenge, in the order of the request.
    pub challenges: Vec<PendingLogin>,
    /// Approvers who were not asked (unknown to the server, or without a device).
    pub skipped: Vec<String>,
}

impl PendingAction {
    /// The users asked, in order.
    pub fn asked(&self) -> Vec<&str> {
        self.challenges.iter().map(|c| c.user.as_str()).collect()
    }
}

/// The context every approver's device shows and signs: `context` with `action` and `message`.
///
/// # Errors
/// [`ClientError::Config`] for an empty or too long message, one with a control character, or
/// a context that sets `action` or `message` itself.
pub fn action_context(message: &str, context: &Context) -> Result<Context, ClientError> {
    let bad = |m: String| Err(ClientError::Config(m));
    if message.trim().is_empty() {
        return bad("the message is empty: say what is to be approved".into());
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return bad(format!(
            "the message is over {MAX_MESSAGE_CHARS} characters"
        ));
    }
    if message.chars().any(char::is_control) {
        return bad("the message holds a control character (a line break, a tab?)".into());
    }
    for key in ["action", MESSAGE_KEY] {
        if context.contains_key(key) {
            return bad(format!(
                "the context may not set {key:?}: the approval sets it"
            ));
        }
    }
    let mut full = context.clone();
    full.insert("action".into(), ACTION_APPROVAL.into());
    full.insert(MESSAGE_KEY.into(), message.to_owned());
    pushauth_proto::context::validate_context(&full)
        .map_err(|e| ClientError::Config(format!("the context: {e}")))?;
    Ok(full)
}

impl Client {
    /// Asks every approver of `request` (each a challenge of its own, no number matching) and
    /// waits until the first answer or `deadline`; the other challenges are then cancelled.
    ///
    /// # Errors
    /// As [`Client::start_action`] and [`Client::wait_any`]. An answer that does not verify is
    /// an error (never an approval).
    pub fn approve_action(
        &self,
        request: &ActionRequest,
        deadline: Instant,
    ) -> Result<ActionOutcome, ClientError> {
        let pending = self.start_action(request, deadline)?;
        self.finish_action(pending, deadline)
    }

    /// Waits on an approval [`Client::start_action`] started until the first answer or
    /// `deadline`, then cancels the other approvers' challenges (on failure too: no approver's
    /// device keeps asking).
    ///
    /// # Errors
    /// [`ClientError::NoDevice`] when nobody was asked; else as [`Client::wait_any`].
    pub fn finish_action(
        &self,
        pending: PendingAction,
        deadline: Instant,
    ) -> Result<ActionOutcome, ClientError> {
        if pending.challenges.is_empty() {
            return Err(ClientError::NoDevice);
        }
        let waited = self.wait_any(&pending.challenges, deadline);
        let decided = waited.as_ref().ok().and_then(|(i, _)| *i);
        for (i, login) in pending.challenges.iter().enumerate() {
            if Some(i) != decided {
                let _ = self.cancel_until(login, deadline);
            }
        }
        let (index, outcome) = waited?;
        Ok(ActionOutcome {
            approver: index
                .and_then(|i| pending.challenges.get(i))
                .map(|c| c.user.clone()),
            outcome,
            skipped: pending.skipped,
        })
    }

    /// Starts one challenge per approver of `request`, before `deadline`. Approvers the server
    /// does not know, or who have no device, are skipped (listed in
    /// [`PendingAction::skipped`]).
    ///
    /// # Errors
    /// [`ClientError::Config`] for a bad request (no approvers, too many, a name twice, a bad
    /// message or context); any other failure of a start, after cancelling the challenges
    /// already started. When no approver could be asked, [`PendingAction::challenges`] is
    /// empty (and [`Client::finish_action`] says [`ClientError::NoDevice`]).
    pub fn start_action(
        &self,
        request: &ActionRequest,
        deadline: Instant,
    ) -> Result<PendingAction, ClientError> {
        let approvers = &request.approvers;
        if approvers.is_empty() {
            return Err(ClientError::Config("no approver is named".into()));
        }
        if approvers.len() > MAX_WAIT_IDS {
            return Err(ClientError::Config(format!(
                "{} approvers named; at most {MAX_WAIT_IDS}",
                approvers.len()
            )));
        }
        let mut seen = BTreeSet::new();
        if let Some(twice) = approvers.iter().find(|a| !seen.insert(a.as_str())) {
            return Err(ClientError::Config(format!(
                "approver {twice:?} is named twice"
            )));
        }
        let context = action_context(&request.message, &request.context)?;
        let options = StartOptions {
            devices: None,
            number_matching: false,
            ttl: request.ttl,
            grace_secs: None,
        };
        let mut started = PendingAction {
            challenges: Vec::new(),
            skipped: Vec::new(),
        };
        for approver in approvers {
            match self.start_until(approver, &context, &options, deadline) {
                Ok(login) => started.challenges.push(login),
                Err(ClientError::UnknownUser | ClientError::NoDevice) => {
                    started.skipped.push(approver.clone());
                }
                Err(e) => {
                    for login in &started.challenges {
                        let _ = self.cancel_until(login, deadline);
                    }
                    return Err(e);
                }
            }
        }
        Ok(started)
    }

    /// Waits on several challenges at once (`GET /v1/challenges?ids=`) until one of them is
    /// decided, expires or is cancelled, or until `deadline`; returns which one (its index in
    /// `logins`; `None` with [`Outcome::TimedOut`]) and its verified outcome. When several were
    /// decided by the same answer of the server, a refusal wins over an approval. All of
    /// `logins` must have been started on the same server (or its replicas).
    ///
    /// # Errors
    /// As [`Client::wait`]; [`ClientError::Config`] for no logins, more than [`MAX_WAIT_IDS`],
    /// or logins started on different servers; [`ClientError::BadAnswer`] for a list that is not
    /// the one asked for, or an answer that does not verify.
    pub fn wait_any(
        &self,
        logins: &[PendingLogin],
        deadline: Instant,
    ) -> Result<(Option<usize>, Outcome), ClientError> {
        let first = logins
            .first()
            .ok_or_else(|| ClientError::Config("nothing to wait on".into()))?;
        if logins.len() > MAX_WAIT_IDS {
            return Err(ClientError::Config(format!(
                "at most {MAX_WAIT_IDS} challenges can be waited on at once"
            )));
        }
        if logins.iter().any(|l| l.server != first.server) {
            return Err(ClientError::Config(
                "the challenges were started on different servers".into(),
            ));
        }
        let ids = logins
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut decided = None;
        let outcome = self.long_poll(
            first.server,
            deadline,
            &|wait_secs| format!("/v1/challenges?ids={ids}&wait={wait_secs}"),
            &mut |list: ChallengeStatuses| {
                if list.challenges.len() != logins.len() {
                    return Err(ClientError::BadAnswer(format!(
                        "{} statuses for {} challenges",
                        list.challenges.len(),
                        logins.len()
                    )));
                }
                let mut found: Option<(usize, Outcome)> = None;
                let acknowledged = list
                    .challenges
                    .iter()
                    .filter(|status| status.state == ChallengeState::Acknowledged)
                    .count();
                for (i, (login, status)) in logins.iter().zip(&list.challenges).enumerate() {
                    if let Some(outcome) = verify::outcome(login, status)? {
                        let approval = matches!(outcome, Outcome::Approved { .. });
                        let keep = match &found {
                            None => true,
                            Some((_, kept)) => refusal_replaces(kept, approval),
                        };
                        if keep {
                            found = Some((i, outcome));
                        }
                    }
                }
                Ok(match found {
                    Some((i, outcome)) => {
                        decided = Some(i);
                        Polled::Decided(outcome)
                    }
                    None => Polled::Open { acknowledged },
                })
            },
        )?;
        Ok((decided, outcome))
    }
}

/// Whether a newly found outcome replaces `kept`: only a refusal replaces an approval.
fn refusal_replaces(kept: &Outcome, new_is_approval: bool) -> bool {
    matches!(kept, Outcome::Approved { .. }) && !new_is_approval
}

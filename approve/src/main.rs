//! pushauth-approve: asks people to approve an action on their phones and exits 0 only on a
//! verified approval, so `pushauth-approve --user alice --message "Deploy 2.3 to prod" && deploy`
//! works in cron jobs, CI runners and runbooks (issue 14).
//!
//! Each approver gets a challenge of their own with the message (no number matching: they are
//! not at this screen); the first answer decides. The answer's signature is verified here
//! against the device key and, where `authorized_devices` holds a file for the approver, against
//! the pinned keys, so pushauthd alone cannot approve. Exit codes: 0 approved, 1 denied, 2 bad
//! usage or configuration, 3 no answer in time (expired, cancelled, timed out), 4 server
//! unreachable or refusing, 5 an answer that does not verify, 6 none of the approvers can be
//! asked (unknown, or without a device).

mod config;
mod groups;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use pushauth_client::action::{ActionRequest, REQUESTER_KEY};
use pushauth_client::{Client, ClientError, Context, Outcome};

/// Exit code: approved, and the answer verified.
const APPROVED: u8 = 0;
/// Exit code: an approver denied (or said "this was not me").
const DENIED: u8 = 1;
/// Exit code: bad usage or configuration (as clap's own usage errors).
const USAGE: u8 = 2;
/// Exit code: no answer in time.
const NO_ANSWER: u8 = 3;
/// Exit code: no server could be reached, or it refused the request.
const UNREACHABLE: u8 = 4;
/// Exit code: an answer that does not verify (wrong signature, a key not pinned).
const UNTRUSTWORTHY: u8 = 5;
/// Exit code: none of the approvers can be asked.
const NOBODY: u8 = 6;

/// Longest wait accepted, in seconds (pushauthd's default `max_ttl_secs`).
const MAX_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Parser)]
#[command(
    name = "pushauth-approve",
    version,
    about = "Ask people to approve an action on their phones; exit 0 only on a verified approval",
    after_help = "Exit codes: 0 approved, 1 denied, 2 bad usage or configuration, 3 no answer in time, \
                  4 server unreachable or refusing, 5 an answer that does not verify, \
                  6 none of the approvers can be asked."
)]
struct Args {
    /// The config file (server, api_key_file, ca_file, authorized_devices).
    #[arg(long, default_value = config::DEFAULT_CONFIG)]
    config: PathBuf,
    /// A pushauth user to ask; repeat for several (the first answer decides).
    #[arg(long = "user", value_name = "USER", required_unless_present = "groups")]
    users: Vec<String>,
    /// A local group whose listed members (as `getent group NAME` prints them) are asked, as
    /// if each were given with --user; repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// What is to be approved, shown first on the phone (one line, at most 200 characters).
    #[arg(long)]
    message: String,
    /// More to show on the phone, as KEY=VALUE (keys: a-z 0-9 _ - .); repeatable.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = key_value)]
    context: Vec<(String, String)>,
    /// Who asks (a pipeline, a job, an account), shown on the phone; a --user of that exact
    /// name is not asked (nobody approves their own request).
    #[arg(long)]
    requester: Option<String>,
    /// How long to wait for an answer, in seconds (1 to 300).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    timeout: u64,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.to_owned(), value.to_owned()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    ExitCode::from(run(&args))
}

fn run(args: &Args) -> u8 {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let client = match config::load(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|cfg| Client::new(cfg).map_err(|e| format!("{}: {e}", args.config.display())))
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("pushauth-approve: {e}");
            return USAGE;
        }
    };
    let mut context = Context::new();
    for (key, value) in &args.context {
        if context.insert(key.clone(), value.clone()).is_some() {
            eprintln!("pushauth-approve: --context {key} is given twice");
            return USAGE;
        }
    }
    if let Some(requester) = &args.requester {
        if context
            .insert(REQUESTER_KEY.into(), requester.clone())
            .is_some()
        {
            eprintln!("pushauth-approve: give the requester with --requester or --context requester=, not both");
            return USAGE;
        }
    }
    // Nobody approves their own request: an approver named exactly as the requester (a
    // pipeline that passes the person who started it) is not asked.
    let requester = context.get(REQUESTER_KEY).cloned();
    let mut approvers = args.users.clone();
    for group in &args.groups {
        match groups::members(group) {
            Ok(members) => {
                for member in members {
                    if !approvers.contains(&member) {
                        approvers.push(member);
                    }
                }
            }
            Err(e) => {
                eprintln!("pushauth-approve: {e}");
                return USAGE;
            }
        }
    }
    if let Some(requester) = &requester {
        if approvers.iter().any(|user| user == requester) {
            eprintln!(
                "pushauth-approve: {requester} is the requester and is not asked: nobody approves their own request"
            );
            approvers.retain(|user| user != requester);
        }
    }
    if approvers.is_empty() {
        eprintln!("pushauth-approve: none of the approvers can be asked");
        return NOBODY;
    }
    let request = ActionRequest {
        approvers,
        message: args.message.clone(),
        context,
        ttl: Some(Duration::from_secs(args.timeout)),
    };
    let pending = match client.start_action(&request, deadline) {
        Ok(pending) => pending,
        Err(e) => return failed(&e),
    };
    for skipped in &pending.skipped {
        eprintln!(
            "pushauth-approve: {skipped} is not asked: unknown to the server, or without a device"
        );
    }
    if pending.challenges.is_empty() {
        eprintln!("pushauth-approve: none of the approvers can be asked");
        return NOBODY;
    }
    eprintln!(
        "pushauth-approve: asked {}; waiting up to {} s for an answer",
        pending.asked().join(", "),
        args.timeout
    );
    let finished = match client.finish_action(pending, deadline) {
        Ok(finished) => finished,
        Err(e) => return failed(&e),
    };
    let approver = finished.approver.as_deref().unwrap_or("nobody");
    match finished.outcome {
        Outcome::Approved {
            device_id,
            device_name,
        } => {
            println!("approved by {approver} (device {device_name:?}, {device_id})");
            APPROVED
        }
        Outcome::Denied { device_id } | Outcome::CodeMismatch { device_id } => {
            eprintln!("pushauth-approve: denied by {approver} (device {device_id})");
            DENIED
        }
        Outcome::Reported { device_id } => {
            eprintln!(
                "pushauth-approve: {approver} reported the request as not theirs to approve (device {device_id})"
            );
            DENIED
        }
        Outcome::Expired => {
            eprintln!("pushauth-approve: no answer: the request expired");
            NO_ANSWER
        }
        Outcome::Cancelled => {
            eprintln!("pushauth-approve: no answer: the request was cancelled");
            NO_ANSWER
        }
        Outcome::TimedOut => {
            eprintln!("pushauth-approve: no answer within {} s", args.timeout);
            NO_ANSWER
        }
    }
}

/// The exit code and message for a failure before any answer.
fn failed(e: &ClientError) -> u8 {
    eprintln!("pushauth-approve: {e}");
    match e {
        ClientError::Config(_) => USAGE,
        ClientError::UnknownUser | ClientError::NoDevice => NOBODY,
        ClientError::BadAnswer(_) => UNTRUSTWORTHY,
        ClientError::Unreachable(_)
        | ClientError::ServerError(_)
        | ClientError::TlsFailure(_)
        | ClientError::Unauthorized
        | ClientError::RateLimited { .. }
        | ClientError::Rejected { .. } => UNREACHABLE,
    }
}

//! `pushauthd push USER`: a test push through the running server (the store alone cannot wake
//! the server's long-polls). Acts as relying party "admin" with the admin token, shows the code
//! to type and a countdown until the challenge ends.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushauth_client::{Client, ClientConfig, Context, Outcome, StartOptions};
use pushauth_proto::challenge::group_code;
use pushauth_proto::text::for_terminal;

use super::admin::base_url;
use super::{CliError, PushArgs};
use crate::clock;
use crate::config::{config_path, read_admin_token, FileConfig, DEFAULT_CONFIG, DEFAULT_DATA_DIR};

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().chars().filter(|c| !c.is_control()).collect())
        .unwrap_or_default()
}

pub fn push(args: &PushArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let named = args.config.as_deref();
    let file = match config_path(named, std::path::Path::new(DEFAULT_CONFIG)) {
        Some(path) => FileConfig::load(&path)?,
        None => FileConfig::default(),
    };
    let server = match &args.server {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => base_url(None, &file)?,
    };
    let token_file = args
        .admin_token_file
        .clone()
        .or_else(|| file.admin_token_file.clone())
        .unwrap_or_else(|| {
            file.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
                .join("admin-token")
        });
    let token = read_admin_token(&token_file).map_err(|e| {
        if token_file.exists() {
            return CliError::from(e);
        }
        // Missing: most often the server's config was not named (a replica on its own
        // config file, a server from source).
        CliError::Failed(format!(
            "{e}; give the server's config file with --config FILE (or PUSHAUTHD_CONFIG), or \
             its admin token file with --admin-token-file PATH"
        ))
    })?;
    let mut config = ClientConfig::new(vec![server.clone()], token.as_str());
    config.ca_file = args.ca_file.clone();
    let client = Client::new(config).map_err(|e| CliError::Failed(e.to_string()))?;

    let mut context = Context::new();
    context.insert("service".into(), "pushauthd-push".into());
    context.insert("message".into(), "Test push from pushauthd".into());
    let host = hostname();
    if !host.is_empty() {
        context.insert("host".into(), host);
    }
    let options = StartOptions {
        number_matching: !args.no_code,
        ..StartOptions::default()
    };
    let login = client
        .start(&args.user, &context, &options)
        .map_err(|e| CliError::Failed(format!("cannot push to {}: {e}", args.user)))?;
    let names: Vec<String> = login
        .devices
        .iter()
        .map(|d| for_terminal(&d.name))
        .collect();
    writeln!(
        out,
        "Pushed to {} ({})",
        for_terminal(&args.user),
        names.join(", ")
    )?;
    if let Some(code) = &login.code {
        // Grouped for reading, as every login screen shows it; devices take it either way.
        writeln!(out, "Type this code on the device: {}", group_code(code))?;
    }
    out.flush()?;

    let now_ms = clock::now_ms();
    let left_ms = clock::parse_rfc3339(&login.expires_at).map_or(60_000, |at| (at - now_ms).max(0));
    // A little slack so the server's own expiry, not our deadline, ends it.
    let deadline = Instant::now()
        + Duration::from_millis(u64::try_from(left_ms).unwrap_or(60_000))
        + Duration::from_secs(2);
    let done = Arc::new(AtomicBool::new(false));
    let countdown = std::io::stderr().is_terminal().then(|| {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                eprint!("\rwaiting for an answer: {left:>3} s left ");
                std::thread::sleep(Duration::from_millis(250));
            }
            eprint!("\r{:40}\r", "");
        })
    });
    let outcome = client.wait(&login, deadline);
    done.store(true, Ordering::Relaxed);
    if let Some(thread) = countdown {
        let _ = thread.join();
    }
    let outcome = outcome.map_err(|e| CliError::Failed(format!("waiting failed: {e}")))?;
    match outcome {
        Outcome::Approved {
            device_id,
            device_name,
        } => {
            writeln!(
                out,
                "approved on {} ({}); the signature verified",
                for_terminal(&device_name),
                for_terminal(&device_id)
            )?;
            Ok(())
        }
        Outcome::TimedOut => {
            let _ = client.cancel(&login);
            Err(CliError::Failed("no answer in time; cancelled".into()))
        }
        other => Err(CliError::Failed(match other {
            Outcome::Denied { device_id } => format!("denied on {device_id}"),
            Outcome::Reported { device_id } => {
                format!("reported as \"not me\" on {device_id}; pushes to this user are paused")
            }
            Outcome::CodeMismatch { device_id } => format!("wrong code typed on {device_id}"),
            Outcome::Expired => "expired without an answer".into(),
            Outcome::Cancelled => "cancelled".into(),
            _ => "ended".into(),
        })),
    }
}

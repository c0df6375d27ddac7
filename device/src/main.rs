//! pushauth-device: the command-line authenticator. Enroll this machine as a pushauth device,
//! list pending login challenges, approve (typing the code the login screen shows), deny, or
//! report them, or watch and answer them as they arrive.

use std::collections::HashSet;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use pushauth_device::profile::{
    default_config_dir, load_profile, profile_exists, profile_path, save_profile,
};
use pushauth_device::{
    Alg, ChallengeStatus, Decision, DeviceClient, DeviceError, DeviceNotice, PendingChallenge,
    Profile, DEFAULT_PROFILE,
};
use pushauth_proto::challenge::check_typed_code;
use pushauth_proto::text::{for_terminal, for_terminal_cut};
use pushauth_proto::wire::{
    PendingList, ACTION_ADD_DEVICE, ACTION_APPROVAL, NOTICE_BACKUP_CODES_ISSUED,
    NOTICE_BACKUP_CODES_VOIDED, NOTICE_BACKUP_CODE_USED, NOTICE_DEVICE_ADDED,
    NOTICE_OFFLINE_CODE_USED,
};

/// Long-poll length for `watch`.
const WATCH_POLL_SECS: u64 = 25;

#[derive(Parser)]
#[command(
    name = "pushauth-device",
    version,
    about = "pushauth command-line authenticator"
)]
struct Cli {
    /// Directory holding the profiles [default: $XDG_CONFIG_HOME/pushauth-device or
    /// ~/.config/pushauth-device]
    #[arg(long, global = true, env = "PUSHAUTH_DEVICE_DIR")]
    config_dir: Option<PathBuf>,
    /// Profile (one enrolled device) to use.
    #[arg(long, global = true, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// For this run, talk to this server instead of the profile's: another replica of the
    /// same pushauthd, when the one the device enrolled with is down (`set-server` keeps it).
    // No environment variable: one would follow every profile and break `offline-code`, the
    // command for when no server answers (attack review r11).
    #[arg(long, global = true, value_name = "URL")]
    server: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this device from an enrollment link (<server>/enroll?token=…).
    Enroll {
        url: String,
        /// Friendly name shown to relying parties [default: pushauth-device@<hostname>]
        #[arg(long)]
        name: Option<String>,
        /// Extra PEM CA bundle for the server's certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Replace an existing profile of the same name.
        #[arg(long)]
        force: bool,
        /// Key algorithm: ed25519, or es256 (ECDSA P-256, as a browser without Ed25519 makes).
        #[arg(long, default_value = "ed25519", value_parser = parse_alg)]
        alg: Alg,
    },
    /// Show this device's profile and key fingerprint (nothing secret; no network).
    #[command(visible_alias = "show")]
    Info,
    /// Print the offline code for when pushauthd cannot be reached (HOTP, RFC 4226; no
    /// network). Each run shows the next code: type it at the login prompt that asks for it.
    OfflineCode,
    /// List open challenges.
    Pending {
        /// Wait up to SECS (at most 30) for a challenge to arrive.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a challenge, typing the code shown on the login screen.
    Approve {
        /// The challenge id (ids may start with '-').
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        code: Option<String>,
    },
    /// Deny a challenge.
    Deny {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Report a challenge as "this was not me".
    Report {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Register this device's Web Push subscription (one per device: replaces the old), remove
    /// it, or print the server's VAPID public key.
    PushSubscribe {
        /// The push service endpoint URL.
        #[arg(required_unless_present_any = ["remove", "vapid_key"])]
        endpoint: Option<String>,
        /// The subscription's ECDH public key (base64url of the 65-byte P-256 point; may start
        /// with '-').
        #[arg(long, allow_hyphen_values = true, required_unless_present_any = ["remove", "vapid_key"])]
        p256dh: Option<String>,
        /// The subscription's 16-byte authentication secret (base64url; may start with '-').
        #[arg(long, allow_hyphen_values = true, required_unless_present_any = ["remove", "vapid_key"])]
        auth: Option<String>,
        /// Remove this device's subscription instead.
        #[arg(long, conflicts_with_all = ["endpoint", "vapid_key"])]
        remove: bool,
        /// Print the server's VAPID public key (base64url) instead.
        #[arg(long)]
        vapid_key: bool,
    },
    /// Ask the server for a new set of backup codes (the old ones stop working) and print it
    /// once; keep the codes offline.
    BackupCodes {
        /// Codes in the set [default: the server's, 10].
        #[arg(long)]
        count: Option<u32>,
    },
    /// End every grace window of this device's user at once: the next login on every host
    /// pushes again (issue 12).
    EndGrace,
    /// Keep another server's URL in the profile (another replica of the same pushauthd, or
    /// its new address), after checking that it answers this device's signed request.
    SetServer {
        /// The server's base URL, as an enrollment link starts.
        url: String,
    },
    /// Wait for challenges and answer them interactively.
    Watch {
        /// Exit after the first answered challenge.
        #[arg(long)]
        once: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let enrolled = !matches!(cli.command, Command::Enroll { .. });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors may carry the server's message text: escaped like everything it sends.
            eprintln!("pushauth-device: {}", shown(&format!("{e:#}")));
            let unreachable = e
                .chain()
                .any(|c| matches!(c.downcast_ref(), Some(DeviceError::Unreachable(_))));
            if enrolled && unreachable {
                // Replicas share the device's enrollment: any of them can serve it.
                eprintln!(
                    "pushauth-device: if pushauthd runs as several replicas, another can serve \
                     this device: --server URL for this run, or set-server URL to keep it"
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = match cli.config_dir {
        Some(dir) => dir,
        None => default_config_dir()?,
    };
    let profile = cli.profile.as_str();
    let server = cli.server.as_deref();
    if server.is_some() {
        match cli.command {
            Command::Enroll { .. } => {
                bail!("--server does not apply to enroll: the server is the link's")
            }
            Command::Info | Command::OfflineCode | Command::SetServer { .. } => bail!(
                "--server applies to commands that talk to the server (pending, approve, watch, \
                 ...); set-server keeps a server in the profile"
            ),
            _ => {}
        }
    }
    let open = |dir: &std::path::Path, profile: &str| open(dir, profile, server);
    match cli.command {
        Command::Enroll {
            url,
            name,
            ca_file,
            force,
            alg,
        } => enroll(&dir, profile, &url, name, ca_file, force, alg),
        Command::Info => info(&dir, profile),
        Command::OfflineCode => offline_code(&dir, profile),
        Command::Pending { wait, json } => pending(&open(&dir, profile)?, wait, json),
        Command::Approve { id, code } => {
            answer(&open(&dir, profile)?, &id, Decision::Approve, code)
        }
        Command::Deny { id } => answer(&open(&dir, profile)?, &id, Decision::Deny, None),
        Command::Report { id } => answer(&open(&dir, profile)?, &id, Decision::Report, None),
        Command::Watch { once } => watch(&open(&dir, profile)?, once),
        Command::SetServer { url } => set_server(&dir, profile, &url),
        Command::BackupCodes { count } => backup_codes(&open(&dir, profile)?, count),
        Command::EndGrace => {
            let ended = open(&dir, profile)?.end_grace()?;
            println!(
                "ended every grace window of {}: the next login pushes again",
                shown(&ended.user)
            );
            Ok(())
        }
        Command::PushSubscribe {
            endpoint,
            p256dh,
            auth,
            remove,
            vapid_key,
        } => push_subscribe(
            &open(&dir, profile)?,
            endpoint,
            p256dh,
            auth,
            remove,
            vapid_key,
        ),
    }
}

/// `backup-codes`: a new set, printed once with what to do with it. The codes came from the
/// server: a code that is not letters, digits and dashes is refused, not printed.
fn backup_codes(client: &DeviceClient, count: Option<u32>) -> Result<()> {
    let set = client.issue_backup_codes(count)?;
    let plain = |c: &String| {
        !c.is_empty()
            && c.len() <= 32
            && c.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    };
    if !set.codes.iter().all(plain) {
        bail!("the server sent backup codes that are not letters, digits and dashes");
    }
    println!(
        "New backup codes for {} (every earlier code no longer works):\n",
        shown(&set.user)
    );
    for (i, code) in set.codes.iter().enumerate() {
        println!("  {:>2}. {code}", i + 1);
    }
    println!(
        "\nEach code works once, in place of approving a push (type it at the login prompt), or \
         to enroll a new phone. They are shown only now: print them or write them down and keep \
         them offline, away from this device."
    );
    Ok(())
}

/// `push-subscribe`: prints one JSON line (`{"origin","replaced"}` or `{"removed"}`), or the
/// VAPID key.
fn push_subscribe(
    client: &DeviceClient,
    endpoint: Option<String>,
    p256dh: Option<String>,
    auth: Option<String>,
    remove: bool,
    vapid_key: bool,
) -> Result<()> {
    if vapid_key {
        println!("{}", client.vapid_public_key()?);
    } else if remove {
        let removed = client.remove_push_subscription()?;
        println!("{}", serde_json::json!({ "removed": removed }));
    } else {
        let (Some(endpoint), Some(p256dh), Some(auth)) = (endpoint, p256dh, auth) else {
            bail!("push-subscribe needs ENDPOINT, --p256dh and --auth");
        };
        let set = client.set_push_subscription(&endpoint, &p256dh, &auth)?;
        println!(
            "{}",
            serde_json::json!({ "origin": set.origin, "replaced": set.replaced })
        );
    }
    Ok(())
}

/// The client of an enrolled profile.
/// A client for `profile`, speaking to `server` instead of the profile's when given.
fn open(dir: &std::path::Path, profile: &str, server: Option<&str>) -> Result<DeviceClient> {
    let mut profile = load_profile(dir, profile)?;
    if let Some(server) = server {
        profile.server = server.to_owned();
    }
    Ok(DeviceClient::new(&profile)?)
}

/// `set-server`: the profile's server becomes `url` once that server has answered a signed
/// request of this device (so a typo, or a server that does not know the device, changes
/// nothing).
fn set_server(dir: &std::path::Path, profile_name: &str, url: &str) -> Result<()> {
    let mut profile = load_profile(dir, profile_name)?;
    let old = std::mem::replace(&mut profile.server, url.to_owned());
    if old.starts_with("https://") && !url.starts_with("https://") {
        bail!(
            "the profile's server {} uses https; refusing to keep {} without it",
            shown(&old),
            shown(url)
        );
    }
    let client = DeviceClient::new(&profile)?;
    client.pending(0).with_context(|| {
        format!(
            "{} did not accept this device; the profile still names {}",
            shown(url),
            shown(&old)
        )
    })?;
    // Read again and change only the server: an offline code taken meanwhile advanced the
    // profile's counter, which saving the copy read before the network call would undo.
    let mut profile = load_profile(dir, profile_name)?;
    profile.server = url.to_owned();
    save_profile(dir, profile_name, &profile, true)?;
    println!(
        "server: {} (was {}); it knows this device",
        shown(url),
        shown(&old)
    );
    Ok(())
}

/// `--alg`: the wire names of [`Alg`].
fn parse_alg(text: &str) -> Result<Alg, String> {
    text.parse()
        .map_err(|_| format!("unknown key algorithm {text:?}: use ed25519 or es256"))
}

fn enroll(
    dir: &std::path::Path,
    profile_name: &str,
    url: &str,
    name: Option<String>,
    ca_file: Option<PathBuf>,
    force: bool,
    alg: Alg,
) -> Result<()> {
    // Check before using the single-use token, so a refusal does not burn it.
    let path = profile_path(dir, profile_name)?;
    if !force && profile_exists(dir, profile_name)? {
        bail!(
            "profile {profile_name:?} already exists ({}); use --force to replace it, or \
             --profile NAME for another one",
            path.display()
        );
    }
    let name = name.unwrap_or_else(default_device_name);
    let profile = DeviceClient::enroll_alg(url, &name, ca_file.as_deref(), alg)?;
    let path = save_profile(dir, profile_name, &profile, force)?;
    println!(
        "enrolled device {} ({}) for user {} on {}",
        shown(&profile.device_id),
        shown(&profile.name),
        shown(&profile.user),
        shown(&profile.server)
    );
    let public = profile.signing_key()?.public_key();
    println!("key: {} {}", public.alg(), public.fingerprint());
    println!("profile saved to {}", shown(&path.display().to_string()));
    Ok(())
}

/// `info`: what the profile holds, less the secret, and the key as a person compares it (the
/// fingerprint) and as an `authorized_devices` line pins it.
fn info(dir: &std::path::Path, profile_name: &str) -> Result<()> {
    let profile: Profile = load_profile(dir, profile_name)?;
    let public = profile.signing_key()?.public_key();
    println!("profile:     {}", shown(profile_name));
    println!("server:      {}", shown(&profile.server));
    println!("user:        {}", shown(&profile.user));
    println!("device id:   {}", shown(&profile.device_id));
    println!("name:        {}", shown(&profile.name));
    println!("algorithm:   {}", public.alg());
    println!("fingerprint: {}", public.fingerprint());
    println!("public key:  {}", public.to_b64());
    println!(
        "authorized_devices line: {} {} {}",
        public.alg(),
        public.to_b64(),
        shown(&profile.name)
    );
    Ok(())
}

fn offline_code(dir: &std::path::Path, profile_name: &str) -> Result<()> {
    // Saved with the counter advanced before it is shown: a code is never shown twice.
    let (counter, code) = pushauth_device::offline::next_code(dir, profile_name)?;
    println!("{}", pushauth_proto::hotp::group(&code));
    eprintln!(
        "offline code #{counter}: type it at the login prompt that asks for it (each code works once)"
    );
    Ok(())
}

fn default_device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("pushauth-device@{host}")
}

/// Longest context value shown in full, in characters; longer ones are cut with a visible mark.
const MAX_SHOWN_VALUE: usize = 200;
/// Longest context key shown in full.
const MAX_SHOWN_KEY: usize = 40;

/// Text that came from the server (or a relying party through it), made safe and honest for a
/// terminal: hidden characters (controls, bidi and other format characters) are shown as
/// visible escapes, never interpreted and never silently dropped.
fn shown(text: &str) -> String {
    for_terminal(text)
}

/// JSON text with every hidden character written as its `\uXXXX` escape: the same JSON value,
/// safe to print on a terminal (serde_json escapes only control characters).
fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // Raw newlines and tabs are the pretty-printer's own (serde_json escapes them in strings).
        if pushauth_proto::text::is_hidden(c) && !matches!(c, '\n' | '\t' | '\r') {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", unit));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The line that announces a notice: a device added to the account (issue 9 item 1), a backup
/// code used or a new set issued (issue 12), or a kind this version does not know, shown with
/// its fields. Everything in it came from the server, so all of it goes through the one
/// terminal rule.
fn notice_text(user: &str, notice: &DeviceNotice) -> String {
    let user = for_terminal(user);
    let at = for_terminal(&notice.at);
    let from = for_terminal(notice.source.as_deref().unwrap_or("an unknown address"));
    let via = notice
        .via
        .as_deref()
        .map(|v| format!(" (via {})", for_terminal(v)))
        .unwrap_or_default();
    let place = if notice.context.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = notice
            .context
            .iter()
            .map(|(k, v)| format!("{}={}", for_terminal(k), for_terminal(v)))
            .collect();
        format!(" ({})", pairs.join(", "))
    };
    match notice.kind.as_str() {
        NOTICE_DEVICE_ADDED => format!(
            "New device '{}' was added to your account {user} on {at} from {from}{}; if this \
             was not you, tell your administrator and revoke it",
            for_terminal(notice.device_name.as_deref().unwrap_or("?")),
            notice
                .via
                .as_deref()
                .map(|v| format!(" (enrolled via {})", for_terminal(v)))
                .unwrap_or_default(),
        ),
        NOTICE_BACKUP_CODE_USED => format!(
            "A backup code of your account {user} was used on {at}{place}{}; if this was not \
             you, tell your administrator at once",
            notice
                .count
                .map(|c| format!(", {c} unused codes left"))
                .unwrap_or_default(),
        ),
        NOTICE_BACKUP_CODES_ISSUED => format!(
            "A new set of {} backup codes was issued for your account {user} on {at}{via}; the \
             old codes no longer work. If this was not you, tell your administrator at once",
            notice.count.unwrap_or(0),
        ),
        NOTICE_BACKUP_CODES_VOIDED => format!(
            "Every backup code of your account {user} was voided on {at}{via}; none works until \
             a new set is issued. If this was not you, tell your administrator at once"
        ),
        NOTICE_OFFLINE_CODE_USED => format!(
            "An offline code of your account {user} was used while the push server was down{place}; \
             reported on {at}. If this was not you, tell your administrator at once"
        ),
        other => format!(
            "Notice '{}' for your account {user} on {at}{via}{place}",
            for_terminal(other)
        ),
    }
}

/// Prints the notices not in `seen` (and remembers them); to stderr when stdout carries JSON.
fn print_notices(client: &DeviceClient, seen: &mut HashSet<String>, to_stderr: bool) {
    match client.notices() {
        Ok(notices) => {
            for notice in notices {
                if !seen.insert(notice.key()) {
                    continue;
                }
                let text = notice_text(client.user(), &notice);
                if to_stderr {
                    eprintln!("{text}");
                } else {
                    println!("{text}");
                }
            }
        }
        Err(e) => eprintln!(
            "pushauth-device: cannot read device notices: {}",
            shown(&e.to_string())
        ),
    }
}

/// True for a challenge that would add a device to the account rather than log in.
fn adds_device(challenge: &PendingChallenge) -> bool {
    challenge.context.get("action").map(String::as_str) == Some(ACTION_ADD_DEVICE)
}

/// Issue 14: the message of an approval by someone else (`action = "approval"`), if it is one.
fn approval_message(challenge: &PendingChallenge) -> Option<&str> {
    (challenge.context.get("action").map(String::as_str) == Some(ACTION_APPROVAL))
        .then(|| challenge.context.get("message").map_or("", String::as_str))
}

fn print_challenge(challenge: &PendingChallenge) {
    if let Some(message) = approval_message(challenge) {
        let from = challenge
            .context
            .get("requester")
            .map(|r| format!(" from {}", for_terminal_cut(r, 64)))
            .unwrap_or_default();
        println!("!!! APPROVAL REQUESTED{from}: you are asked to approve what someone else does");
        println!(">>> {}", for_terminal_cut(message, MAX_SHOWN_VALUE));
    }
    if adds_device(challenge) {
        let name = challenge
            .context
            .get("device_name")
            .map(|n| format!(" '{}'", for_terminal_cut(n, 64)))
            .unwrap_or_default();
        println!(
            "!!! ADD A NEW DEVICE{name} to account {} — approve only if you are adding a device yourself",
            for_terminal(&challenge.user)
        );
    }
    println!("challenge {}", shown(&challenge.id));
    match &challenge.rp_name {
        Some(name) => println!(
            "  asked by relying party '{}'",
            for_terminal_cut(name, MAX_SHOWN_KEY * 2)
        ),
        None => println!("  asked by a relying party the server did not name"),
    }
    println!("  user:      {}", shown(&challenge.user));
    println!("  state:     {}", challenge.state);
    println!("  expires:   {}", shown(&challenge.expires_at));
    if challenge.code_required {
        println!(
            "  code:      required (type the {} shown on the login screen)",
            code_words(challenge)
        );
    } else {
        println!("  code:      not required");
    }
    for (key, value) in &challenge.context {
        println!(
            "  {:<10} {}",
            format!("{}:", for_terminal_cut(key, MAX_SHOWN_KEY)),
            for_terminal_cut(value, MAX_SHOWN_VALUE)
        );
    }
}

fn pending(client: &DeviceClient, wait: u64, json: bool) -> Result<()> {
    print_notices(client, &mut HashSet::new(), json);
    let challenges = client.pending(wait)?;
    let open: Vec<PendingChallenge> = challenges
        .into_iter()
        .filter(|c| !c.state.is_terminal())
        .collect();
    if json {
        let text = serde_json::to_string_pretty(&PendingList { challenges: open })?;
        println!("{}", json_for_terminal(&text));
    } else if open.is_empty() {
        println!("no pending challenges");
    } else {
        for challenge in &open {
            print_challenge(challenge);
        }
    }
    Ok(())
}

fn print_status(status: &ChallengeStatus) {
    match status.reason {
        Some(reason) => println!(
            "challenge {}: {} ({reason})",
            shown(&status.id),
            status.state
        ),
        None => println!("challenge {}: {}", shown(&status.id), status.state),
    }
}

fn answer(client: &DeviceClient, id: &str, decision: Decision, code: Option<String>) -> Result<()> {
    let challenge = client
        .pending(0)?
        .into_iter()
        .find(|c| c.id == id && !c.state.is_terminal())
        .with_context(|| {
            format!(
                "no open challenge {id:?} for this device (it may be decided, expired, or not \
                 sent to this device); see `pushauth-device pending`"
            )
        })?;
    let code = match (decision, challenge.code_required, code) {
        (Decision::Approve, true, None) => bail!(
            "this challenge needs the {} shown on the login screen: add --code followed by it",
            code_words(&challenge)
        ),
        // Checked here, not sent: the one attempt per challenge is not spent on a typo.
        (Decision::Approve, true, Some(code)) => check_typed_code(&code, challenge.code_length)
            .map_err(|e| anyhow::anyhow!("{e}; nothing was sent, the challenge is still open"))?,
        (Decision::Approve, false, Some(code)) => code,
        _ => String::new(),
    };
    let status = client.respond(&challenge, decision, &code)?;
    print_status(&status);
    Ok(())
}

/// "6-digit code", or "code" from a server that does not say the length.
fn code_words(challenge: &PendingChallenge) -> String {
    match challenge.code_length {
        Some(n) => format!("{n}-digit code"),
        None => "code".to_owned(),
    }
}

/// What the person typed at the watch prompt.
#[derive(Debug, PartialEq)]
enum Typed {
    Answer(Decision, String),
    /// A code that cannot be the one shown (wrong length, not digits): why, and nothing sent.
    BadCode(String),
    Again,
}

fn parse_typed(line: &str, challenge: &PendingChallenge) -> Typed {
    let text = line.trim();
    match text {
        "d" | "deny" => Typed::Answer(Decision::Deny, String::new()),
        "r" | "report" => Typed::Answer(Decision::Report, String::new()),
        "y" | "yes" if !challenge.code_required => Typed::Answer(Decision::Approve, String::new()),
        code if challenge.code_required && code.bytes().any(|b| b.is_ascii_digit()) => {
            // With or without the space the login screen groups it with ("482 913").
            match check_typed_code(code, challenge.code_length) {
                Ok(code) => Typed::Answer(Decision::Approve, code),
                Err(e) => Typed::BadCode(e.to_string()),
            }
        }
        _ => Typed::Again,
    }
}

fn watch(client: &DeviceClient, once: bool) -> Result<()> {
    let stdin = io::stdin();
    let echoed = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut seen: HashSet<String> = HashSet::new();
    let mut backoff = Duration::from_millis(500);
    let mut noticed: HashSet<String> = HashSet::new();
    println!("watching for challenges (Ctrl-C to stop)");
    loop {
        print_notices(client, &mut noticed, false);
        let challenges = match client.pending(WATCH_POLL_SECS) {
            Ok(challenges) => {
                backoff = Duration::from_millis(500);
                challenges
            }
            // The server restarting or the network dropping should not end a watch.
            Err(e @ (DeviceError::Unreachable(_) | DeviceError::Server { status: 500.., .. })) => {
                eprintln!("pushauth-device: {}; retrying", shown(&e.to_string()));
                sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for challenge in challenges {
            if challenge.state.is_terminal() || !seen.insert(challenge.id.clone()) {
                continue;
            }
            if let Err(e) = client.ack(&challenge.id) {
                eprintln!(
                    "pushauth-device: cannot acknowledge {}: {}",
                    shown(&challenge.id),
                    shown(&e.to_string())
                );
                continue;
            }
            print_challenge(&challenge);
            let (decision, code) = loop {
                if adds_device(&challenge) {
                    print!(
                        "Only if YOU are adding this device: type the code shown where you add it \
                         (or 'd' to deny, 'r' to report): "
                    );
                } else if challenge.code_required {
                    print!(
                        "Type the {} shown on the login screen (or 'd' to deny, 'r' to report): ",
                        code_words(&challenge)
                    );
                } else {
                    print!(
                        "Approve this login? Type 'y' to approve (or 'd' to deny, 'r' to report): "
                    );
                }
                io::stdout().flush()?;
                let mut line = String::new();
                if input.read_line(&mut line)? == 0 {
                    bail!("standard input closed before an answer was typed");
                }
                if !echoed {
                    // Piped input is not echoed: end the prompt's line ourselves.
                    println!();
                }
                match parse_typed(&line, &challenge) {
                    Typed::Answer(decision, code) => break (decision, code),
                    Typed::BadCode(why) => println!("{why}; nothing was sent, type it again"),
                    Typed::Again => println!("not understood"),
                }
            };
            match client.respond(&challenge, decision, &code) {
                Ok(status) => {
                    print_status(&status);
                    if once {
                        return Ok(());
                    }
                }
                Err(e) => eprintln!(
                    "pushauth-device: answer not accepted: {}",
                    shown(&e.to_string())
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_ids_may_start_with_a_hyphen() {
        // Ids are base64url, so about one in 32 starts with '-'.
        let cli = Cli::try_parse_from(["pushauth-device", "approve", "-Nx4_q", "--code", "42"])
            .expect("an id starting with '-' parses");
        match cli.command {
            Command::Approve { id, code } => {
                assert_eq!(id, "-Nx4_q");
                assert_eq!(code.as_deref(), Some("42"));
            }
            _ => panic!("parsed as another command"),
        }
        for verb in ["deny", "report"] {
            assert!(Cli::try_parse_from(["pushauth-device", verb, "-abc"]).is_ok());
        }
    }

    #[test]
    fn push_subscription_keys_may_start_with_a_hyphen() {
        // A browser's p256dh and auth are base64url too (CI once drew auth "-BiUu…").
        let cli = Cli::try_parse_from([
            "pushauth-device",
            "push-subscribe",
            "https://push.example/x",
            "--p256dh",
            "-BGGdVodw",
            "--auth",
            "-BiUuaTVuwIHMgVhgOWGhw",
        ])
        .expect("keys starting with '-' parse");
        match cli.command {
            Command::PushSubscribe { p256dh, auth, .. } => {
                assert_eq!(p256dh.as_deref(), Some("-BGGdVodw"));
                assert_eq!(auth.as_deref(), Some("-BiUuaTVuwIHMgVhgOWGhw"));
            }
            _ => panic!("parsed as another command"),
        }
    }
    fn pending(code_length: Option<u8>) -> PendingChallenge {
        PendingChallenge {
            id: "c1".into(),
            user: "alice".into(),
            state: pushauth_proto::ChallengeState::Pending,
            context: pushauth_proto::Context::new(),
            context_digest: String::new(),
            rp_nonce: String::new(),
            created_at: String::new(),
            expires_at: String::new(),
            code_required: code_length.is_some(),
            code_length,
            rp_name: None,
        }
    }

    #[test]
    fn issue11_watch_checks_the_typed_code_length_before_sending() {
        let six = pending(Some(6));
        let approve = |code: &str| Typed::Answer(Decision::Approve, code.to_owned());
        assert_eq!(parse_typed("048213\n", &six), approve("048213"));
        assert_eq!(parse_typed("482 913\n", &six), approve("482913"));
        assert_eq!(
            parse_typed("d\n", &six),
            Typed::Answer(Decision::Deny, String::new())
        );
        assert_eq!(parse_typed("\n", &six), Typed::Again);
        assert_eq!(parse_typed("y\n", &six), Typed::Again, "a code is required");
        match parse_typed("48213\n", &six) {
            Typed::BadCode(why) => assert!(why.contains("6 digits"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_typed("4821x3", &six), Typed::BadCode(_)));
        assert!(matches!(parse_typed("1234567", &six), Typed::BadCode(_)));
        // A server that does not say the length: 2 to 8 digits go.
        assert_eq!(
            parse_typed("42", &pending(None)),
            Typed::Again,
            "no code asked"
        );
        let mut unknown = pending(None);
        unknown.code_required = true;
        assert_eq!(parse_typed("42", &unknown), approve("42"));
        assert!(matches!(parse_typed("4", &unknown), Typed::BadCode(_)));
        assert_eq!(code_words(&six), "6-digit code");
        assert_eq!(code_words(&unknown), "code");
    }

    fn notice(kind: &str) -> DeviceNotice {
        DeviceNotice {
            kind: kind.into(),
            device_id: None,
            device_name: None,
            at: "2026-01-02T03:04:05Z".into(),
            source: None,
            via: Some("rp:\u{1b}[31mx".into()),
            context: [("host".to_owned(), "web1".to_owned())].into(),
            count: Some(9),
        }
    }

    #[test]
    fn issue12_notices_of_every_kind_print_sensibly() {
        let used = notice_text("alice", &notice(NOTICE_BACKUP_CODE_USED));
        assert!(
            used.contains("backup code of your account alice was used"),
            "{used}"
        );
        assert!(
            used.contains("host=web1") && used.contains("9 unused codes left"),
            "{used}"
        );
        let issued = notice_text("alice", &notice(NOTICE_BACKUP_CODES_ISSUED));
        assert!(issued.contains("new set of 9 backup codes"), "{issued}");
        assert!(
            !issued.contains('\u{1b}'),
            "server text is sanitised: {issued:?}"
        );
        let voided = notice_text("alice", &notice(NOTICE_BACKUP_CODES_VOIDED));
        assert!(
            voided.contains("Every backup code of your account alice was voided"),
            "{voided}"
        );
        let offline = notice_text("alice", &notice(NOTICE_OFFLINE_CODE_USED));
        assert!(
            offline.contains("offline code of your account alice") && offline.contains("host=web1"),
            "{offline}"
        );
        let later = notice_text("alice", &notice("grace_ended"));
        assert!(
            later.starts_with("Notice 'grace_ended' for your account alice"),
            "{later}"
        );
        assert!(later.contains("host=web1"), "{later}");
        let mut added = notice(NOTICE_DEVICE_ADDED);
        added.device_id = Some("d1".into());
        added.device_name = Some("laptop".into());
        assert!(notice_text("alice", &added).starts_with("New device 'laptop' was added"));
        assert_eq!(added.key(), "d1");
        assert_ne!(notice("a").key(), notice("b").key());
    }
}

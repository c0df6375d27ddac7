//! The grace window on the PAM host (issue 12, `grace_secs` and `sudo_grace` in
//! pam_push.conf): after a push this module saw approved, the same login (same user, service,
//! host, remote address and SSH key: [`pushauth_proto::grace::grace_key`]) within
//! `grace_secs` is let in without a new push. pushauthd decides and audits it; this module
//! only believes it for an approval it verified itself.
//!
//! Why a record of its own: pushauthd's "approved by grace" carries no device signature, so a
//! server that is broken into could claim a window for anyone. The module therefore keeps, in
//! `<state_dir>/grace/<user>` ([`crate::state`]), the approvals whose device signature it
//! checked (and whose key was pinned, where pins exist): challenge id, grace key and when. A
//! grace answer is accepted only when its `of` names such a record, for the same key, within
//! this host's own `grace_secs`; anything else is an untrustworthy answer, denied and logged.

use std::time::{SystemTime, UNIX_EPOCH};

use pushauth_client::{Context, GraceGrant};
use pushauth_proto::grace::{grace_key, is_sudo_service};

use crate::authenticate::{Conversation, Level, Log, PamCode};
use crate::config::Config;
use crate::state::{Feature, StateDir, StateError};

/// Approvals kept per user (the newest): enough for a person working from a few places.
pub const MAX_RECORDS: usize = 32;
/// Largest record file read (32 lines of about 120 bytes, with room).
const MAX_FILE_BYTES: u64 = 16 * 1024;
/// How far in the future a recorded time may lie (the clock was set back) before the record is
/// distrusted.
const MAX_FUTURE_SECS: u64 = 60;
/// The record file's first word on each line, so a later format can tell itself apart.
const LINE_TAG: &str = "v1";

/// PAM services that raise privileges like sudo does (besides `sudo*`): `su`, `su-l`, doas,
/// pkexec (`polkit-1`), run0 (`systemd-run0`), Kerberos `ksu`.
const RAISING_SERVICES: [&str; 7] = [
    "su",
    "su-l",
    "doas",
    "polkit-1",
    "pkexec",
    "systemd-run0",
    "ksu",
];

/// Whether `service` raises privileges: sudo and its variants, or one of
/// [`RAISING_SERVICES`]. None of them takes grace unless `sudo_grace = true`: the grace key
/// holds no terminal, so a window would let every session of the user do the same.
pub fn raises_privileges(service: &str) -> bool {
    is_sudo_service(service) || RAISING_SERVICES.contains(&service)
}

/// Whether `service` is sshd (`sshd`, or a copy such as `sshd-internal`).
fn is_sshd(service: &str) -> bool {
    service == "sshd" || service.starts_with("sshd-")
}

/// The `grace_secs` this login asks pushauthd for: `None` when grace is off (`grace_secs = 0`),
/// when the service raises privileges (sudo, `sudo-i`, su, doas, pkexec, run0…, see
/// [`raises_privileges`]) and `sudo_grace` is not set, or when an sshd login's `context` holds
/// no `ssh_key` (a password login, or sshd without `ExposeAuthInfo`) and `grace_without_key`
/// is not set: without the key, anyone with the password from the same address would share
/// the person's window.
pub fn ask(config: &Config, service: &str, context: &Context) -> Option<u64> {
    if config.grace_secs == 0 || (raises_privileges(service) && !config.sudo_grace) {
        return None;
    }
    if is_sshd(service) && !context.contains_key("ssh_key") && !config.grace_without_key {
        return None;
    }
    Some(config.grace_secs)
}

/// One approval this module verified.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Approval {
    challenge: String,
    key: [u8; 32],
    at: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The records in a file; lines that do not parse are skipped (they prove nothing).
fn parse(bytes: &[u8]) -> Vec<Approval> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            if fields.next()? != LINE_TAG {
                return None;
            }
            let challenge = fields.next()?;
            pushauth_proto::names::check_id("challenge", challenge).ok()?;
            let key = unhex(fields.next()?)?;
            let at = fields.next()?.parse().ok()?;
            fields.next().is_none().then(|| Approval {
                challenge: challenge.to_owned(),
                key,
                at,
            })
        })
        .collect()
}

fn format(records: &[Approval]) -> String {
    records
        .iter()
        .map(|r| format!("{LINE_TAG} {} {} {}\n", r.challenge, hex(&r.key), r.at))
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn state(config: &Config) -> StateDir {
    StateDir::new(&config.state_dir, config.owner)
}

/// Whether `record` still opens a window at `now` on this host.
fn live(record: &Approval, grace_secs: u64, now: u64) -> bool {
    record.at <= now.saturating_add(MAX_FUTURE_SECS) && now <= record.at.saturating_add(grace_secs)
}

/// Records an approval this module verified (challenge `challenge` of `user` with `context`),
/// keeping the other live ones (at most [`MAX_RECORDS`], newest first).
///
/// # Errors
/// A [`StateError`] when the state directory or the file fails its checks or cannot be written.
pub fn remember(
    config: &Config,
    user: &str,
    context: &Context,
    challenge: &str,
    now: u64,
) -> Result<(), StateError> {
    let state = state(config);
    let mut records = match state.read_user(Feature::Grace, user, MAX_FILE_BYTES) {
        Ok(Some(bytes)) => parse(&bytes),
        Ok(None) => Vec::new(),
        // An unreadable or oversized file is replaced, unless the directory itself is unsafe
        // (then the write below refuses too).
        Err(_) => Vec::new(),
    };
    records.retain(|r| live(r, config.grace_secs, now) && r.challenge != challenge);
    records.insert(
        0,
        Approval {
            challenge: challenge.to_owned(),
            key: grace_key(user, context),
            at: now,
        },
    );
    records.truncate(MAX_RECORDS);
    state.write_user(Feature::Grace, user, format(&records).as_bytes())
}

/// Checks pushauthd's grace answer for `user`'s login with `context` against this host's
/// record: `grant.of` must be an approval recorded here for the same grace key, within this
/// host's `grace_secs` of `now`.
///
/// # Errors
/// Why the answer is not believed (for the log; never shown to the person).
pub fn check(
    config: &Config,
    user: &str,
    context: &Context,
    grant: &GraceGrant,
    now: u64,
) -> Result<(), String> {
    if config.grace_secs == 0 {
        return Err("a grace answer although grace_secs is off on this host".into());
    }
    let records = match state(config).read_user(Feature::Grace, user, MAX_FILE_BYTES) {
        Ok(Some(bytes)) => parse(&bytes),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("the grace record cannot be read: {e}")),
    };
    let Some(record) = records.iter().find(|r| r.challenge == grant.of) else {
        return Err(format!(
            "the server claims a grace window of challenge {}, which this host never saw approved",
            pushauth_proto::text::for_terminal_cut(&grant.of, 64)
        ));
    };
    if record.key != grace_key(user, context) {
        return Err(format!(
            "the server claims a grace window of challenge {} for another login (user, service, \
             host, address or SSH key differ)",
            record.challenge
        ));
    }
    if !live(record, config.grace_secs, now) {
        return Err(format!(
            "the server claims a grace window of challenge {}, approved {} s ago, over this host's \
             grace_secs = {}",
            record.challenge,
            now.saturating_sub(record.at),
            config.grace_secs
        ));
    }
    Ok(())
}

/// The flow's step for a grace answer: lets the login in when [`check`] believes it, and
/// otherwise denies it as an untrustworthy answer. `line` formats the flow's log line for an
/// outcome and detail.
pub fn finish(
    config: &Config,
    user: &str,
    context: &Context,
    grant: &GraceGrant,
    line: &dyn Fn(&str, Option<&str>) -> String,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> PamCode {
    match check(config, user, context, grant, now_secs()) {
        Ok(()) => {
            let detail = format!("no push: grace of {} until {}", grant.of, grant.until);
            log.log(Level::Info, &line("grace", Some(&detail)));
            PamCode::Success
        }
        Err(why) => {
            log.log(Level::Error, &line("untrustworthy_answer", Some(&why)));
            let _ = conv.error("pushauth: the answer could not be verified");
            PamCode::AuthErr
        }
    }
}

/// The flow's step after a verified approval of a login that asked for grace: records it, so
/// that the next logins in the window are believed. A failure is logged; the login itself
/// stands (its approval was verified), later ones then take a push.
pub fn approved(
    config: &Config,
    user: &str,
    context: &Context,
    challenge: &str,
    line: &dyn Fn(&str, Option<&str>) -> String,
    log: &mut dyn Log,
) {
    if let Err(e) = remember(config, user, context, challenge, now_secs()) {
        log.log(
            Level::Warning,
            &line("grace_not_recorded", Some(&e.to_string())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ownership;
    use std::fs;
    use std::path::Path;

    fn config(dir: &Path, extra: &str) -> Config {
        let key = dir.join("api-key");
        fs::write(&key, "secret-key\n").unwrap();
        fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let conf = dir.join("pam_push.conf");
        fs::write(
            &conf,
            format!(
                "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\nstate_dir = \"{}\"\n{extra}",
                key.display(),
                dir.join("state").display()
            ),
        )
        .unwrap();
        let me = Ownership {
            uid: pushauth_testkit::euid(),
        };
        Config::load(&conf, me).unwrap()
    }

    fn ssh(rhost: &str) -> Context {
        [("service", "sshd"), ("host", "web01"), ("rhost", rhost)]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn grant(of: &str) -> GraceGrant {
        GraceGrant {
            of: of.into(),
            until: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn issue12_config_keys() {
        let dir = tempfile::tempdir().unwrap();
        let off = config(dir.path(), "");
        assert_eq!(
            (off.grace_secs, off.sudo_grace, off.grace_without_key),
            (0, false, false)
        );
        let mut keyed = ssh("192.0.2.7");
        keyed.insert("ssh_key".into(), "ssh-ed25519 SHA256:k1".into());
        assert_eq!(ask(&off, "sshd", &keyed), None);
        let on = config(dir.path(), "grace_secs = 300\n");
        assert_eq!(ask(&on, "sshd", &keyed), Some(300));
        assert_eq!(
            ask(&on, "sudo", &keyed),
            None,
            "sudo never takes grace by default"
        );
        assert_eq!(ask(&on, "sudo-i", &keyed), None);
        let sudo = config(dir.path(), "grace_secs = 300\nsudo_grace = true\n");
        assert_eq!(ask(&sudo, "sudo", &keyed), Some(300));
        let key = dir.path().join("api-key");
        for bad in [
            "grace_secs = 3601\n",
            "grace_secs = -1\n",
            "grace_secs = \"60\"\n",
        ] {
            let conf = dir.path().join("bad.conf");
            fs::write(
                &conf,
                format!(
                    "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n{bad}",
                    key.display()
                ),
            )
            .unwrap();
            let me = Ownership {
                uid: pushauth_testkit::euid(),
            };
            let err = Config::load(&conf, me).unwrap_err().to_string();
            assert!(err.contains("grace_secs"), "{bad}: {err}");
        }
    }

    #[test]
    fn issue12_only_a_recorded_approval_of_the_same_login_is_believed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "grace_secs = 60\n");
        let now = 1_800_000_000;
        let here = ssh("192.0.2.7");
        // Nothing recorded: a forged window is refused.
        let err = check(&cfg, "alice", &here, &grant("chal-1"), now).unwrap_err();
        assert!(err.contains("never saw approved"), "{err}");
        remember(&cfg, "alice", &here, "chal-1", now).unwrap();
        check(&cfg, "alice", &here, &grant("chal-1"), now + 60).unwrap();
        // Another challenge, another login, another user, or too late: refused.
        assert!(check(&cfg, "alice", &here, &grant("chal-2"), now).is_err());
        let err = check(&cfg, "alice", &ssh("192.0.2.8"), &grant("chal-1"), now).unwrap_err();
        assert!(err.contains("another login"), "{err}");
        assert!(check(&cfg, "bob", &here, &grant("chal-1"), now).is_err());
        let err = check(&cfg, "alice", &here, &grant("chal-1"), now + 61).unwrap_err();
        assert!(err.contains("grace_secs = 60"), "{err}");
        // A record from the future (the clock was set back) is not believed either.
        assert!(check(&cfg, "alice", &here, &grant("chal-1"), now - 61).is_err());
        // With grace off on this host, nothing is believed.
        let off = config(dir.path(), "");
        assert!(check(&off, "alice", &here, &grant("chal-1"), now).is_err());
    }

    #[test]
    fn issue12_the_record_is_private_bounded_and_drops_old_approvals() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "grace_secs = 60\n");
        let now = 1_800_000_000;
        remember(&cfg, "kc/alice", &ssh("192.0.2.1"), "old", now - 100).unwrap();
        for i in 0..40u64 {
            remember(
                &cfg,
                "kc/alice",
                &ssh("192.0.2.1"),
                &format!("c{i}"),
                now + i,
            )
            .unwrap();
        }
        let path = dir.path().join("state/grace/kc%2Falice");
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), MAX_RECORDS);
        assert!(!text.contains(" old "), "{text}");
        assert!(text.starts_with("v1 c39 "), "{text}");
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // A file others may write is not believed.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let err = check(&cfg, "kc/alice", &ssh("192.0.2.1"), &grant("c39"), now + 39).unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
        // Garbage lines prove nothing.
        assert!(parse(b"v1 x\nv2 a b c\nv1 c1 00 1\n").is_empty());
    }
}

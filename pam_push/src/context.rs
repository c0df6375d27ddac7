//! The context sent with a challenge (what the person approves), built from PAM items, the PAM
//! environment and the host: service, host, rhost, tty, the SSH key that already authenticated
//! (`SSH_AUTH_INFO_0`, sshd with `ExposeAuthInfo yes`) and the sudo command.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use pushauth_proto::context::{validate_context, MAX_CONTEXT_VALUE_BYTES};
use pushauth_proto::Context;
use sha2::{Digest, Sha256};

/// What the module knows about this login, gathered by the caller.
#[derive(Debug, Default, Clone)]
pub struct LoginFacts {
    /// The PAM service (`sshd`, `sudo`, …).
    pub service: Option<String>,
    /// This machine's host name.
    pub host: Option<String>,
    /// The remote host PAM reports (`PAM_RHOST`), if any.
    pub rhost: Option<String>,
    /// The terminal (`PAM_TTY`), if any.
    pub tty: Option<String>,
    /// `SSH_AUTH_INFO_0` from the PAM environment.
    pub ssh_auth_info: Option<String>,
    /// The program's argv (used for the sudo command).
    pub argv: Option<Vec<String>>,
}

/// A value the device may print: hidden characters ([`pushauth_proto::text::is_hidden`]:
/// controls, bidi, zero-width, unassigned…, which [`validate_context`] refuses) replaced by `?`,
/// bounded length.
pub fn clean_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_CONTEXT_VALUE_BYTES));
    for c in value.chars() {
        let c = if pushauth_proto::text::is_hidden(c) {
            '?'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_CONTEXT_VALUE_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// `ssh-ed25519 SHA256:…` for the first public key in `SSH_AUTH_INFO_0`
/// (lines like `publickey ssh-ed25519 AAAA…`), as `ssh-keygen -l` prints it.
pub fn ssh_key_fingerprint(auth_info: &str) -> Option<String> {
    auth_info.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next()? != "publickey" {
            return None;
        }
        let key_type = fields.next()?;
        let blob = STANDARD.decode(fields.next()?).ok()?;
        let digest = Sha256::digest(&blob);
        Some(format!(
            "{key_type} SHA256:{}",
            STANDARD_NO_PAD.encode(digest)
        ))
    })
}

/// sudo options that take a value in the next argument.
const SUDO_OPTIONS_WITH_VALUE: &[&str] = &[
    "-u",
    "-g",
    "-p",
    "-C",
    "-D",
    "-h",
    "-r",
    "-t",
    "-T",
    "-U",
    "-c",
    "--user",
    "--group",
    "--prompt",
    "--chdir",
    "--host",
    "--role",
    "--type",
    "--command-timeout",
    "--other-user",
    "--close-from",
    "--login-class",
];

/// The command sudo was asked to run: its argv after `sudo` and its options.
pub fn sudo_command(argv: &[String]) -> Option<String> {
    let mut args = argv.iter().skip(1).peekable();

    while let Some(arg) = args.peek() {
        if *arg == "--" {
            args.next();
            break;
        }
        if !arg.starts_with('-') {
            break;
        }
        let takes_value = sudo_option_takes_value(arg);
        args.next();
        if takes_value {
            args.next();
        }
    }
    let command: Vec<&str> = args.map(String::as_str).collect();
    if command.is_empty() {
        None
    } else {
        Some(command.join(" "))
    }
}

/// The account sudo was asked to run the command as (`-u NAME`, `-uNAME`, `--user NAME`,
/// `--user=NAME`; root when none), read up to the command as [`sudo_command`] does.
pub fn sudo_target_user(argv: &[String]) -> String {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" || !arg.starts_with('-') {
            break;
        }
        if arg == "-u" || arg == "--user" {
            if let Some(user) = args.next() {
                return user.clone();
            }
        } else if let Some(user) = arg.strip_prefix("--user=") {
            return user.to_owned();
        } else if let Some(user) = arg.strip_prefix("-u").filter(|u| !u.is_empty()) {
            return user.to_owned();
        } else if sudo_option_takes_value(arg) {
            args.next();
        }
    }
    "root".to_owned()
}

fn sudo_option_takes_value(arg: &str) -> bool {
    SUDO_OPTIONS_WITH_VALUE.contains(&arg)
}

/// Builds the challenge context. Always valid for [`validate_context`].
pub fn build_context(facts: &LoginFacts) -> Context {
    let mut context = Context::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) {
            context.insert(key.to_owned(), clean_value(value));
        }
    };
    put("service", facts.service.as_deref());
    put("host", facts.host.as_deref());
    put("rhost", facts.rhost.as_deref());
    put("tty", facts.tty.as_deref());
    let fingerprint = facts.ssh_auth_info.as_deref().and_then(ssh_key_fingerprint);
    put("ssh_key", fingerprint.as_deref());
    let is_sudo = facts
        .service
        .as_deref()
        .is_some_and(|s| s == "sudo" || s == "sudo-i" || s.starts_with("sudo"));
    let command = facts
        .argv
        .as_deref()
        .filter(|_| is_sudo)
        .and_then(sudo_command);
    put("command", command.as_deref());
    debug_assert!(validate_context(&context).is_ok());
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ssh_context() {
        let blob = [7u8; 51];
        let info = format!("publickey ssh-ed25519 {}\n", STANDARD.encode(blob));
        let facts = LoginFacts {
            service: Some("sshd".into()),
            host: Some("web01".into()),
            rhost: Some("2001:db8::7".into()),
            tty: Some("ssh".into()),
            ssh_auth_info: Some(info),
            argv: Some(vec!["sshd: alice [priv]".into()]),
        };
        let ctx = build_context(&facts);
        assert_eq!(ctx["service"], "sshd");
        assert_eq!(ctx["host"], "web01");
        assert_eq!(ctx["rhost"], "2001:db8::7");
        assert_eq!(ctx["tty"], "ssh");
        let expected = format!(
            "ssh-ed25519 SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(blob))
        );
        assert_eq!(ctx["ssh_key"], expected);
        assert!(!ctx.contains_key("command"), "not sudo");
        assert!(validate_context(&ctx).is_ok());
    }

    #[test]
    fn sudo_context_and_hostile_values() {
        let facts = LoginFacts {
            service: Some("sudo".into()),
            rhost: Some("192.0.2.1\u{1b}[2J".into()),
            argv: Some(
                ["sudo", "-u", "root", "--", "rm", "-rf", "/tmp/x\ny"]
                    .map(String::from)
                    .to_vec(),
            ),
            ..LoginFacts::default()
        };
        let ctx = build_context(&facts);
        assert_eq!(ctx["command"], "rm -rf /tmp/x?y");
        assert_eq!(ctx["rhost"], "192.0.2.1?[2J");
        assert!(!ctx.contains_key("host"));
        assert!(validate_context(&ctx).is_ok());
        let long = LoginFacts {
            service: Some("x".repeat(5000)),
            ..LoginFacts::default()
        };
        assert!(validate_context(&build_context(&long)).is_ok());
    }

    #[test]
    fn sudo_argv_parsing() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(sudo_command(&argv(&["sudo", "id"])).as_deref(), Some("id"));
        assert_eq!(
            sudo_command(&argv(&["sudo", "-n", "-u", "bob", "ls", "-l"])).as_deref(),
            Some("ls -l")
        );
        assert_eq!(sudo_command(&argv(&["sudo", "-v"])), None);
        assert_eq!(sudo_target_user(&argv(&["sudo", "id"])), "root");
        assert_eq!(sudo_target_user(&argv(&["sudo", "-u", "www", "id"])), "www");
        assert_eq!(sudo_target_user(&argv(&["sudo", "-uwww", "id"])), "www");
        assert_eq!(
            sudo_target_user(&argv(&["sudo", "--user=www", "id"])),
            "www"
        );
        assert_eq!(
            sudo_target_user(&argv(&["sudo", "-g", "x", "id", "-u", "y"])),
            "root"
        );
    }

    #[test]
    fn fingerprints() {
        assert_eq!(ssh_key_fingerprint("password\n"), None);
        assert_eq!(ssh_key_fingerprint("publickey ssh-ed25519 !!!"), None);
        let info = format!(
            "keyboard-interactive\npublickey ssh-rsa {}\n",
            STANDARD.encode([1u8; 10])
        );
        assert!(ssh_key_fingerprint(&info)
            .unwrap()
            .starts_with("ssh-rsa SHA256:"));
    }
}

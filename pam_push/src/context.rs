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

/// sudo's short options that take a value (sudo 1.9's `getopt_long` string
/// `+Aa:BbC:c:D:Eeg:Hh::iKklNnPp:R:r:SsT:t:U:u:Vv`); `-h` takes one optionally (below).
const SUDO_SHORT_WITH_VALUE: &str = "aCcDgpRrTtUu";

/// How a sudo long option takes a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LongValue {
    No,
    Required,
    /// Only as `--name=value` (`--preserve-env`).
    Optional,
}

/// sudo 1.9's long options, each with its short letter (`'\0'` for `--host`).
const SUDO_LONG: &[(&str, LongValue, char)] = &[
    ("askpass", LongValue::No, 'A'),
    ("auth-type", LongValue::Required, 'a'),
    ("background", LongValue::No, 'b'),
    ("bell", LongValue::No, 'B'),
    ("close-from", LongValue::Required, 'C'),
    ("login-class", LongValue::Required, 'c'),
    ("chdir", LongValue::Required, 'D'),
    ("preserve-env", LongValue::Optional, 'E'),
    ("edit", LongValue::No, 'e'),
    ("group", LongValue::Required, 'g'),
    ("set-home", LongValue::No, 'H'),
    ("help", LongValue::No, 'h'),
    ("host", LongValue::Required, '\0'),
    ("login", LongValue::No, 'i'),
    ("remove-timestamp", LongValue::No, 'K'),
    ("reset-timestamp", LongValue::No, 'k'),
    ("list", LongValue::No, 'l'),
    ("non-interactive", LongValue::No, 'n'),
    ("preserve-groups", LongValue::No, 'P'),
    ("prompt", LongValue::Required, 'p'),
    ("chroot", LongValue::Required, 'R'),
    ("role", LongValue::Required, 'r'),
    ("stdin", LongValue::No, 'S'),
    ("shell", LongValue::No, 's'),
    ("type", LongValue::Required, 't'),
    ("command-timeout", LongValue::Required, 'T'),
    ("other-user", LongValue::Required, 'U'),
    ("user", LongValue::Required, 'u'),
    ("version", LongValue::No, 'V'),
    ("validate", LongValue::No, 'v'),
];

/// A sudo command line as sudo itself reads it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SudoArgs {
    /// The account to run as (`-u`/`--user`; sudo refuses it twice), `None` for root.
    pub target: Option<String>,
    /// `sudoedit`, `-e` or `--edit`: the arguments are files to edit.
    pub edit: bool,
    /// What follows the options (`VAR=value` assignments included).
    pub args: Vec<String>,
}

/// Reads sudo's argv as sudo 1.9 does (`getopt_long` stopping at the first non-option):
/// clustered short options (`-ku root` is `-k -u root`), a value glued on (`-uroot`) or in the
/// next argument, even an empty one, unambiguous abbreviations of long options (`--us root`),
/// `--name=value`, `--`. `-h` takes a glued value or, like sudo, a next argument that is no
/// option. A command line sudo itself would refuse (an unknown or ambiguous option) reads as
/// far as it goes: sudo asks nobody for it.
pub fn parse_sudo(argv: &[String]) -> SudoArgs {
    let program = argv.first().map_or("", String::as_str);
    let mut parsed = SudoArgs {
        edit: program.rsplit('/').next() == Some("sudoedit"),
        ..SudoArgs::default()
    };
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        i += 1;
        if let Some(long) = arg.strip_prefix("--") {
            let (name, glued) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let exact = SUDO_LONG.iter().find(|(full, _, _)| *full == name);
            let mut prefixed = SUDO_LONG
                .iter()
                .filter(|(full, _, _)| full.starts_with(name));
            let option = exact.or_else(|| match (prefixed.next(), prefixed.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            });
            let Some(&(_, kind, letter)) = option else {
                break;
            };
            let value = match (kind, glued) {
                (LongValue::Required, None) => {
                    i += 1;
                    argv.get(i - 1).cloned()
                }
                (_, glued) => glued.map(str::to_owned),
            };
            parsed.apply(letter, value);
            continue;
        }
        let cluster: Vec<char> = arg.chars().skip(1).collect();
        for (at, &letter) in cluster.iter().enumerate() {
            let rest: String = cluster.get(at + 1..).unwrap_or_default().iter().collect();
            if SUDO_SHORT_WITH_VALUE.contains(letter) {
                let value = if rest.is_empty() {
                    i += 1;
                    argv.get(i - 1).cloned()
                } else {
                    Some(rest)
                };
                parsed.apply(letter, value);
                break;
            }
            if letter == 'h' {
                if !rest.is_empty() {
                    break;
                }
                if argv.get(i).is_some_and(|next| !next.starts_with('-')) {
                    i += 1;
                }
                break;
            }
            parsed.apply(letter, None);
        }
    }
    parsed.args = argv.get(i..).unwrap_or_default().to_vec();
    parsed
}

impl SudoArgs {
    fn apply(&mut self, letter: char, value: Option<String>) {
        match letter {
            'u' => self.target = value,
            'e' => self.edit = true,
            _ => {}
        }
    }

    /// The account to run as: `-u NAME`, `-uNAME`, `--user NAME`, `--user=NAME` (or an
    /// abbreviation) before the command; root when none.
    pub fn target_user(&self) -> String {
        self.target.clone().unwrap_or_else(|| "root".to_owned())
    }

    /// The command as the person and the rules see it: the arguments after the options
    /// (`sudoedit FILE…` for an edit); `None` without any (`sudo -i`, `sudo -v`).
    pub fn command(&self) -> Option<String> {
        if self.args.is_empty() {
            return None;
        }
        let joined = self.args.join(" ");
        Some(if self.edit {
            format!("sudoedit {joined}")
        } else {
            joined
        })
    }
}

/// The command sudo was asked to run ([`parse_sudo`], [`SudoArgs::command`]).
pub fn sudo_command(argv: &[String]) -> Option<String> {
    parse_sudo(argv).command()
}

/// The sudo command line of this login, read by [`parse_sudo`], when the service is sudo's
/// (`sudo`, `sudo-i`, …); `None` for any other service (their argv is no sudo command line).
pub fn sudo_args(facts: &LoginFacts) -> Option<SudoArgs> {
    let is_sudo = facts
        .service
        .as_deref()
        .is_some_and(|s| s.starts_with("sudo"));
    facts.argv.as_deref().filter(|_| is_sudo).map(parse_sudo)
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
    let command = sudo_args(facts).and_then(|sudo| sudo.command());
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
        assert_eq!(parse_sudo(&argv(&["sudo", "id"])).target_user(), "root");
        assert_eq!(
            parse_sudo(&argv(&["sudo", "-u", "www", "id"])).target_user(),
            "www"
        );
        assert_eq!(
            parse_sudo(&argv(&["sudo", "-uwww", "id"])).target_user(),
            "www"
        );
        assert_eq!(
            parse_sudo(&argv(&["sudo", "--user=www", "id"])).target_user(),
            "www"
        );
        assert_eq!(
            parse_sudo(&argv(&["sudo", "-g", "x", "id", "-u", "y"])).target_user(),
            "root"
        );
    }

    /// Issue 14 attack review: sudo's argv read as sudo 1.9.13 reads it (each case checked
    /// against the real sudo: which command ran, as whom).
    #[test]
    fn issue14_sudo_argv_as_sudo_reads_it() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], Option<&str>, &str)] = &[
            (&["sudo", "-ku", "www", "ls"], Some("ls"), "www"),
            (&["sudo", "-knu", "www", "ls"], Some("ls"), "www"),
            (&["sudo", "-Hu", "www", "ls"], Some("ls"), "www"),
            (&["sudo", "-kuwww", "ls"], Some("ls"), "www"),
            (&["sudo", "--us", "www", "ls"], Some("ls"), "www"),
            (&["sudo", "--user", "www", "ls"], Some("ls"), "www"),
            (&["sudo", "--use=www", "ls"], Some("ls"), "www"),
            (&["sudo", "-p", "", "ls"], Some("ls"), "root"),
            (&["sudo", "-kp", "x", "ls"], Some("ls"), "root"),
            (&["sudo", "--prom", "x", "ls"], Some("ls"), "root"),
            (&["sudo", "-R", "/", "ls"], Some("ls"), "root"),
            (&["sudo", "--chr", "/", "ls"], Some("ls"), "root"),
            (&["sudo", "-D/tmp", "ls"], Some("ls"), "root"),
            (&["sudo", "--preserve-env", "ls"], Some("ls"), "root"),
            (&["sudo", "--preserve-env=PATH", "ls"], Some("ls"), "root"),
            (&["sudo", "-h", "host", "-l", "ls"], Some("ls"), "root"),
            (&["sudo", "-hhost", "ls"], Some("ls"), "root"),
            (&["sudo", "-i"], None, "root"),
            (&["sudo", "-s", "ls", "-l"], Some("ls -l"), "root"),
            (&["sudo", "FOO=1", "ls"], Some("FOO=1 ls"), "root"),
            (&["sudo", "--", "-u", "x"], Some("-u x"), "root"),
            (&["sudo", "-", "x"], Some("- x"), "root"),
            (
                &["sudoedit", "/etc/shadow"],
                Some("sudoedit /etc/shadow"),
                "root",
            ),
            (
                &["/usr/bin/sudoedit", "-u", "www", "/f"],
                Some("sudoedit /f"),
                "www",
            ),
            (&["sudo", "-e", "/f", "/g"], Some("sudoedit /f /g"), "root"),
            (&["sudo", "--ed", "/f"], Some("sudoedit /f"), "root"),
            (&["sudo", "-ue", "ls"], Some("ls"), "e"),
        ];
        for (args, command, target) in cases {
            let args = argv(args);
            assert_eq!(sudo_command(&args).as_deref(), *command, "{args:?}");
            assert_eq!(parse_sudo(&args).target_user(), *target, "{args:?}");
        }
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

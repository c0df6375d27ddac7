//! What the person sees, and how: inside a prompt (sshd) or as messages (sudo and the rest).
//!
//! OpenSSH before 10.3 holds an informational PAM message in keyboard-interactive back until the
//! next prompt (bug 2876), so under sshd the code must be part of a prompt, or the person would
//! only see it after the wait. Other programs show messages at once, so there the module shows
//! the code and waits without asking anything.

use std::str::FromStr;

use pushauth_proto::challenge::group_code;

/// The `prompt` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptMode {
    /// Prompt under sshd, messages elsewhere.
    Auto,
    /// Always show the code inside a prompt and wait for Enter.
    Always,
    /// Never prompt: show messages and wait.
    Never,
}

impl FromStr for PromptMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "prompt = {other:?} must be \"auto\", \"always\" or \"never\""
            )),
        }
    }
}

/// Whether this service gets the code inside a prompt.
pub fn use_prompt(mode: PromptMode, service: &str) -> bool {
    match mode {
        PromptMode::Always => true,
        PromptMode::Never => false,
        // Any sshd service name ("sshd", "sshd-push"…), since sshd is the program with the bug.
        PromptMode::Auto => service == "sshd" || service.starts_with("sshd"),
    }
}

/// The longest device name shown, in characters (longer ones are cut with a visible mark).
const MAX_NAME_CHARS: usize = 64;

/// Whether a code from the server may be shown: 2 to 8 ASCII digits (DESIGN.md), so it can
/// carry no terminal escape or bidi control.
pub fn code_is_valid(code: &str) -> bool {
    (2..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
}

/// "Pixel 7", "Pixel 7 or laptop", "Pixel 7, laptop or tablet". Names come from the server:
/// hidden characters (controls, escapes, bidi and format characters) are shown as visible
/// `\u{…}` escapes by `pushauth_proto::text::for_terminal_cut`, never passed to the terminal.
pub fn device_names(names: &[String]) -> String {
    let clean: Vec<String> = names
        .iter()
        .map(|n| {
            if n.trim().is_empty() {
                "your device".to_owned()
            } else {
                pushauth_proto::text::for_terminal_cut(n, MAX_NAME_CHARS)
            }
        })
        .collect();
    match clean.as_slice() {
        [] => "your device".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The prompt text: the code and what to do, in one line. The code is grouped for reading
/// (`482 913`, [`pushauth_proto::challenge::group_code`]); devices accept it with or without
/// the space.
pub fn prompt_text(devices: &str, code: Option<&str>) -> String {
    match code {
        Some(code) => format!(
            "Approve on {devices}: type {} on your device, then press Enter (c to cancel): ",
            group_code(code)
        ),
        None => format!("Approve on {devices}, then press Enter (c to cancel): "),
    }
}

/// [`prompt_text`] that also says a backup code may be typed instead (issue 12), for a user
/// this host takes backup codes from.
pub fn with_backup_hint(prompt: &str) -> String {
    prompt.replace("(c to cancel): ", "(or type a backup code; c to cancel): ")
}

/// The message shown where messages appear at once (the code grouped as in [`prompt_text`]).
pub fn info_text(devices: &str, code: Option<&str>, timeout_secs: u64) -> String {
    match code {
        Some(code) => format!(
            "Approve on {devices}: type {} on your device. Waiting up to {timeout_secs} s…",
            group_code(code)
        ),
        None => format!("Approve the login on {devices}. Waiting up to {timeout_secs} s…"),
    }
}

/// What the person typed at the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptAnswer {
    /// Enter (or anything else): "I have answered on my device", wait for the outcome.
    Continue,
    /// `c` or `cancel`: abandon the login.
    Cancel,
}

/// Reads the answer to the prompt.
pub fn parse_answer(answer: &str) -> PromptAnswer {
    match answer.trim().to_ascii_lowercase().as_str() {
        "c" | "cancel" => PromptAnswer::Cancel,
        _ => PromptAnswer::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_choice() {
        assert!(use_prompt(PromptMode::Auto, "sshd"));
        assert!(use_prompt(PromptMode::Auto, "sshd-test"));
        assert!(!use_prompt(PromptMode::Auto, "sudo"));
        assert!(!use_prompt(PromptMode::Auto, "login"));
        assert!(use_prompt(PromptMode::Always, "sudo"));
        assert!(!use_prompt(PromptMode::Never, "sshd"));
        assert_eq!("never".parse(), Ok(PromptMode::Never));
        assert!("yes".parse::<PromptMode>().is_err());
    }

    #[test]
    fn texts() {
        let one = device_names(&["Pixel 7".into()]);
        assert_eq!(
            prompt_text(&one, Some("42")),
            "Approve on Pixel 7: type 42 on your device, then press Enter (c to cancel): "
        );
        let three = device_names(&["a".into(), "b\u{1b}[2J".into(), "c".into()]);
        assert_eq!(three, "a, b\\u{001B}[2J or c");
        assert_eq!(device_names(&[]), "your device");
        assert!(info_text("Pixel 7", Some("42"), 60).contains("type 42"));
        // Six digits (the default) read in two groups; a leading zero stays.
        assert_eq!(
            prompt_text(&one, Some("048213")),
            "Approve on Pixel 7: type 048 213 on your device, then press Enter (c to cancel): "
        );
        assert!(info_text("Pixel 7", Some("48213571"), 60).contains("type 4821 3571 on"));
        assert!(!prompt_text("x", None).contains("type"));
        assert_eq!(
            with_backup_hint(&prompt_text(&one, Some("42"))),
            "Approve on Pixel 7: type 42 on your device, then press Enter (or type a backup \
             code; c to cancel): "
        );
    }

    #[test]
    fn issue9_item14_server_text_cannot_reach_the_terminal() {
        let shown = device_names(&["Pixel\u{1b}[2J\u{202E}7".into()]);
        assert_eq!(shown, "Pixel\\u{001B}[2J\\u{202E}7");
        assert!(!shown.chars().any(pushauth_proto::text::is_hidden));
        let long = device_names(&["x".repeat(500)]);
        assert!(long.contains("more characters not shown"), "{long}");
        for good in ["42", "10", "12345678"] {
            assert!(code_is_valid(good), "{good}");
        }
        for bad in ["4\u{202E}2", "4", "123456789", "4a", "", "٤٢"] {
            assert!(!code_is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn answers() {
        assert_eq!(parse_answer(""), PromptAnswer::Continue);
        assert_eq!(parse_answer("\n"), PromptAnswer::Continue);
        assert_eq!(parse_answer("ok"), PromptAnswer::Continue);
        assert_eq!(parse_answer("c"), PromptAnswer::Cancel);
        assert_eq!(parse_answer(" Cancel "), PromptAnswer::Cancel);
    }
}

//! Who must approve a login or a command (issue 14): `approval` and `approvers` at the top of
//! `pam_push.conf`, narrowed per service, by the requester's groups and by the sudo command with
//! `[[approval_rules]]` tables (the first rule that matches decides; none: the top-level keys).

use std::str::FromStr;

use serde::Deserialize;

use crate::policy::{glob, push_required_by_gid, GroupId, GroupRule, UserGroup};

/// Most approvers one request may reach: the relying-party API waits on at most this many
/// challenges at once ([`pushauth_proto::wire::MAX_WAIT_IDS`]).
pub const MAX_APPROVERS: usize = pushauth_proto::wire::MAX_WAIT_IDS;

/// Who must approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalMode {
    /// `self`: the person logging in approves on their own device (the default).
    SelfOnly,
    /// `other`: one of the approvers approves on theirs; the person's own device is not asked.
    Other,
    /// `self_and_other`: the person's own push first, then one of the approvers.
    SelfAndOther,
}

impl ApprovalMode {
    /// Whether the person's own push is part of it.
    pub fn includes_self(self) -> bool {
        matches!(self, Self::SelfOnly | Self::SelfAndOther)
    }

    /// Whether an approver is asked.
    pub fn includes_other(self) -> bool {
        matches!(self, Self::Other | Self::SelfAndOther)
    }
}

impl FromStr for ApprovalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "self" => Ok(Self::SelfOnly),
            "other" => Ok(Self::Other),
            "self_and_other" => Ok(Self::SelfAndOther),
            other => Err(format!(
                "approval = {other:?} must be \"self\", \"other\" or \"self_and_other\""
            )),
        }
    }
}

/// One `approvers` entry: a pushauth user, or `%group`, the members of a local group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    /// A pushauth user name (after `user_map`, as the server knows it).
    User(String),
    /// A local group: its members as the group database lists them, each through `user_map`.
    Group(String),
}

impl Approver {
    fn parse(text: &str) -> Result<Approver, String> {
        let bad = || {
            format!("approvers entry {text:?} must be a user name or %group, without spaces or control characters")
        };
        let (group, name) = match text.strip_prefix('%') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || pushauth_proto::text::is_hidden(c))
        {
            return Err(bad());
        }
        Ok(if group {
            Approver::Group(name.to_owned())
        } else {
            Approver::User(name.to_owned())
        })
    }
}

/// An `[[approval_rules]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    services: Option<Vec<String>>,
    groups: Option<Vec<String>>,
    commands: Option<Vec<String>>,
    approval: String,
    approvers: Option<Vec<String>>,
}

/// One rule: where it applies (every list empty or absent: everywhere) and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// PAM service globs (`sudo`, `sshd`); empty: every service.
    pub services: Vec<String>,
    /// The requester's groups, as `groups` patterns; empty: everyone.
    pub groups: Vec<GroupRule>,
    /// Globs over the sudo command (see [`command_matches`]); empty: any command, or none.
    pub commands: Vec<String>,
    /// What it asks.
    pub mode: ApprovalMode,
    /// Who may approve (its own list, else the top-level `approvers`).
    pub approvers: Vec<Approver>,
}

/// The approval settings of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// `approval` at the top level: what applies where no rule matches.
    pub mode: ApprovalMode,
    /// `approvers` at the top level.
    pub approvers: Vec<Approver>,
    /// `[[approval_rules]]`, in order.
    pub rules: Vec<ApprovalRule>,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            mode: ApprovalMode::SelfOnly,
            approvers: Vec::new(),
            rules: Vec::new(),
        }
    }
}

fn parse_approvers(list: Option<Vec<String>>, at: &str) -> Result<Vec<Approver>, String> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_APPROVERS {
        return Err(format!(
            "{at}approvers lists {} entries; at most {MAX_APPROVERS}",
            list.len()
        ));
    }
    list.iter()
        .map(|a| Approver::parse(a.trim()).map_err(|e| format!("{at}{e}")))
        .collect()
}

fn check_globs(list: &[String], key: &str, at: &str) -> Result<(), String> {
    for item in list {
        if item.is_empty() || item.chars().any(|c| c.is_control()) {
            return Err(format!(
                "{at}{key} entry {item:?} must be a non-empty glob without control characters"
            ));
        }
    }
    Ok(())
}

impl ApprovalPolicy {
    /// Checks the written keys: every mode known; a mode that asks another person has at
    /// least one approver (its own or the top level's); entries well formed.
    ///
    /// # Errors
    /// A message naming the key (and the rule, counted from 1).
    pub(crate) fn parse(
        approval: Option<&str>,
        approvers: Option<Vec<String>>,
        rules: Option<Vec<RawRule>>,
    ) -> Result<ApprovalPolicy, String> {
        let mode = match approval {
            None => ApprovalMode::SelfOnly,
            Some(text) => text.parse()?,
        };
        let approvers = parse_approvers(approvers, "")?;
        if mode.includes_other() && approvers.is_empty() {
            return Err(
                "approval = \"other\" or \"self_and_other\" needs approvers = [\"user\", \"%group\"]"
                    .into(),
            );
        }
        let mut parsed = Vec::new();
        for (i, raw) in rules.unwrap_or_default().into_iter().enumerate() {
            let at = format!("approval_rules[{}]: ", i + 1);
            let mode: ApprovalMode = raw.approval.parse().map_err(|e| format!("{at}{e}"))?;
            let services = raw.services.unwrap_or_default();
            check_globs(&services, "services", &at)?;
            let commands = raw.commands.unwrap_or_default();
            check_globs(&commands, "commands", &at)?;
            let groups = raw
                .groups
                .unwrap_or_default()
                .iter()
                .map(|g| GroupRule::parse(g).map_err(|e| format!("{at}{e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let mut own = parse_approvers(raw.approvers, &at)?;
            if own.is_empty() {
                own.clone_from(&approvers);
            }
            if mode.includes_other() && own.is_empty() {
                return Err(format!(
                    "{at}approval = {:?} needs approvers (in the rule or at the top level)",
                    raw.approval
                ));
            }
            parsed.push(ApprovalRule {
                services,
                groups,
                commands,
                mode,
                approvers: own,
            });
        }
        Ok(ApprovalPolicy {
            mode,
            approvers,
            rules: parsed,
        })
    }

    /// What applies to a request: the first rule whose services, groups and commands all
    /// match, else the top-level keys. `groups` are the requester's (`None`: unknown or
    /// unreadable, which matches a group condition: the stricter reading is never skipped by a
    /// failed lookup unless a rule relaxes, see below).
    ///
    /// A rule that asks less than the top level (`self` where the top level says `other`) is
    /// taken only on a clean match: with the requester's groups unreadable, such a rule's group
    /// condition does not match.
    pub fn decide(
        &self,
        service: &str,
        groups: Option<&[UserGroup]>,
        command: Option<&str>,
        group_id: &dyn Fn(&str) -> GroupId,
    ) -> (ApprovalMode, &[Approver]) {
        for rule in &self.rules {
            if !rule.services.is_empty()
                && !rule.services.iter().any(|p| service_matches(p, service))
            {
                continue;
            }
            // A rule that asks an approver matches loosely (it then applies more often); one
            // that asks nobody else matches only the command as typed (a look-alike program
            // or an added `VAR=value` must not take it).
            let loose = rule.mode.includes_other();
            if !rule.commands.is_empty()
                && !command
                    .is_some_and(|c| rule.commands.iter().any(|p| command_matches(p, c, loose)))
            {
                continue;
            }
            if !rule.groups.is_empty() {
                let in_groups = match groups {
                    Some(groups) => push_required_by_gid(&rule.groups, groups, group_id),
                    // Unknown groups: a rule that asks more still applies; one that asks
                    // less does not.
                    None => rule.mode.includes_other() || !self.mode.includes_other(),
                };
                if !in_groups {
                    continue;
                }
            }
            return (rule.mode, &rule.approvers);
        }
        (self.mode, &self.approvers)
    }
}

/// PAM services that are another name of a service for the rules: `sudo -i` authenticates
/// through `sudo-i` and `su -` through `su-l` (Debian), and a rule for `sudo` or `su` that
/// `sudo -i COMMAND` or `su -` skipped would be a way around it.
const SERVICE_ALIASES: &[(&str, &str)] = &[("sudo-i", "sudo"), ("su-l", "su")];

/// Whether PAM service `service` matches glob `pattern`: as named, or as the service it is
/// another name of ([`SERVICE_ALIASES`]).
pub fn service_matches(pattern: &str, service: &str) -> bool {
    glob(pattern, service)
        || SERVICE_ALIASES
            .iter()
            .any(|(alias, of)| *alias == service && glob(pattern, of))
}

/// Whether sudo command `command` (as sudo read it: `systemctl restart nginx`, with a path,
/// `VAR=value` first, `sudoedit FILE`) matches glob `pattern`. Always tried as typed; when
/// `loose` (a rule that asks an approver), also with leading `VAR=value` assignments and the
/// program's directory dropped, so `systemctl restart *` matches
/// `/usr/bin/systemctl restart nginx` too. Patterns match what was typed, not what runs:
/// someone who may run a shell or `env` through sudo can phrase a command so that no pattern
/// matches, so a rule that must hold for every command names no commands.
pub fn command_matches(pattern: &str, command: &str, loose: bool) -> bool {
    if glob(pattern, command) {
        return true;
    }
    if !loose {
        return false;
    }
    let mut words = command.split(' ').peekable();
    let mut dropped = false;
    while words
        .peek()
        .is_some_and(|w| w.find('=').is_some_and(|at| at > 0))
    {
        words.next();
        dropped = true;
    }
    let Some(program) = words.next() else {
        return false;
    };
    let rest: Vec<&str> = words.collect();
    let base = match program.rsplit_once('/') {
        Some((_, base)) if !base.is_empty() => base,
        Some(_) => return false,
        None if dropped => program,
        None => return false,
    };
    let mut short = base.to_owned();
    for word in rest {
        short.push(' ');
        short.push_str(word);
    }
    glob(pattern, &short)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(services: &[&str], groups: &[&str], commands: &[&str], approval: &str) -> RawRule {
        let list =
            |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| (*s).to_owned()).collect());
        RawRule {
            services: list(services),
            groups: list(groups),
            commands: list(commands),
            approval: approval.into(),
            approvers: None,
        }
    }

    fn group(gid: u32, name: &str) -> UserGroup {
        UserGroup {
            gid,
            name: Some(name.into()),
        }
    }

    fn ids(name: &str) -> GroupId {
        match name {
            "ops" => GroupId::Found(10),
            _ => GroupId::NoSuchGroup,
        }
    }

    #[test]
    fn modes_and_approvers_are_checked() {
        assert_eq!(
            ApprovalPolicy::parse(None, None, None).unwrap(),
            ApprovalPolicy::default()
        );
        let e = ApprovalPolicy::parse(Some("other"), None, None).unwrap_err();
        assert!(e.contains("needs approvers"), "{e}");
        let e = ApprovalPolicy::parse(Some("others"), None, None).unwrap_err();
        assert!(
            e.contains("\"self\", \"other\" or \"self_and_other\""),
            "{e}"
        );
        let e =
            ApprovalPolicy::parse(Some("other"), Some(vec!["al ice".into()]), None).unwrap_err();
        assert!(e.contains("al ice"), "{e}");
        let e = ApprovalPolicy::parse(Some("other"), Some(vec!["%".into()]), None).unwrap_err();
        assert!(e.contains("%group"), "{e}");
        let many = (0..17).map(|i| format!("u{i}")).collect();
        let e = ApprovalPolicy::parse(Some("other"), Some(many), None).unwrap_err();
        assert!(e.contains("at most 16"), "{e}");
        let e = ApprovalPolicy::parse(None, None, Some(vec![raw(&["sudo"], &[], &[], "other")]))
            .unwrap_err();
        assert!(e.starts_with("approval_rules[1]: "), "{e}");
        let p = ApprovalPolicy::parse(
            Some("self"),
            Some(vec!["%sre-leads".into(), "alice".into()]),
            None,
        )
        .unwrap();
        assert_eq!(
            p.approvers,
            vec![
                Approver::Group("sre-leads".into()),
                Approver::User("alice".into())
            ]
        );
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = ApprovalPolicy::parse(
            Some("self"),
            Some(vec!["alice".into()]),
            Some(vec![
                raw(&["sudo"], &[], &["systemctl restart *"], "other"),
                raw(&["sudo"], &["ops"], &[], "self_and_other"),
            ]),
        )
        .unwrap();
        let ops = [group(10, "ops")];
        let (mode, approvers) = p.decide(
            "sudo",
            Some(&ops),
            Some("/usr/bin/systemctl restart nginx"),
            &ids,
        );
        assert_eq!(mode, ApprovalMode::Other);
        assert_eq!(approvers, [Approver::User("alice".into())]);
        let (mode, _) = p.decide("sudo", Some(&ops), Some("ls /root"), &ids);
        assert_eq!(mode, ApprovalMode::SelfAndOther);
        let (mode, _) = p.decide("sudo", Some(&[group(11, "dev")]), Some("ls"), &ids);
        assert_eq!(mode, ApprovalMode::SelfOnly);
        let (mode, _) = p.decide("sshd", Some(&ops), None, &ids);
        assert_eq!(mode, ApprovalMode::SelfOnly);
        // Unreadable groups: a rule asking more applies.
        let (mode, _) = p.decide("sudo", None, Some("ls"), &ids);
        assert_eq!(mode, ApprovalMode::SelfAndOther);
    }

    #[test]
    fn unreadable_groups_never_take_a_rule_that_asks_less() {
        let p = ApprovalPolicy::parse(
            Some("other"),
            Some(vec!["alice".into()]),
            Some(vec![raw(&[], &["ops"], &[], "self")]),
        )
        .unwrap();
        assert_eq!(p.decide("sudo", None, None, &ids).0, ApprovalMode::Other);
        let ops = [group(10, "ops")];
        assert_eq!(
            p.decide("sudo", Some(&ops), None, &ids).0,
            ApprovalMode::SelfOnly
        );
    }

    #[test]
    fn commands_match_as_typed_and_by_program_name() {
        for loose in [true, false] {
            assert!(command_matches(
                "systemctl restart *",
                "systemctl restart nginx",
                loose
            ));
            assert!(!command_matches(
                "systemctl restart *",
                "systemctl stop nginx",
                loose
            ));
            assert!(!command_matches("systemctl restart *", "/", loose));
        }
        assert!(command_matches(
            "systemctl restart *",
            "/usr/bin/systemctl restart nginx",
            true
        ));
        assert!(command_matches("systemctl", "/usr/bin/systemctl", true));
        assert!(command_matches(
            "systemctl restart *",
            "FOO=1 A=b=c /usr/bin/systemctl restart nginx",
            true
        ));
        assert!(command_matches(
            "systemctl restart *",
            "FOO=1 systemctl restart nginx",
            true
        ));
        assert!(!command_matches(
            "systemctl restart *",
            "=x systemctl restart nginx",
            true
        ));
    }

    /// Issue 14 attack review: an exemption (a rule that asks nobody else) matches only the
    /// command as typed: `/home/bob/ls`, `./ls` or `LD_PRELOAD=… ls` is not `ls`.
    #[test]
    fn issue14_an_exemption_matches_only_as_typed() {
        for typed in [
            "/home/bob/ls /root",
            "./ls /root",
            "LD_PRELOAD=/tmp/x.so ls /root",
        ] {
            assert!(command_matches("ls *", typed, true), "{typed}");
            assert!(!command_matches("ls *", typed, false), "{typed}");
        }
        let p = ApprovalPolicy::parse(
            Some("other"),
            Some(vec!["alice".into()]),
            Some(vec![raw(&["sudo"], &[], &["ls *"], "self")]),
        )
        .unwrap();
        let mode = |c: &str| p.decide("sudo", Some(&[]), Some(c), &ids).0;
        assert_eq!(mode("ls /root"), ApprovalMode::SelfOnly);
        assert_eq!(mode("/home/bob/ls /root"), ApprovalMode::Other);
    }

    /// Issue 14 attack review: `sudo -i` is PAM service `sudo-i` and `su -` is `su-l`; a rule
    /// for `sudo` or `su` holds for them too.
    #[test]
    fn issue14_sudo_i_and_su_l_are_sudo_and_su() {
        assert!(service_matches("sudo", "sudo-i"));
        assert!(service_matches("su", "su-l"));
        assert!(service_matches("sudo-i", "sudo-i"));
        assert!(!service_matches("sudo-i", "sudo"));
        assert!(!service_matches("sudo", "sshd"));
        assert!(!service_matches("su", "sudo-i"));
        let p = ApprovalPolicy::parse(
            None,
            None,
            Some(vec![RawRule {
                approvers: Some(vec!["alice".into()]),
                ..raw(&["sudo"], &[], &[], "other")
            }]),
        )
        .unwrap();
        assert_eq!(
            p.decide("sudo-i", Some(&[]), None, &ids).0,
            ApprovalMode::Other
        );
    }
}

//! Who must use push (group include/exclude patterns) and what the named failure policies do.

use std::str::FromStr;

/// One `groups` entry: a glob (`*`, `?`) over group names; a leading `!` excludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRule {
    pub exclude: bool,
    pub pattern: String,
}

impl GroupRule {
    pub fn parse(text: &str) -> Result<GroupRule, String> {
        let text = text.trim();
        let (exclude, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, text),
        };
        if pattern.is_empty() || pattern.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!(
                "group pattern {text:?} must be a group name or glob, optionally after '!'"
            ));
        }
        Ok(GroupRule {
            exclude,
            pattern: pattern.to_owned(),
        })
    }
}

/// Whether a user in `user_groups` must approve a push.
///
/// No rules: everyone. Any exclude rule that matches: no. Include rules present: only users in a
/// matching group. Only exclude rules: everyone not excluded.
pub fn push_required(rules: &[GroupRule], user_groups: &[String]) -> bool {
    if rules.is_empty() {
        return true;
    }
    let matches = |rule: &GroupRule| user_groups.iter().any(|g| glob(&rule.pattern, g));
    if rules.iter().filter(|r| r.exclude).any(matches) {
        return false;
    }
    let mut includes = rules.iter().filter(|r| !r.exclude).peekable();
    if includes.peek().is_none() {
        return true;
    }
    includes.any(matches)
}

/// Shell-style glob with `*` (any run) and `?` (one character), no classes.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// What to do for a user the server does not know, or who has no enrolled device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDevicePolicy {
    /// Refuse (`PAM_AUTH_ERR`). The default.
    Deny,
    /// Step aside (`PAM_IGNORE`): the rest of the stack decides (enrollment roll-outs).
    Ignore,
    /// Let in (`PAM_SUCCESS`) and log.
    Allow,
}

impl FromStr for NoDevicePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deny" => Ok(Self::Deny),
            "ignore" => Ok(Self::Ignore),
            "allow" => Ok(Self::Allow),
            other => Err(format!(
                "no_device = {other:?} must be \"deny\", \"ignore\" or \"allow\""
            )),
        }
    }
}

/// What to do when no pushauth server can be reached to start a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachablePolicy {
    /// Refuse (`PAM_AUTHINFO_UNAVAIL`). The default.
    Secure,
    /// Let in (`PAM_SUCCESS`) and log loudly.
    Safe,
}

impl FromStr for UnreachablePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "secure" => Ok(Self::Secure),
            "safe" => Ok(Self::Safe),
            other => Err(format!(
                "server_unreachable = {other:?} must be \"secure\" or \"safe\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<GroupRule> {
        list.iter().map(|r| GroupRule::parse(r).unwrap()).collect()
    }

    fn groups(list: &[&str]) -> Vec<String> {
        list.iter().map(|g| g.to_string()).collect()
    }

    #[test]
    fn globbing() {
        assert!(glob("admins", "admins"));
        assert!(!glob("admins", "admin"));
        assert!(glob("ops-*", "ops-"));
        assert!(glob("ops-*", "ops-web"));
        assert!(!glob("ops-*", "dev-ops"));
        assert!(glob("*admin*", "sysadmins"));
        assert!(glob("d?v", "dev"));
        assert!(!glob("d?v", "deev"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    #[test]
    fn who_must_push() {
        assert!(push_required(&[], &groups(&["users"])));
        assert!(push_required(&[], &[]));
        let r = rules(&["admins", "ops-*"]);
        assert!(push_required(&r, &groups(&["users", "admins"])));
        assert!(push_required(&r, &groups(&["ops-db"])));
        assert!(!push_required(&r, &groups(&["users"])));
        assert!(!push_required(&r, &[]));
        let r = rules(&["!svc-*"]);
        assert!(push_required(&r, &groups(&["users"])));
        assert!(!push_required(&r, &groups(&["users", "svc-backup"])));
        // Exclusion wins over inclusion.
        let r = rules(&["admins", "! contractors"]);
        assert!(!push_required(&r, &groups(&["admins", "contractors"])));
        assert!(push_required(&r, &groups(&["admins"])));
    }

    #[test]
    fn bad_rules_and_policies_are_refused() {
        for bad in ["", "!", "a b", "x\ty"] {
            assert!(GroupRule::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!("safe".parse(), Ok(UnreachablePolicy::Safe));
        assert!("open".parse::<UnreachablePolicy>().is_err());
        assert_eq!("ignore".parse(), Ok(NoDevicePolicy::Ignore));
        assert!("".parse::<NoDevicePolicy>().is_err());
    }
}

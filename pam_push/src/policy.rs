//! Who must use push (group include/exclude patterns) and what the named failure policies do.

use std::str::FromStr;

/// One `groups` entry: a glob (`*`, `?`) over group names; a leading `!` excludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRule {
    /// A leading `!`: members of matching groups are not asked.
    pub exclude: bool,
    /// The glob, without the `!`.
    pub pattern: String,
}

impl GroupRule {
    /// Parses one entry (`wheel`, `!svc-*`).
    ///
    /// # Errors
    /// A message naming the entry when it is empty or holds control characters or spaces.
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

/// One of the user's groups as the system reported it: its gid, and its name when the name
/// could be resolved (`None`: the group database failed for it, e.g. a group too large to read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroup {
    /// Numeric group id.
    pub gid: u32,
    /// Group name, when it resolved.
    pub name: Option<String>,
}

/// What the group database says about a group name used as a literal pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupId {
    /// The group exists with this gid.
    Found(u32),
    /// No such group.
    NoSuchGroup,
    /// The lookup failed (the group could not be read): the answer is unknown.
    Failed,
}

/// Whether a rule matches: yes, no, or unknown (a group could not be resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    Unknown,
}

impl GroupRule {
    /// A pattern with no `*` or `?` names one group: it is compared by gid.
    pub fn is_literal(&self) -> bool {
        !self.pattern.contains(['*', '?'])
    }

    fn matches(&self, groups: &[UserGroup], lookup: &dyn Fn(&str) -> GroupId) -> Match {
        let mut unknown = false;
        if self.is_literal() {
            match lookup(&self.pattern) {
                GroupId::Found(gid) => {
                    if groups.iter().any(|g| g.gid == gid) {
                        return Match::Yes;
                    }
                }
                GroupId::NoSuchGroup => {}
                GroupId::Failed => unknown = true,
            }
        }
        for group in groups {
            match &group.name {
                Some(name) if glob(&self.pattern, name) => return Match::Yes,
                Some(_) => {}
                // A glob cannot be decided against a group whose name is unknown; a literal
                // pattern that resolved to a gid already was.
                None if !self.is_literal() => unknown = true,
                None => {}
            }
        }
        if unknown {
            Match::Unknown
        } else {
            Match::No
        }
    }
}

/// Whether a user in `groups` must approve a push, looking literal patterns up by gid with
/// `lookup`. Fails towards "required": a group that cannot be resolved never takes a user out
/// of scope (it counts as matching an include rule and as not matching an exclude rule), so a
/// broken or oversized group database means a push, not a skipped push (issue 9 item 5).
pub fn push_required_by_gid(
    rules: &[GroupRule],
    groups: &[UserGroup],
    lookup: &dyn Fn(&str) -> GroupId,
) -> bool {
    if rules.is_empty() {
        return true;
    }
    if rules
        .iter()
        .filter(|r| r.exclude)
        .any(|r| r.matches(groups, lookup) == Match::Yes)
    {
        return false;
    }
    let mut includes = rules.iter().filter(|r| !r.exclude).peekable();
    if includes.peek().is_none() {
        return true;
    }
    includes.any(|r| r.matches(groups, lookup) != Match::No)
}

/// How the PAM user name becomes the pushauth user name, the local account whose groups are
/// checked and the pinned-key file name (issue 9 item 10), so that `Alice`, `alice@CORP` and
/// `CORP\alice` cannot be three users of which only one has pinned keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMap {
    /// The name as PAM gives it. The default.
    AsIs,
    /// Lower-cased (Unicode lower case).
    Lowercase,
    /// `alice@CORP` and `CORP\alice` become `alice`, and the result is lower-cased: domain
    /// account names are case-insensitive, so stripping the domain without folding the case
    /// would leave `Alice` and `alice` apart.
    StripDomain,
}

impl FromStr for UserMap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "as_is" => Ok(Self::AsIs),
            "lowercase" => Ok(Self::Lowercase),
            "strip_domain" => Ok(Self::StripDomain),
            other => Err(format!(
                "user_map = {other:?} must be \"as_is\", \"lowercase\" or \"strip_domain\""
            )),
        }
    }
}

impl UserMap {
    /// The canonical user name, or why the name cannot be used (empty after mapping, a domain
    /// part on both sides, hidden characters).
    pub fn apply(self, user: &str) -> Result<String, String> {
        if let Some(c) = user.chars().find(|&c| pushauth_proto::text::is_hidden(c)) {
            return Err(format!(
                "user name holds a hidden character U+{:04X}",
                u32::from(c)
            ));
        }
        let mapped = match self {
            UserMap::AsIs => user.to_owned(),
            UserMap::Lowercase => user.to_lowercase(),
            UserMap::StripDomain => {
                let name = match (user.rsplit_once('\\'), user.split_once('@')) {
                    (Some(_), Some(_)) => {
                        return Err("user name has both DOMAIN\\ and @domain parts".into())
                    }
                    (Some((_, name)), None) => name,
                    (None, Some((name, _))) => name,
                    (None, None) => user,
                };
                name.to_lowercase()
            }
        };
        if mapped.trim().is_empty() {
            return Err("user name is empty after user_map".into());
        }
        // The server's rule for user names (length, nothing hidden), so a name it would refuse
        // is refused here, before any push.
        pushauth_proto::names::check_user(&mapped).map_err(|e| e.to_string())?;
        Ok(mapped)
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
    /// Ask for the device's offline code and check it against this host's cache (issue 12,
    /// [`crate::offline`]); no cache or no valid code: refuse.
    Offline,
}

impl FromStr for UnreachablePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "secure" => Ok(Self::Secure),
            "safe" => Ok(Self::Safe),
            "offline" => Ok(Self::Offline),
            other => Err(format!(
                "server_unreachable = {other:?} must be \"secure\", \"safe\" or \"offline\""
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

    fn lookup(name: &str) -> GroupId {
        match name {
            "staff" => GroupId::Found(50),
            "admins" => GroupId::Found(60),
            "broken" => GroupId::Failed,
            _ => GroupId::NoSuchGroup,
        }
    }

    #[test]
    fn issue9_item5_unresolvable_groups_mean_push_required() {
        let unresolved = [UserGroup {
            gid: 50,
            name: None,
        }];
        // The literal "staff" is compared by gid: the unreadable group still matches.
        assert!(push_required_by_gid(
            &rules(&["staff"]),
            &unresolved,
            &lookup
        ));
        // A glob cannot be decided against an unknown name: push required.
        assert!(push_required_by_gid(&rules(&["st*"]), &unresolved, &lookup));
        // An exclusion that cannot be decided does not exclude.
        assert!(push_required_by_gid(
            &rules(&["!svc-*"]),
            &unresolved,
            &lookup
        ));
        // A literal pattern whose lookup fails: push required.
        let resolved = [UserGroup {
            gid: 7,
            name: Some("users".into()),
        }];
        assert!(push_required_by_gid(
            &rules(&["broken"]),
            &resolved,
            &lookup
        ));
        // Known groups still decide as before.
        assert!(!push_required_by_gid(
            &rules(&["staff"]),
            &resolved,
            &lookup
        ));
        assert!(!push_required_by_gid(&rules(&["st*"]), &resolved, &lookup));
        let staff = [UserGroup {
            gid: 50,
            name: Some("staff".into()),
        }];
        assert!(push_required_by_gid(&rules(&["staff"]), &staff, &lookup));
        assert!(!push_required_by_gid(
            &rules(&["staff", "!staff"]),
            &staff,
            &lookup
        ));
        // A renamed group (same gid, other name) still matches the literal pattern.
        let renamed = [UserGroup {
            gid: 60,
            name: Some("wheel".into()),
        }];
        assert!(push_required_by_gid(&rules(&["admins"]), &renamed, &lookup));
    }

    #[test]
    fn issue9_item10_user_names_are_canonicalised() {
        assert_eq!(UserMap::AsIs.apply("Alice").unwrap(), "Alice");
        assert_eq!(UserMap::Lowercase.apply("Alice").unwrap(), "alice");
        for name in [
            "Alice",
            "alice@CORP",
            "CORP\\alice",
            "ALICE@corp.example",
            "corp\\Alice",
        ] {
            assert_eq!(UserMap::StripDomain.apply(name).unwrap(), "alice", "{name}");
        }
        for bad in [
            "@CORP",
            "CORP\\",
            "CORP\\alice@x",
            "ali\u{202E}ce",
            "a\u{200B}",
        ] {
            assert!(UserMap::StripDomain.apply(bad).is_err(), "{bad:?}");
        }
        assert!(UserMap::AsIs.apply("ali\u{202E}ce").is_err());
        assert_eq!("strip_domain".parse(), Ok(UserMap::StripDomain));
        assert!("upper".parse::<UserMap>().is_err());
    }

    /// The mapped name meets the server's user-name rule (`pushauth_proto::names`): a name
    /// pushauthd would refuse is refused before any push.
    #[test]
    fn issue10_item4_user_map_applies_the_server_user_rule() {
        let longest = "a".repeat(pushauth_proto::names::MAX_USER_CHARS);
        assert_eq!(UserMap::AsIs.apply(&longest).unwrap(), longest);
        let err = UserMap::AsIs.apply(&format!("{longest}a")).unwrap_err();
        assert!(err.contains("1 to 256"), "{err}");
        let err = UserMap::StripDomain
            .apply(&format!("{longest}A@corp"))
            .unwrap_err();
        assert!(err.contains("1 to 256"), "{err}");
    }

    #[test]
    fn bad_rules_and_policies_are_refused() {
        for bad in ["", "!", "a b", "x\ty"] {
            assert!(GroupRule::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!("safe".parse(), Ok(UnreachablePolicy::Safe));
        assert_eq!("offline".parse(), Ok(UnreachablePolicy::Offline));
        assert!("open".parse::<UnreachablePolicy>().is_err());
        assert_eq!("ignore".parse(), Ok(NoDevicePolicy::Ignore));
        assert!("".parse::<NoDevicePolicy>().is_err());
    }
}

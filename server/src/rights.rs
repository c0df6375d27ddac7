//! What a relying party may do (issue 9 item 2): the users it may act for, as patterns, and
//! whether it may enroll (and bootstrap) devices.
//!
//! A pattern is an exact user name, a prefix ending in `*` (`kc/*` matches `kc/alice`), or `*`
//! alone for every user. `*` anywhere else is refused when the relying party is made.

/// Most patterns one relying party may carry.
pub const MAX_PATTERNS: usize = 64;
/// Longest pattern, in characters.
pub const MAX_PATTERN: usize = 256;

/// Checks a list of user patterns; the error says what is wrong, for people.
pub fn validate_patterns(patterns: &[String]) -> Result<(), String> {
    if patterns.is_empty() {
        return Err("users must name at least one user or pattern (\"*\" for every user)".into());
    }
    if patterns.len() > MAX_PATTERNS {
        return Err(format!("users takes at most {MAX_PATTERNS} patterns"));
    }
    for p in patterns {
        let count = p.chars().count();
        if count == 0 || count > MAX_PATTERN {
            return Err(format!(
                "user pattern {p:?} must be 1 to {MAX_PATTERN} characters"
            ));
        }
        if p.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "user pattern {p:?} holds spaces or control characters"
            ));
        }
        if p.trim_end_matches('*').contains('*') || p.ends_with("**") {
            return Err(format!(
                "user pattern {p:?}: `*` may only end a prefix (\"kc/*\") or stand alone (\"*\")"
            ));
        }
    }
    Ok(())
}

/// True when `user` matches one of `patterns`.
pub fn user_in_scope(patterns: &[String], user: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => user.starts_with(prefix),
        None => p == user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn issue9_item2_patterns_match_exact_names_prefixes_and_everyone() {
        assert!(user_in_scope(&v(&["*"]), "root"));
        assert!(user_in_scope(&v(&["kc/*"]), "kc/alice"));
        assert!(!user_in_scope(&v(&["kc/*"]), "root"));
        assert!(!user_in_scope(&v(&["kc/*"]), "kc"));
        assert!(user_in_scope(&v(&["alice", "bob"]), "bob"));
        assert!(!user_in_scope(&v(&["alice"]), "alice2"));
        assert!(!user_in_scope(&v(&[]), "alice"));
    }

    #[test]
    fn issue9_item2_bad_patterns_are_refused() {
        for bad in [
            vec![],
            v(&[""]),
            v(&["a*b"]),
            v(&["**"]),
            v(&["a b"]),
            v(&["x\n"]),
        ] {
            assert!(validate_patterns(&bad).is_err(), "{bad:?}");
        }
        assert!(validate_patterns(&v(&["*", "kc/*", "alice"])).is_ok());
    }
}

//! Which pushauthd user an IdP login is: an explicit rule per realm, from the sidecar's own
//! config (the trusted side: realm administrators cannot change it).
//!
//! A shim sends the realm and the user name it authenticated; the sidecar maps them with the
//! realm's template (`{realm}` and `{username}` are replaced; the default is
//! `"{realm}/{username}"`). A realm that is not configured is refused, so a second realm (say,
//! one with self-registration) can never reach the devices of a user of another realm by
//! sharing a user name. Each realm also says whether a user with no device may enroll one
//! without an administrator (`bootstrap`, off by default).

use std::collections::BTreeMap;

use pushauth_proto::names;
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::error::{ApiError, ErrorCode};

/// The default template: every realm gets its own namespace of pushauthd users.
pub const DEFAULT_TEMPLATE: &str = "{realm}/{username}";
/// Longest realm name or user name a shim may send (characters).
pub const MAX_NAME: usize = 128;
/// Longest mapped pushauthd user name (characters): the shared rule's
/// ([`names::MAX_USER_CHARS`]).
pub const MAX_USER: usize = names::MAX_USER_CHARS;

/// `[realms.<name>]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRealm {
    /// The pushauthd user for a login: a template over `{realm}` and `{username}`.
    pub user: Option<String>,
    /// Whether a user with no active device may enroll one here without an administrator.
    pub bootstrap: Option<bool>,
}

/// One configured realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    /// The realm's name, as the IdP names it.
    pub name: String,
    /// The template, checked: holds `{username}` exactly once and no other `{…}`.
    pub template: String,
    /// See [`FileRealm::bootstrap`].
    pub bootstrap: bool,
}

/// The configured realms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Realms {
    realms: BTreeMap<String, Realm>,
}

/// A login's identity on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The IdP realm.
    pub realm: String,
    /// The IdP user name.
    pub username: String,
    /// The pushauthd user.
    pub user: String,
    /// Whether the realm allows bootstrap enrollment.
    pub bootstrap: bool,
}

/// Whether `name` is a safe realm or user name: printable by the shared rule
/// ([`names::printable`]: none hidden, such as control, format or bidi characters) and at most
/// [`MAX_NAME`] characters, and, stricter, no `/`, `\`, `{`, `}` or white space, so that two
/// different (realm, name) pairs can never map to the same pushauthd user.
fn safe_name(name: &str) -> bool {
    names::printable(name, MAX_NAME)
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '\\' | '{' | '}'))
}

/// Checks a template: `{username}` exactly once, `{realm}` at most once, no other braces,
/// no hidden characters or white space in the literal parts.
fn check_template(realm: &str, template: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError::Invalid(format!(
            "realms.{realm}.user = {template:?}: {why} (example: \"{DEFAULT_TEMPLATE}\" or \"{{username}}\")"
        ))
    };
    if template.matches("{username}").count() != 1 {
        return Err(bad("must hold {username} exactly once"));
    }
    if template.matches("{realm}").count() > 1 {
        return Err(bad("may hold {realm} at most once"));
    }
    let literal = template.replace("{username}", "").replace("{realm}", "");
    if literal.contains(['{', '}']) {
        return Err(bad("only {realm} and {username} may be used"));
    }
    if literal
        .chars()
        .any(|c| pushauth_proto::text::is_hidden(c) || c.is_whitespace())
    {
        return Err(bad("must not hold white space or hidden characters"));
    }
    Ok(())
}

impl Realms {
    /// Builds the realms from the config file's `[realms.*]` tables.
    pub fn from_file(file: &BTreeMap<String, FileRealm>) -> Result<Realms, ConfigError> {
        let mut realms = BTreeMap::new();
        for (name, realm) in file {
            if !safe_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "[realms.{name:?}]: a realm name is 1 to {MAX_NAME} characters without /, \\, braces, white space or hidden characters"
                )));
            }
            let template = realm
                .user
                .clone()
                .unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned());
            check_template(name, &template)?;
            realms.insert(
                name.clone(),
                Realm {
                    name: name.clone(),
                    template,
                    bootstrap: realm.bootstrap.unwrap_or(false),
                },
            );
        }
        Ok(Realms { realms })
    }

    /// Realms from already checked values (tests, embedding).
    pub fn new(realms: impl IntoIterator<Item = Realm>) -> Result<Realms, ConfigError> {
        let file = realms
            .into_iter()
            .map(|r| {
                (
                    r.name,
                    FileRealm {
                        user: Some(r.template),
                        bootstrap: Some(r.bootstrap),
                    },
                )
            })
            .collect();
        Realms::from_file(&file)
    }

    /// Checks that every realm's users can have a pinned-key file
    /// ([`pushauth_client::pinned::pinned_path`]: `<authorized_devices>/<user>`, a `/` being a
    /// subdirectory): a template that always makes a name the client refuses (a `\\`, an
    /// empty or `.`-leading component) would fail every login of the realm once pinning is on.
    /// Called at start when `authorized_devices` is set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the realm and the fix.
    pub fn check_pinnable(&self) -> Result<(), ConfigError> {
        for realm in self.realms.values() {
            // The literal parts and the realm name; the user name itself is checked per login
            // (one bad name fails that user's logins only, closed).
            let sample = realm
                .template
                .replace("{realm}", &realm.name)
                .replace("{username}", "u");
            if pushauth_client::pinned::pinned_path(std::path::Path::new("."), &sample).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "authorized_devices is set, but realms.{}.user = {:?} makes user names that \
                     cannot name a pinned-key file (<authorized_devices>/<user>, each '/' a \
                     subdirectory: no '\\', no empty or '.'-leading part); use a template such \
                     as \"{{realm}}/{{username}}\" or \"kc-{{username}}\"",
                    realm.name, realm.template
                )));
            }
        }
        Ok(())
    }

    /// Whether no realm is configured (then every login is refused).
    pub fn is_empty(&self) -> bool {
        self.realms.is_empty()
    }

    /// The configured realm names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.realms.keys().map(String::as_str)
    }

    /// Maps an IdP login to its pushauthd user.
    ///
    /// Errors: 400 `malformed_request` for an unsafe realm or user name (see [`safe_name`]);
    /// 403 `realm_not_configured` for a realm the sidecar has no rule for.
    pub fn map(&self, realm: &str, username: &str) -> Result<Mapped, ApiError> {
        if !safe_name(realm) {
            return Err(ApiError::malformed(format!(
                "realm must be 1 to {MAX_NAME} characters without /, \\, braces, white space or hidden characters"
            )));
        }
        if !safe_name(username) {
            return Err(ApiError::malformed(format!(
                "username must be 1 to {MAX_NAME} characters without /, \\, braces, white space or hidden characters"
            )));
        }
        let rule = self.realms.get(realm).ok_or_else(|| {
            tracing::warn!(realm, "login for a realm the sidecar has no [realms] rule for");
            ApiError::new(
                ErrorCode::RealmNotConfigured,
                format!("realm {realm:?} has no [realms.{realm}] rule in the sidecar config; push logins there are refused"),
            )
        })?;
        let user = rule
            .template
            .replace("{realm}", realm)
            .replace("{username}", username);
        // The parts are printable and non-empty, so only the length can fail the shared rule.
        if names::check_user(&user).is_err() {
            return Err(ApiError::malformed(format!(
                "the mapped user name is longer than {MAX_USER} characters"
            )));
        }
        Ok(Mapped {
            realm: realm.to_owned(),
            username: username.to_owned(),
            user,
            bootstrap: rule.bootstrap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realms() -> Realms {
        let mut file = BTreeMap::new();
        file.insert(
            "corp".to_owned(),
            FileRealm {
                user: Some("{username}".into()),
                bootstrap: Some(true),
            },
        );
        file.insert("public".to_owned(), FileRealm::default());
        file.insert(
            "partners".to_owned(),
            FileRealm {
                user: Some("kc/{realm}/{username}".into()),
                bootstrap: None,
            },
        );
        Realms::from_file(&file).unwrap()
    }

    #[test]
    fn issue9_item1_each_realm_maps_by_its_own_rule() {
        let r = realms();
        let corp = r.map("corp", "alice").unwrap();
        assert_eq!((corp.user.as_str(), corp.bootstrap), ("alice", true));
        let public = r.map("public", "alice").unwrap();
        assert_eq!(
            (public.user.as_str(), public.bootstrap),
            ("public/alice", false)
        );
        assert_eq!(
            r.map("partners", "alice").unwrap().user,
            "kc/partners/alice"
        );
    }

    #[test]
    fn issue9_item1_unconfigured_realm_is_refused() {
        let err = realms().map("selfservice", "alice").unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (403, "realm_not_configured")
        );
    }

    #[test]
    fn issue9_item1_names_that_could_collide_are_refused() {
        let r = realms();
        // corp maps to bare names: "public/alice" must not reach public's alice.
        for (realm, name) in [
            ("corp", "public/alice"),
            ("corp", "a\\b"),
            ("corp", "{realm}"),
            ("corp", "al ice"),
            ("corp", "ali\u{202e}ce"),
            ("corp", ""),
            ("co/rp", "alice"),
        ] {
            let err = r.map(realm, name).unwrap_err();
            assert_eq!(err.code, "malformed_request", "{realm} {name}");
        }
    }

    #[test]
    fn bad_templates_are_config_errors() {
        for template in [
            "alice",
            "{username}{username}",
            "{user}",
            "x {username}",
            "{realm}",
        ] {
            let mut file = BTreeMap::new();
            file.insert(
                "r".to_owned(),
                FileRealm {
                    user: Some(template.into()),
                    bootstrap: None,
                },
            );
            let err = Realms::from_file(&file).unwrap_err();
            assert!(
                err.to_string().contains("realms.r.user"),
                "{template}: {err}"
            );
        }
    }
}

//! Issue 9 item 21: property tests for `/etc/pam_push.conf` ([`Config::parse`]) and the PAM
//! line's module arguments ([`Args::parse`]).
//!
//! Properties: arbitrary text never panics and a refusal is the typed [`ConfigError`] naming the
//! file; a valid generated config gives back exactly the settings written; near-misses (a
//! misspelt key, a key given twice, a wrong type, a setting out of range, a hidden character, NUL
//! or non-ASCII space in any setting's text) are refused with a message naming the file and the
//! setting: a config that says one thing cannot be read as another, and a value that would only
//! fail when a login uses it (a server URL that cannot be parsed counts as "unreachable") is
//! refused at load, where the module fails closed; a 64 KiB file is handled quickly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::path::Path;
use std::time::{Duration, Instant};

use pam_push::authenticate::Args;
use pam_push::config::{Config, ConfigError, Ownership};
use pam_push::policy::{NoDevicePolicy, UnreachablePolicy};
use pam_push::prompt::PromptMode;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

const PATH: &str = "/etc/pam_push-under-test.conf";

fn me() -> Ownership {
    Ownership {
        uid: pushauth_testkit::euid(),
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new(PATH), text, me())
}

const HIDDEN: &[char] = &[
    '\u{202E}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{061C}',
    '\u{2028}', '\u{0000}', '\u{0009}', '\u{001B}', '\u{007F}', '\u{00A0}', '\u{3000}', '\u{E000}',
];

/// TOML basic-string escape of `c` (so control characters can be written at all).
fn toml_escape(c: char) -> String {
    format!("\\u{:04X}", u32::from(c))
}

/// The settings a generated config file sets.
#[derive(Debug, Clone)]
struct Spec {
    servers: Vec<String>,
    one_server_key: bool,
    api_key: String,
    timeout: Option<u64>,
    connect_timeout: Option<u64>,
    number_matching: Option<bool>,
    prompt: Option<&'static str>,
    groups: Option<Vec<String>>,
    no_device: Option<&'static str>,
    server_unreachable: Option<&'static str>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(
            "https://[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){0,2}(:[1-9][0-9]{3})?(/[a-z]{1,5})?",
            1..4,
        ),
        any::<bool>(),
        "[A-Za-z0-9._~-]{1,64}",
        prop::option::of(10u64..=60),
        prop::option::of(1u64..=10),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(vec!["auto", "always", "never"])),
        prop::option::of(prop::collection::vec("!?[a-z][a-z0-9_-]{0,10}\\*?", 0..4)),
        prop::option::of(prop::sample::select(vec!["deny", "ignore", "allow"])),
        prop::option::of(prop::sample::select(vec!["secure", "safe"])),
    )
        .prop_map(
            |(
                servers,
                one,
                api_key,
                timeout,
                connect_timeout,
                number_matching,
                prompt,
                groups,
                no_device,
                server_unreachable,
            )| Spec {
                one_server_key: one && servers.len() == 1,
                servers,
                api_key,
                timeout,
                connect_timeout,
                number_matching,
                prompt,
                groups,
                no_device,
                server_unreachable,
            },
        )
}

fn quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// The config file for `spec`, one `key = value` line per setting.
fn render(spec: &Spec) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if spec.one_server_key {
        lines.push(("server", format!("{:?}", spec.servers[0])));
    } else {
        lines.push(("servers", quoted(&spec.servers)));
    }
    lines.push(("api_key", format!("{:?}", spec.api_key)));
    if let Some(t) = spec.timeout {
        lines.push(("timeout", t.to_string()));
    }
    if let Some(t) = spec.connect_timeout {
        lines.push(("connect_timeout", t.to_string()));
    }
    if let Some(n) = spec.number_matching {
        lines.push(("number_matching", n.to_string()));
    }
    if let Some(p) = spec.prompt {
        lines.push(("prompt", format!("{p:?}")));
    }
    if let Some(g) = &spec.groups {
        lines.push(("groups", quoted(g)));
    }
    if let Some(n) = spec.no_device {
        lines.push(("no_device", format!("{n:?}")));
    }
    if let Some(s) = spec.server_unreachable {
        lines.push(("server_unreachable", format!("{s:?}")));
    }
    lines
}

fn text_of(lines: &[(&str, String)]) -> String {
    lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

/// A refusal names the file; `needle` must appear in the message.
fn refused(text: &str, needle: &str) -> Result<ConfigError, TestCaseError> {
    match parse(text) {
        Ok(cfg) => Err(TestCaseError::fail(format!("{text:?} accepted as {cfg:?}"))),
        Err(err) => {
            let message = err.to_string();
            prop_assert!(
                message.contains(PATH),
                "{:?} does not name the file",
                message
            );
            prop_assert!(
                message.contains(needle),
                "{:?} refused with {:?}, expected {:?}",
                text,
                message,
                needle
            );
            Ok(err)
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_pam_config_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "([a-z_]{1,18} = (\"[ -~]{0,20}\"|[0-9-]{1,5}|true|\\[\"[a-z!*]{0,6}\"\\])\n){0,6}",
        ],
    ) {
        if let Err(err) = parse(&text) {
            let message = err.to_string();
            prop_assert!(message.contains(PATH), "{:?}", message);
            prop_assert!(matches!(err, ConfigError::Malformed { .. } | ConfigError::Invalid { .. }), "{:?}", err);
        }
    }

    #[test]
    fn issue9_item21_pam_config_valid_configs_give_their_settings(spec in spec()) {
        let text = text_of(&render(&spec));
        let cfg = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(&cfg.servers, &spec.servers);
        prop_assert_eq!(cfg.api_key.as_str(), spec.api_key.as_str());
        prop_assert_eq!(cfg.timeout, Duration::from_secs(spec.timeout.unwrap_or(60)));
        if let Some(secs) = spec.connect_timeout {
            prop_assert_eq!(cfg.connect_timeout, Duration::from_secs(secs));
        }
        prop_assert_eq!(cfg.number_matching, spec.number_matching.unwrap_or(true));
        prop_assert_eq!(cfg.prompt, spec.prompt.map_or(PromptMode::Auto, |p| p.parse().expect("mode")));
        let groups: Vec<(bool, String)> = cfg.groups.iter().map(|g| (g.exclude, g.pattern.clone())).collect();
        let expected: Vec<(bool, String)> = spec.groups.clone().unwrap_or_default().iter()
            .map(|g| match g.strip_prefix('!') { Some(p) => (true, p.to_owned()), None => (false, g.clone()) })
            .collect();
        prop_assert_eq!(groups, expected);
        prop_assert_eq!(cfg.no_device, spec.no_device.map_or(NoDevicePolicy::Deny, |p| p.parse().expect("policy")));
        prop_assert_eq!(
            cfg.server_unreachable,
            spec.server_unreachable.map_or(UnreachablePolicy::Secure, |p| p.parse().expect("policy"))
        );
        // Order of the lines does not matter.
        let mut reversed = render(&spec);
        reversed.reverse();
        prop_assert!(parse(&text_of(&reversed)).is_ok());
    }

    #[test]
    fn issue9_item21_pam_config_misspelt_key_is_named(spec in spec(), which in any::<prop::sample::Index>(), typo in "[a-z]") {
        let lines = render(&spec);
        let i = which.index(lines.len());
        let misspelt = format!("{}{typo}", lines[i].0);
        prop_assume!(misspelt != "servers");
        let text: String = lines.iter().enumerate()
            .map(|(j, (k, v))| if j == i { format!("{misspelt} = {v}\n") } else { format!("{k} = {v}\n") })
            .collect();
        let err = refused(&text, &misspelt)?;
        prop_assert!(matches!(err, ConfigError::Malformed { .. }), "{:?}", err);
    }

    #[test]
    fn issue9_item21_pam_config_repeated_key_is_refused(spec in spec(), which in any::<prop::sample::Index>()) {
        let lines = render(&spec);
        let (key, value) = which.get(&lines).clone();
        let text = format!("{}{key} = {value}\n", text_of(&lines));
        refused(&text, "duplicate key")?;
    }

    #[test]
    fn issue9_item21_pam_config_wrong_type_or_range_is_refused(spec in spec(), big in 601u64..u64::MAX / 2) {
        let base = text_of(&render(&spec));
        let without = |key: &str| -> String {
            base.lines().filter(|l| !l.starts_with(&format!("{key} ="))).map(|l| format!("{l}\n")).collect()
        };
        refused(&format!("{}timeout = \"30\"\n", without("timeout")), "invalid type")?;
        refused(&format!("{}timeout = -5\n", without("timeout")), "timeout")?;
        refused(&format!("{}timeout = 0\n", without("timeout")), "timeout")?;
        refused(&format!("{}timeout = 2.5\n", without("timeout")), "invalid type")?;
        refused(&format!("{}connect_timeout = {big}\n", without("connect_timeout")), "connect_timeout")?;
        refused(&format!("{}number_matching = \"yes\"\n", without("number_matching")), "invalid type")?;
        refused(&format!("{}groups = \"admins\"\n", without("groups")), "invalid type")?;
        refused(&format!("{}prompt = 1\n", without("prompt")), "invalid type")?;
        refused(&format!("{}server = \"https://a\"\nservers = [\"https://b\"]\n", without("server").lines().filter(|l| !l.starts_with("servers =")).map(|l| format!("{l}\n")).collect::<String>()), "not both")?;
        refused(&format!("{}servers = []\n", without("server").lines().filter(|l| !l.starts_with("servers =")).map(|l| format!("{l}\n")).collect::<String>()), "servers")?;
        refused(&format!("{}server = \"ftp://a\"\n", without("server").lines().filter(|l| !l.starts_with("servers =")).map(|l| format!("{l}\n")).collect::<String>()), "https://")?;
    }

    /// A hidden character, NUL, tab or non-ASCII space anywhere in a setting's text: refused with
    /// a message naming the setting (a server URL with one would only fail at login time, where
    /// it would count as "unreachable"; a group pattern with one would never match anybody).
    #[test]
    fn issue9_item21_pam_config_hidden_characters_in_values_are_refused(
        spec in spec(),
        setting in prop::sample::select(vec!["server", "servers", "prompt", "groups", "no_device", "server_unreachable"]),
        hidden in prop::sample::select(HIDDEN),
        position in any::<prop::sample::Index>(),
        escaped in any::<bool>(),
    ) {
        let mut spec = spec;
        spec.one_server_key = setting == "server" && spec.servers.len() == 1;
        prop_assume!(setting != "server" || spec.one_server_key);
        spec.prompt = spec.prompt.or(Some("auto"));
        spec.no_device = spec.no_device.or(Some("deny"));
        spec.server_unreachable = spec.server_unreachable.or(Some("secure"));
        if spec.groups.as_ref().is_none_or(|g| g.is_empty()) {
            spec.groups = Some(vec!["admins".into()]);
        }
        let lines = render(&spec);
        let (key, value) = lines.iter().find(|(k, _)| *k == setting).cloned().expect("setting");
        // Insert inside the first quoted string of the value, never on a quote.
        let open = value.find('"').expect("quoted");
        let close = open + 1 + value[open + 1..].find('"').expect("closed");
        let inner: Vec<char> = value[open + 1..close].chars().collect();
        let at = position.index(inner.len() + 1);
        let piece = if escaped || hidden.is_control() { toml_escape(hidden) } else { hidden.to_string() };
        let mut new_inner: String = inner[..at].iter().collect();
        new_inner.push_str(&piece);
        new_inner.extend(&inner[at..]);
        let new_value = format!("{}{}{}", &value[..=open], new_inner, &value[close..]);
        let text: String = lines.iter()
            .map(|(k, v)| if *k == key { format!("{k} = {new_value}\n") } else { format!("{k} = {v}\n") })
            .collect();
        let err = refused(&text, key)?;
        prop_assert!(matches!(err, ConfigError::Invalid { .. }), "{:?}", err);
    }

    #[test]
    fn issue9_item21_pam_args_never_panic_and_name_the_argument(
        args in prop::collection::vec(prop_oneof![
            any::<String>(),
            Just("debug".to_owned()),
            "conf=/[a-z/]{0,20}",
            "conf=[a-z]{0,10}",
            "[a-z=/ ]{0,12}",
        ], 0..4),
    ) {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        match Args::parse(refs.iter().copied()) {
            Ok(parsed) => {
                prop_assert!(parsed.conf.is_absolute());
                prop_assert_eq!(parsed.debug, args.iter().any(|a| a == "debug"));
                for a in &args {
                    prop_assert!(a == "debug" || a.starts_with("conf=/"), "{:?} accepted", a);
                }
            }
            Err(message) => {
                let named = args.iter().any(|a| message.contains(&format!("{a:?}")) || message.contains(a.trim_start_matches("conf=")));
                prop_assert!(named, "{:?} does not name the argument in {:?}", message, args);
            }
        }
    }
}

#[test]
fn issue9_item21_pam_config_64k_input_is_handled_quickly() {
    let started = Instant::now();
    let cases = [
        format!(
            "server = \"https://a\"\napi_key = \"k\"\n{}",
            "# comment\n".repeat(64 * 1024 / 10)
        ),
        format!(
            "server = \"https://a\"\napi_key = \"k\"\ngroups = [{}\"x\"]\n",
            "\"g\",".repeat(64 * 1024 / 4)
        ),
        "[".repeat(64 * 1024),
        "a = [".repeat(64 * 1024 / 5),
        format!("server = \"{}\"\n", "\u{202E}".repeat(64 * 1024 / 3)),
    ];
    for text in &cases {
        let _ = parse(text);
    }
    assert!(parse(&cases[0]).is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

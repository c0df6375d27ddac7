//! Issue 9 item 21: property tests for pushauthd's config file ([`FileConfig::parse`]).
//!
//! Properties: arbitrary text never panics and a refusal is [`ConfigError::Parse`] naming the
//! file, with a message; a valid generated config gives back exactly the settings written; a
//! near-miss (a misspelt key, in a table too; a key given twice; a wrong type; a negative number;
//! a listen address with a hidden character) is refused naming the file (and the key, where the
//! key is the problem); a 64 KiB file is handled quickly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use pushauth_server::config::{ConfigError, FileConfig};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

const PATH: &str = "/etc/pushauthd/under-test.toml";

fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    FileConfig::parse(text, Path::new(PATH))
}

#[derive(Debug, Clone)]
struct Spec {
    listen: Option<SocketAddr>,
    data_dir: Option<String>,
    public_url: Option<String>,
    numbers: Vec<(&'static str, u64)>,
    limits: Vec<(&'static str, u64)>,
    retention: Vec<(&'static str, u64)>,
    tls: Option<(String, String)>,
}

const NUMBERS: &[&str] = &[
    "default_ttl_secs",
    "max_ttl_secs",
    "enrollment_ttl_secs",
    "sweep_interval_secs",
];
const LIMITS: &[&str] = &[
    "max_open_per_user",
    "max_new_per_window",
    "window_secs",
    "report_lockout_secs",
];
const RETENTION: &[&str] = &["challenges_days", "audit_days"];

fn pick(
    names: &'static [&'static str],
    max: u64,
) -> impl Strategy<Value = Vec<(&'static str, u64)>> {
    prop::collection::vec(prop::option::of(0..=max), names.len()).prop_map(move |values| {
        names
            .iter()
            .zip(values)
            .filter_map(|(name, v)| v.map(|v| (*name, v)))
            .collect()
    })
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_.-]{1,8}){1,4}"
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        ),
        prop::option::of(path()),
        prop::option::of("https://[a-z]{1,10}\\.example(/[a-z]{1,5})?"),
        pick(NUMBERS, 86_400),
        pick(LIMITS, u64::from(u32::MAX)),
        pick(RETENTION, 10_000),
        prop::option::of((path(), path())),
    )
        .prop_map(
            |(listen, data_dir, public_url, numbers, limits, retention, tls)| Spec {
                listen,
                data_dir,
                public_url,
                numbers,
                limits,
                retention,
                tls,
            },
        )
}

fn render(spec: &Spec) -> String {
    let mut text = String::new();
    if let Some(listen) = spec.listen {
        text.push_str(&format!("listen = \"{listen}\"\n"));
    }
    if let Some(dir) = &spec.data_dir {
        text.push_str(&format!("data_dir = {dir:?}\n"));
    }
    if let Some(url) = &spec.public_url {
        text.push_str(&format!("public_url = {url:?}\n"));
    }
    for (name, value) in &spec.numbers {
        text.push_str(&format!("{name} = {value}\n"));
    }
    if !spec.limits.is_empty() {
        text.push_str("[limits]\n");
        for (name, value) in &spec.limits {
            text.push_str(&format!("{name} = {value}\n"));
        }
    }
    if !spec.retention.is_empty() {
        text.push_str("[retention]\n");
        for (name, value) in &spec.retention {
            text.push_str(&format!("{name} = {value}\n"));
        }
    }
    if let Some((cert, key)) = &spec.tls {
        text.push_str(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
    }
    text
}

fn refused(text: &str, needle: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(cfg) => Err(TestCaseError::fail(format!("{text:?} accepted as {cfg:?}"))),
        Err(err) => {
            prop_assert!(matches!(err, ConfigError::Parse { .. }), "{:?}", err);
            let message = err.to_string();
            prop_assert!(message.contains(PATH), "{:?}", message);
            prop_assert!(message.len() > PATH.len() + 2, "{:?}", message);
            prop_assert!(
                message.contains(needle),
                "{:?} refused with {:?}, expected {:?}",
                text,
                message,
                needle
            );
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn issue9_item21_server_config_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "((\\[[a-z]{1,9}\\]\n)?[a-z_]{1,20} = (\"[ -~]{0,20}\"|-?[0-9]{1,25}|true|\\[\\])\n){0,6}",
        ],
    ) {
        if let Err(err) = parse(&text) {
            prop_assert!(matches!(err, ConfigError::Parse { .. }), "{:?}", err);
            let prefix = format!("config file {PATH}: ");
            prop_assert!(err.to_string().starts_with(&prefix));
        }
    }

    #[test]
    fn issue9_item21_server_config_valid_configs_give_their_settings(spec in spec()) {
        let text = render(&spec);
        let cfg = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(cfg.listen, spec.listen);
        prop_assert_eq!(cfg.data_dir, spec.data_dir.as_ref().map(PathBuf::from));
        prop_assert_eq!(&cfg.public_url, &spec.public_url);
        let get = |list: &[(&str, u64)], name: &str| list.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        prop_assert_eq!(cfg.default_ttl_secs, get(&spec.numbers, "default_ttl_secs"));
        prop_assert_eq!(cfg.max_ttl_secs, get(&spec.numbers, "max_ttl_secs"));
        prop_assert_eq!(cfg.enrollment_ttl_secs, get(&spec.numbers, "enrollment_ttl_secs"));
        prop_assert_eq!(cfg.sweep_interval_secs, get(&spec.numbers, "sweep_interval_secs"));
        match cfg.limits {
            None => prop_assert!(spec.limits.is_empty()),
            Some(limits) => {
                let defaults = pushauth_server::Limits::default();
                prop_assert_eq!(u64::from(limits.max_open_per_user), get(&spec.limits, "max_open_per_user").unwrap_or(u64::from(defaults.max_open_per_user)));
                prop_assert_eq!(u64::from(limits.max_new_per_window), get(&spec.limits, "max_new_per_window").unwrap_or(u64::from(defaults.max_new_per_window)));
                prop_assert_eq!(limits.window_secs, get(&spec.limits, "window_secs").unwrap_or(defaults.window_secs));
                prop_assert_eq!(limits.report_lockout_secs, get(&spec.limits, "report_lockout_secs").unwrap_or(defaults.report_lockout_secs));
            }
        }
        match cfg.retention {
            None => prop_assert!(spec.retention.is_empty()),
            Some(retention) => {
                if let Some(days) = get(&spec.retention, "challenges_days") {
                    prop_assert_eq!(retention.challenges_days, days);
                }
                if let Some(days) = get(&spec.retention, "audit_days") {
                    prop_assert_eq!(retention.audit_days, days);
                }
            }
        }
        match (&cfg.tls, &spec.tls) {
            (None, None) => {}
            (Some(tls), Some((cert, key))) => {
                prop_assert_eq!(&tls.cert, &PathBuf::from(cert));
                prop_assert_eq!(&tls.key, &PathBuf::from(key));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn issue9_item21_server_config_misspelt_or_repeated_key_is_refused(
        spec in spec(),
        table in prop::sample::select(vec!["", "limits", "retention", "tls"]),
        key in prop::sample::select(vec!["listen", "max_ttl_secs", "max_open_per_user", "audit_days", "cert"]),
        typo in "[a-z]",
    ) {
        let text = render(&spec);
        // A misspelt key: at the top (before the tables of the generated config), or in a table.
        let misspelt = format!("{key}{typo}");
        let body = if table.is_empty() {
            format!("{misspelt} = 1\n{text}")
        } else {
            format!("[{table}]\n{misspelt} = 1\n")
        };
        refused(&body, &misspelt)?;
        // The same top-level key twice.
        let twice = format!("max_ttl_secs = 1\n{text}");
        if spec.numbers.iter().any(|(n, _)| *n == "max_ttl_secs") {
            refused(&twice, "duplicate")?;
        }
        refused(&format!("max_ttl_secs = 1\nmax_ttl_secs = 1\n{text}"), "duplicate")?;
        // The same table twice.
        let tables = if text.contains("[limits]") { text.clone() } else { format!("{text}[limits]\nwindow_secs = 1\n") };
        refused(&format!("{tables}[limits]\nwindow_secs = 2\n"), "")?;
    }

    #[test]
    fn issue9_item21_server_config_wrong_types_are_refused(
        name in prop::sample::select(NUMBERS),
        bad in prop::sample::select(vec!["-1", "\"60\"", "1.5", "true", "[]", "{}", "18446744073709551616"]),
        hidden in prop::sample::select(vec!['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{00A0}', '\u{3000}']),
    ) {
        // The message names the key whose value is wrong, and the line.
        refused(&format!("{name} = {bad}\n"), name)?;
        refused(&format!("max_ttl_secs = 5\n{name} = {bad}\n"), "line 2")?;
        refused(&format!("[limits]\nwindow_secs = {bad}\n"), "window_secs")?;
        refused(&format!("[retention]\naudit_days = {bad}\n"), "audit_days")?;
        refused(&format!("listen = \"127.0.0.1:{hidden}8443\"\n"), "")?;
        refused(&format!("listen = \"127.0.0.1:8443{hidden}\"\n"), "")?;
        refused("listen = \"127.0.0.1\"\n", "")?;
        refused("tls = \"cert.pem\"\n", "")?;
        refused("[tls]\ncert = \"c.pem\"\n", "key")?;
    }
}

#[test]
fn issue9_item21_server_config_64k_input_is_handled_quickly() {
    let started = Instant::now();
    let cases = [
        format!("max_ttl_secs = 5\n{}", "# comment\n".repeat(64 * 1024 / 10)),
        "[".repeat(64 * 1024),
        "a = [".repeat(64 * 1024 / 5),
        "a = {".repeat(64 * 1024 / 5),
        format!("public_url = \"{}\"\n", "\u{202E}".repeat(64 * 1024 / 3)),
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

//! Unit tests of the config: parsing, defaults and refusals.

use super::*;
use crate::policy::UserMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn me() -> Ownership {
    Ownership {
        uid: pushauth_testkit::euid(),
    }
}

use pushauth_testkit::write_file as write;

fn with_key(dir: &Path, extra: &str) -> String {
    let key = write(dir, "api-key", "secret-key\n", 0o600);
    format!(
        "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n{extra}",
        key.display()
    )
}

#[test]
fn defaults_and_full_config() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "c", &with_key(dir.path(), ""), 0o644);
    let cfg = Config::load(&conf, me()).unwrap();
    assert_eq!(cfg.servers, vec!["http://127.0.0.1:1"]);
    assert_eq!(cfg.api_key.as_str(), "secret-key");
    assert_eq!(cfg.timeout, Duration::from_secs(60));
    assert!(cfg.number_matching);
    assert_eq!(cfg.prompt, PromptMode::Auto);
    assert!(cfg.groups.is_empty());
    assert_eq!(cfg.no_device, NoDevicePolicy::Deny);
    assert_eq!(cfg.server_unreachable, UnreachablePolicy::Secure);
    assert_eq!(cfg.state_dir, Path::new("/var/lib/pam_push"));
    let conf = write(
        dir.path(),
        "rel",
        &with_key(dir.path(), "state_dir = \"var/lib\"\n"),
        0o644,
    );
    let err = Config::load(&conf, me()).unwrap_err().to_string();
    assert!(
        err.contains("state_dir") && err.contains("absolute"),
        "{err}"
    );
    let conf = write(
        dir.path(),
        "abs",
        &with_key(dir.path(), "state_dir = \"/srv/pp\"\n"),
        0o644,
    );
    assert_eq!(
        Config::load(&conf, me()).unwrap().state_dir,
        Path::new("/srv/pp")
    );

    let pins = dir.path().join("pins");
    fs::create_dir(&pins).unwrap();
    fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
    let ca = write(dir.path(), "ca.pem", "pem", 0o644);
    let text = format!(
        "servers = [\"https://a.example\", \"https://b.example\"]\napi_key = \"inline\"\n\
         ca_file = \"{}\"\nproxy = \"http://proxy:3128\"\ntimeout = 30\n\
         connect_timeout = 2\nnumber_matching = false\nprompt = \"always\"\n\
         groups = [\"admins\", \"!contractors\"]\nno_device = \"ignore\"\n\
         server_unreachable = \"safe\"\nauthorized_devices = \"{}\"\n\
         user_map = \"strip_domain\"\nallow_insecure_http = true\n",
        ca.display(),
        pins.display()
    );
    let conf = write(dir.path(), "full", &text, 0o600);
    let cfg = Config::load(&conf, me()).unwrap();
    assert_eq!(cfg.servers.len(), 2);
    assert_eq!(cfg.api_key.as_str(), "inline");
    assert_eq!(cfg.timeout, Duration::from_secs(30));
    assert_eq!(cfg.connect_timeout, Duration::from_secs(2));
    assert!(!cfg.number_matching);
    assert_eq!(cfg.prompt, PromptMode::Always);
    assert_eq!(cfg.groups.len(), 2);
    assert_eq!(cfg.no_device, NoDevicePolicy::Ignore);
    assert_eq!(cfg.server_unreachable, UnreachablePolicy::Safe);
    assert_eq!(cfg.authorized_devices.as_deref(), Some(pins.as_path()));
    assert_eq!(cfg.user_map, UserMap::StripDomain);
    assert!(cfg.allow_insecure_http);
    let client = cfg.client_config();
    assert!(client.allow_insecure_http);
    assert_eq!(client.proxy.as_deref(), Some("http://proxy:3128"));
    assert!(!format!("{client:?}").contains("inline"));
}

#[test]
fn missing_and_malformed_configs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(&dir.path().join("nope"), me()).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }));
    assert!(err.to_string().contains("missing"), "{err}");

    let conf = write(dir.path(), "bad", "server = [", 0o600);
    let err = Config::load(&conf, me()).unwrap_err();
    assert!(matches!(err, ConfigError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("is malformed"), "{err}");

    // A typo is an error, not an ignored setting.
    let conf = write(
        dir.path(),
        "typo",
        &with_key(dir.path(), "server_unreachabel = \"safe\"\n"),
        0o600,
    );
    let err = Config::load(&conf, me()).unwrap_err();
    assert!(err.to_string().contains("server_unreachabel"), "{err}");

    for (extra, needle) in [
        ("timeout = 0\n", "timeout"),
        ("prompt = \"sometimes\"\n", "prompt"),
        ("server_unreachable = \"open\"\n", "server_unreachable"),
        ("no_device = \"maybe\"\n", "no_device"),
        ("groups = [\"\"]\n", "group"),
        (
            "authorized_devices = \"/nonexistent/pins\"\n",
            "authorized_devices",
        ),
    ] {
        let conf = write(dir.path(), "x", &with_key(dir.path(), extra), 0o600);
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{extra}: {err}");
        assert!(err.to_string().contains(needle), "{extra}: {err}");
    }
    let conf = write(dir.path(), "nokey", "server = \"https://x\"\n", 0o600);
    assert!(Config::load(&conf, me())
        .unwrap_err()
        .to_string()
        .contains("api_key_file"));
    let conf = write(dir.path(), "noserver", "api_key = \"k\"\n", 0o600);
    assert!(Config::load(&conf, me())
        .unwrap_err()
        .to_string()
        .contains("no server"));
    let conf = write(
        dir.path(),
        "ftp",
        "server = \"ftp://x\"\napi_key = \"k\"\n",
        0o600,
    );
    assert!(Config::load(&conf, me())
        .unwrap_err()
        .to_string()
        .contains("https://"));
}

#[test]
fn permissions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let text = with_key(dir.path(), "");
    for mode in [0o664, 0o646, 0o666] {
        let conf = write(dir.path(), "w", &text, mode);
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(matches!(err, ConfigError::Writable { .. }), "{mode:o}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }
    // Owned by someone else.
    let conf = write(dir.path(), "o", &text, 0o600);
    let other = Ownership {
        uid: me().uid.wrapping_add(4242),
    };
    let err = Config::load(&conf, other).unwrap_err();
    assert!(matches!(err, ConfigError::NotOwnedByRoot { .. }), "{err}");
    assert!(err.to_string().contains("not root"), "{err}");

    // Inline key: the config itself must not be readable by others.
    let inline = "server = \"https://x\"\napi_key = \"k\"\n";
    let conf = write(dir.path(), "i", inline, 0o644);
    let err = Config::load(&conf, me()).unwrap_err();
    assert!(matches!(err, ConfigError::SecretReadable { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    let conf = write(dir.path(), "i", inline, 0o600);
    assert!(Config::load(&conf, me()).is_ok());

    // The API key file: not readable by group or others.
    let conf = write(dir.path(), "k", &text, 0o644);
    fs::set_permissions(
        dir.path().join("api-key"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let err = Config::load(&conf, me()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::SecretReadable { path, .. } if path.ends_with("api-key")),
        "{err}"
    );
    fs::remove_file(dir.path().join("api-key")).unwrap();
    let err = Config::load(&conf, me()).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }), "{err}");

    // A directory is not a config.
    let sub = dir.path().join("d");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        Config::load(&sub, me()).unwrap_err(),
        ConfigError::NotAFile { .. }
    ));
}

/// Every setting the shipped example documents (commented out) is one the parser takes.
#[test]
fn packaged_example_documents_real_settings() {
    let example = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/pam_push.conf"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "api-key", "k\n", 0o600);
    let pins = dir.path().join("pins");
    fs::create_dir(&pins).unwrap();
    fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
    let ca = write(dir.path(), "ca.pem", "pem", 0o644);
    let mut text = String::new();
    let mut settings = 0;
    for line in example.lines() {
        // A commented setting, or a commented table header (the example's last part).
        let setting = line.strip_prefix("# ").filter(|l| {
            l.starts_with("[[")
                || l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
        });
        let line = setting.unwrap_or(line);
        settings += usize::from(setting.is_some());
        // The alternatives to settings already made.
        if line.starts_with("servers = ") || line.starts_with("api_key = ") {
            continue;
        }
        text.push_str(
            &line
                .replace("/etc/pushauth/api-key", &key.display().to_string())
                .replace(
                    "/etc/pushauth/authorized_devices",
                    &pins.display().to_string(),
                )
                .replace("/etc/pushauth/ca.pem", &ca.display().to_string()),
        );
        text.push('\n');
    }
    assert!(settings >= 12, "{settings} commented settings");
    let cfg = Config::parse(&dir.path().join("example"), &text, me()).unwrap();
    assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
    assert_eq!(cfg.groups.len(), 3);
    assert_eq!(cfg.no_device, NoDevicePolicy::Deny);
    assert_eq!(cfg.server_unreachable, UnreachablePolicy::Secure);
    assert_eq!(cfg.authorized_devices.as_deref(), Some(pins.as_path()));
    // Issue 14: the approval keys and the example rule are real settings too.
    assert_eq!(cfg.approval.rules.len(), 1);
    assert_eq!(
        cfg.approval.rules[0].mode,
        crate::approval::rules::ApprovalMode::Other
    );
}

/// An API key file with a byte-order mark, a no-break space or a zero-width space is a
/// config error naming the file, not a request that fails later and counts as "unreachable".
#[test]
fn issue9_item17_api_key_must_be_printable_ascii() {
    let dir = tempfile::tempdir().unwrap();
    for key in [
        "\u{feff}rp1.secret\n",
        "rp1.secret\u{a0}\n",
        "rp1.\u{200b}secret\n",
        "rp1.secret with space\n",
        " rp1.secret\n",
    ] {
        let key_file = write(dir.path(), "api-key", key, 0o600);
        let text = format!(
            "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n",
            key_file.display()
        );
        let conf = write(dir.path(), "c", &text, 0o600);
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadApiKey { path } if path == &key_file),
            "{key:?}: {err}"
        );
        assert!(err.to_string().contains("api-key"), "{err}");
        assert!(err.to_string().contains("printable ASCII"), "{err}");
    }
    // The final newline (LF or CRLF) is not part of the key.
    for key in ["rp1.secret\n", "rp1.secret\r\n", "rp1.secret"] {
        let key_file = write(dir.path(), "api-key", key, 0o600);
        let text = format!(
            "server = \"http://127.0.0.1:1\"\napi_key_file = \"{}\"\n",
            key_file.display()
        );
        let conf = write(dir.path(), "c", &text, 0o600);
        assert_eq!(
            Config::load(&conf, me()).unwrap().api_key.as_str(),
            "rp1.secret"
        );
    }
    let inline = write(
        dir.path(),
        "i",
        "server = \"http://127.0.0.1:1\"\napi_key = \"\u{feff}k\"\n",
        0o600,
    );
    assert!(matches!(
        Config::load(&inline, me()).unwrap_err(),
        ConfigError::BadApiKey { .. }
    ));
}

/// `ca_file`, the pinned-key directory and each pinned-key file get the config's owner and
/// mode checks: whoever can write them decides which server or which device is trusted.
#[test]
fn issue9_item9_ca_file_and_pinned_keys_are_checked_like_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let other = Ownership {
        uid: me().uid.wrapping_add(4242),
    };
    let ca = write(dir.path(), "ca.pem", "pem", 0o644);
    let pins = dir.path().join("pins");
    fs::create_dir(&pins).unwrap();
    fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
    let base = |extra: &str| with_key(dir.path(), extra);
    let load = |extra: &str, owner: Ownership| {
        let conf = write(dir.path(), "c", &base(extra), 0o600);
        Config::load(&conf, owner)
    };
    let ca_line = format!("ca_file = \"{}\"\n", ca.display());
    let pins_line = format!("authorized_devices = \"{}\"\n", pins.display());
    assert!(load(&ca_line, me()).is_ok());
    assert!(load(&pins_line, me()).is_ok());

    for mode in [0o664, 0o646] {
        fs::set_permissions(&ca, fs::Permissions::from_mode(mode)).unwrap();
        let err = load(&ca_line, me()).unwrap_err();
        assert!(
            matches!(err, ConfigError::Writable { .. }),
            "{mode:o}: {err}"
        );
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
    fs::set_permissions(&ca, fs::Permissions::from_mode(0o644)).unwrap();
    // Not owned by root (the config file itself is checked first against `owner`, so
    // check the CA file alone through parse with that owner).
    let err = Config::parse(
        &dir.path().join("c"),
        &format!("server = \"https://x\"\napi_key = \"k\"\n{ca_line}"),
        other,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::NotOwnedByRoot { .. }), "{err}");
    let err = load("ca_file = \"/nonexistent/ca.pem\"\n", me()).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }), "{err}");

    for mode in [0o775, 0o757, 0o777] {
        fs::set_permissions(&pins, fs::Permissions::from_mode(mode)).unwrap();
        let err = load(&pins_line, me()).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{mode:o}: {err}");
    }
    fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
    let err = Config::parse(
        &dir.path().join("c"),
        &format!("server = \"https://x\"\napi_key = \"k\"\n{pins_line}"),
        other,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not root"), "{err}");

    // Each pinned-key file: owner and mode, and no name that leaves the directory.
    assert!(read_pinned_file(&pins, "alice", me()).unwrap().is_none());
    let alice = write(&pins, "alice", "# none\n", 0o644);
    assert!(read_pinned_file(&pins, "alice", me()).unwrap().is_some());
    fs::set_permissions(&alice, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        read_pinned_file(&pins, "alice", me()),
        Err(ConfigError::Writable { .. })
    ));
    fs::set_permissions(&alice, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        read_pinned_file(&pins, "alice", other),
        Err(ConfigError::NotOwnedByRoot { .. })
    ));
    for user in ["../alice", ".hidden", "a//b", "a/../b", "/a", ""] {
        assert!(read_pinned_file(&pins, user, me()).is_err(), "{user}");
    }
    // A `/` is a subdirectory (issue 10: one rule with the client), checked like the
    // directory: missing means not pinned; one others may write is refused.
    assert!(read_pinned_file(&pins, "kc/alice", me()).unwrap().is_none());
    let realm = pins.join("kc");
    fs::create_dir(&realm).unwrap();
    fs::set_permissions(&realm, fs::Permissions::from_mode(0o755)).unwrap();
    write(&realm, "alice", "# none\n", 0o644);
    assert!(read_pinned_file(&pins, "kc/alice", me()).unwrap().is_some());
    fs::set_permissions(&realm, fs::Permissions::from_mode(0o775)).unwrap();
    assert!(read_pinned_file(&pins, "kc/alice", me()).is_err());
}

/// Issue 10 item 3: the API key file gets the one secret rule of `pushauth_files`: any
/// permission bit for group or others is refused with the shared fix-it message (0610 and
/// 0620 used to pass or get another message), and the config, CA file and pinned keys keep
/// the "owned by root, not writable by others" rule.
#[test]
fn issue10_item3_pam_push_refuses_a_group_readable_api_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = with_key(dir.path(), "");
    let conf = write(dir.path(), "c", &text, 0o644);
    let key = dir.path().join("api-key");
    for mode in [0o640, 0o604, 0o610, 0o620, 0o660, 0o400 | 0o040] {
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
        let err = Config::load(&conf, me()).unwrap_err();
        assert!(
            matches!(&err, ConfigError::SecretReadable { path, .. } if path == &key),
            "{mode:o}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", key.display())),
            "{mode:o}: {err}"
        );
    }
    for mode in [0o600, 0o400] {
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(
            Config::load(&conf, me()).unwrap().api_key.as_str(),
            "secret-key"
        );
    }
    // The owner message is the shared one, naming root.
    let other = Ownership {
        uid: me().uid.wrapping_add(4242),
    };
    let err = Config::load(&conf, other).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("not root; chown root {}", conf.display())),
        "{err}"
    );
    // A config larger than 64 KiB is refused, naming the cap.
    let big = write(dir.path(), "big", &"#".repeat(70_000), 0o600);
    let err = Config::load(&big, me()).unwrap_err();
    assert!(matches!(err, ConfigError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
}

/// The client keys go through `pushauth_client::ClientSettings::validate`, the one
/// validation the IdP sidecar uses too: plain HTTP to another machine and a proxy that is
/// not `http://` are refused when the config is read, naming the key.
#[test]
fn issue10_item2_client_keys_use_the_shared_validation() {
    let dir = tempfile::tempdir().unwrap();
    let parse = |text: &str| Config::parse(&dir.path().join("c"), text, me());
    let key = "api_key = \"k\"\n";
    for (text, needle) in [
        ("server = \"http://push.example\"\n", "allow_insecure_http"),
        (
            "server = \"https://a\"\nproxy = \"socks5://p:1\"\n",
            "proxy",
        ),
        (
            "server = \"https://a\"\nconnect_timeout = 0\n",
            "connect_timeout",
        ),
        ("server = \"https://a?x\"\n", "https://"),
    ] {
        let err = parse(&format!("{text}{key}")).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{text}: {err}");
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    let cfg = parse(&format!(
        "server = \"http://push.example\"\nallow_insecure_http = true\n{key}"
    ))
    .unwrap();
    assert!(cfg.client_config().allow_insecure_http);
}

#[test]
fn debug_output_hides_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse(
        &dir.path().join("c"),
        "server = \"https://x\"\napi_key = \"super-secret\"\n",
        me(),
    )
    .unwrap();
    assert!(!format!("{cfg:?}").contains("super-secret"));
}

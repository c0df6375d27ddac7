//! Unit tests of the config: unknown keys, retention, webhook secrets, the example file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::limits::DAY_MS;
use super::*;

#[test]
fn unknown_keys_are_named() {
    let err = FileConfig::parse("listn = \"127.0.0.1:1\"\n", Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");
    let err = FileConfig::parse("[limits]\nmax_open = 3\n", Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("max_open"), "{err}");
    let ok = FileConfig::parse(
        "listen = \"127.0.0.1:9\"\n[limits]\nmax_open_per_user = 5\n",
        Path::new("x.toml"),
    )
    .unwrap();
    assert_eq!(ok.limits.unwrap().max_open_per_user, 5);
    assert_eq!(ok.limits.unwrap().window_secs, 600);
    let err = FileConfig::parse("[retention]\naudit = 3\n", Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("audit"), "{err}");
    let err = FileConfig::parse("[retention]\naudit_days = -1\n", Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("x.toml"), "{err}");
}

#[test]
fn issue9_item12_retention_has_defaults_and_zero_keeps() {
    let now = 1000 * DAY_MS;
    assert_eq!(
        Retention::default().cutoffs(now),
        (Some(910 * DAY_MS), Some(600 * DAY_MS))
    );
    assert_eq!(
        Retention::default().max_db_bytes(),
        Some(1024 * 1024 * 1024)
    );
    let keep = Retention {
        challenges_days: 0,
        audit_days: 0,
        max_db_mb: 0,
    };
    assert_eq!(keep.cutoffs(now), (None, None));
    assert_eq!(keep.max_db_bytes(), None);
    let retention = Retention {
        challenges_days: 30,
        audit_days: 0,
        ..Retention::default()
    };
    assert_eq!(retention.cutoffs(now), (Some(970 * DAY_MS), None));
    let huge = Retention {
        challenges_days: u64::MAX,
        audit_days: 1,
        ..Retention::default()
    };
    assert_eq!(
        huge.cutoffs(now),
        (Some(now - i64::MAX), Some(999 * DAY_MS))
    );
    let parsed = FileConfig::parse("[retention]\naudit_days = 0\n", Path::new("x.toml"))
        .unwrap()
        .retention
        .unwrap();
    assert_eq!((parsed.audit_days, parsed.challenges_days), (0, 90));
}

#[test]
fn issue9_item15_inline_webhook_secret_in_a_readable_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushauthd.toml");
    fs::write(
        &path,
        "[webhook]\nurl = \"http://127.0.0.1:1/\"\nsecret = \"s3cret\"\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = FileConfig::load(&path)
        .unwrap()
        .webhook_config()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chmod 600") && err.contains("secret_file"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let hook = FileConfig::load(&path)
        .unwrap()
        .webhook_config()
        .unwrap()
        .unwrap();
    assert!(!hook.include_user);
}

#[test]
fn issue9_item15_a_webhook_secret_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook-secret");
    fs::write(&secret, "s3cret\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
    let path = dir.path().join("pushauthd.toml");
    fs::write(
        &path,
        format!(
            "[webhook]\nurl = \"http://127.0.0.1:1/\"\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let err = FileConfig::load(&path)
        .unwrap()
        .webhook_config()
        .unwrap_err()
        .to_string();
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let hook = FileConfig::load(&path)
        .unwrap()
        .webhook_config()
        .unwrap()
        .unwrap();
    assert_eq!(hook.secret.as_str(), "s3cret");
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../../pushauthd.example.toml");
    let config = FileConfig::parse(text, Path::new("pushauthd.example.toml")).unwrap();
    assert_eq!(config.limits, Some(Limits::default()));
    assert_eq!(config.default_ttl_secs, Some(60));
    assert!(config.tls.is_some() && config.webhook.is_some());
    assert_eq!(config.retention, Some(Retention::default()));
    let push = config.web_push.unwrap().resolve().unwrap();
    assert_eq!(push.senders, 2);
    assert!(push.allow.check("https://ntfy.example.com/upX").is_ok());
    assert_eq!(config.code_digits, Some(CodeDigits::default()));
}

#[test]
fn issue11_code_digits_is_2_to_8_and_named_when_wrong() {
    for digits in 2..=8u64 {
        let ok =
            FileConfig::parse(&format!("code_digits = {digits}\n"), Path::new("x.toml")).unwrap();
        assert_eq!(ok.code_digits.map(CodeDigits::get), Some(digits as u8));
    }
    for bad in ["0", "1", "9", "-6", "256", "\"6\"", "6.0"] {
        let err = FileConfig::parse(&format!("code_digits = {bad}\n"), Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("code_digits"), "{bad}: {err}");
    }
    let err = FileConfig::parse("code_digits = 12\n", Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("2 to 8"), "{err}");
    assert_eq!(Limits::default().max_code_failures, 10);
    assert_eq!(
        ServerConfig::new("127.0.0.1:1".parse().unwrap(), "/x".into(), String::new())
            .code_digits
            .get(),
        6
    );
}

/// Issue 10 item 3: pushauthd's secrets go through the one rule of `pushauth_files`: the admin
/// token (serve and the `push` client), the webhook secret file and the config file holding a
/// secret inline refuse any group or other bit with the shared `chmod 600 <path>` message; the
/// config file itself may not be writable by group or others.
#[test]
fn issue10_item3_pushauthd_refuses_group_readable_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    let made = load_or_create_admin_token(&token).unwrap();
    assert_eq!(
        fs::metadata(&token).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(*read_admin_token(&token).unwrap(), *made);
    let fix = format!("chmod 600 {}", token.display());
    for mode in [0o640, 0o604, 0o610] {
        fs::set_permissions(&token, fs::Permissions::from_mode(mode)).unwrap();
        for err in [
            load_or_create_admin_token(&token).unwrap_err(),
            read_admin_token(&token).unwrap_err(),
        ] {
            assert!(matches!(err, ConfigError::AdminToken { .. }), "{err}");
            assert!(err.to_string().contains(&fix), "{mode:o}: {err}");
        }
    }

    let secret = dir.path().join("webhook-secret");
    fs::write(&secret, "s3cret\n").unwrap();
    let conf = dir.path().join("pushauthd.toml");
    fs::write(
        &conf,
        format!(
            "[webhook]\nurl = \"http://127.0.0.1:1/\"\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    for mode in [0o640, 0o620, 0o601] {
        fs::set_permissions(&secret, fs::Permissions::from_mode(mode)).unwrap();
        let err = FileConfig::load(&conf)
            .unwrap()
            .webhook_config()
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::File(pushauth_files::FileError::Readable { .. })
            ),
            "{mode:o}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", secret.display())),
            "{err}"
        );
    }

    // The config file: readable by all is fine, writable by group or others is not.
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o664)).unwrap();
    let err = FileConfig::load(&conf).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("chmod go-w {}", conf.display())),
        "{err}"
    );
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(FileConfig::load(&conf).is_ok());
    let err = FileConfig::load(&dir.path().join("absent.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn the_default_config_file_is_read_only_when_it_exists_and_none_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("pushauthd.toml");
    let named = dir.path().join("other.toml");
    assert_eq!(super::config_path(None, &default), None);
    assert_eq!(
        super::config_path(Some(&named), &default),
        Some(named.clone())
    );
    std::fs::write(&default, "").unwrap();
    assert_eq!(super::config_path(None, &default), Some(default.clone()));
    assert_eq!(super::config_path(Some(&named), &default), Some(named));
}

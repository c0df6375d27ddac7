//! Issue 13 review: which store the admin commands work on. Without `--config` they read the
//! packaged config file (here named by `PUSHAUTHD_CONFIG`, which overrides that path), so a
//! revoke reaches the server's store; they never create a store, and say which one they
//! looked at when it is not there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use pushauth_server::config::StoreConfig;

/// `pushauthd ARGS` with nothing of the test's environment naming a store or config.
fn pushauthd(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(args)
        .env_remove("PUSHAUTHD_CONFIG")
        .env_remove("PUSHAUTHD_STORE_URL")
        .env_remove("PUSHAUTHD_DATA_DIR")
        .env_remove("PUSHAUTHD_LISTEN")
        .env_remove("PUSHAUTHD_ADMIN_TOKEN_FILE")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_revoke_without_flags_reaches_the_store_of_the_config_file() {
    let srv = start();
    let device = srv.device("alice");
    assert_eq!(device.pending(&srv, 0).status, 200);
    // The site's config file names the server's store (PostgreSQL on a PostgreSQL run).
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("pushauthd.toml");
    let mut toml = format!("data_dir = {:?}\n", path_str(&srv.data_dir()));
    if let StoreConfig::Postgres(pg) = &srv.config.store {
        toml.push_str(&format!("[store]\nurl = {:?}\n", pg.url));
    }
    std::fs::write(&conf, toml).unwrap();
    let env = [("PUSHAUTHD_CONFIG", path_str(&conf))];

    let out = pushauthd(&["revoke", &device.id], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_error(&device.pending(&srv, 0), 403, "device_revoked");

    // --verbose says on stderr which store and which config file; stdout is unchanged.
    let quiet = pushauthd(&["devices", "alice"], &env);
    let loud = pushauthd(&["devices", "alice", "--verbose"], &env);
    assert!(loud.status.success(), "{}", text(&loud));
    assert_eq!(quiet.stdout, loud.stdout);
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("revoked"));
    let said = String::from_utf8_lossy(&loud.stderr);
    assert!(said.contains(path_str(&conf)), "{said}");
    let store = match &srv.config.store {
        StoreConfig::Postgres(pg) => pg.url.clone(),
        _ => path_str(&srv.data_dir().join("pushauthd.sqlite3")).to_owned(),
    };
    assert!(said.contains(&store), "{said}");
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet));
}

#[test]
fn admin_commands_never_create_a_store_and_name_the_one_they_looked_at() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let sqlite_url = format!("sqlite:{}", path_str(&empty));
    for place in [
        vec!["--data-dir", path_str(&missing)],
        vec!["--data-dir", path_str(&empty)],
        vec!["--store-url", &sqlite_url],
    ] {
        for command in [
            &["devices", "alice"][..],
            &["revoke", "dev1"],
            &["rp", "list"],
            &["rp", "add", "bastion"],
            &["audit"],
            &["unlock", "alice"],
            &["grace", "end", "alice"],
            &["backup-codes", "alice"],
            &["enroll", "alice"],
        ] {
            let out = pushauthd(&[command, &place[..]].concat(), &[]);
            let said = text(&out);
            assert!(!out.status.success(), "{command:?} {place:?}: {said}");
            assert!(said.contains("no pushauthd store"), "{said}");
            assert!(said.contains("pushauthd.sqlite3"), "{said}");
            assert!(
                said.contains(place[1].trim_start_matches("sqlite:")),
                "{said}"
            );
            assert!(said.contains("--config"), "{said}");
            assert!(
                !missing.exists(),
                "{command:?} created {}",
                missing.display()
            );
            assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "{command:?}");
        }
    }
    // migrate is the command that creates it; then the others work on it.
    let out = pushauthd(&["migrate", "--data-dir", path_str(&empty)], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pushauthd(&["rp", "list", "--data-dir", path_str(&empty)], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no relying parties\n");
}

#[test]
fn a_config_named_but_missing_is_an_error_not_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nope.toml");
    let out = pushauthd(&["rp", "list"], &[("PUSHAUTHD_CONFIG", path_str(&conf))]);
    assert!(!out.status.success());
    assert!(text(&out).contains(path_str(&conf)), "{}", text(&out));
}

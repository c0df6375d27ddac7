//! Issue 13: the `pushauthd` binary on a PostgreSQL store: `migrate` (and what it says), `serve
//! --no-migrate` on a database that is behind, a password in the URL refused, and the admin
//! commands through `--store-url`. Runs whenever PostgreSQL is installed (skipped, saying so,
//! when not).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::process::{Command, Output};

use pushauth_testkit::PgCluster;

fn pushauthd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(args)
        .env_remove("PUSHAUTHD_STORE_URL")
        .env_remove("PUSHAUTHD_CONFIG")
        .env_remove("PUSHAUTHD_DATA_DIR")
        .env_remove("PUSHAUTHD_LISTEN")
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

#[test]
fn issue13_migrate_no_migrate_and_admin_commands_on_postgresql() {
    if !PgCluster::available() && std::env::var_os(pushauth_testkit::REQUIRE_ENV).is_none() {
        eprintln!("SKIPPED issue13_migrate_no_migrate: PostgreSQL is not installed");
        return;
    }
    let pg = PgCluster::shared("pg_cli").unwrap();
    let name = format!("cli_{}", std::process::id());
    pg.create_database(&name);
    let url = pg.url(&name);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    // Behind: serve --no-migrate refuses and says what to do; nothing is created.
    let out = pushauthd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--store-url",
        &url,
        "--no-migrate",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("run pushauthd migrate"),
        "{}",
        text(&out)
    );
    assert_eq!(
        pg.psql_db(&name, "SELECT to_regclass('schema_version') IS NULL"),
        "t"
    );

    // An admin command on a database without the schema refuses, naming it, and creates
    // nothing (only migrate does).
    let out = pushauthd(&["rp", "add", "bastion", "--store-url", &url]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no pushauthd schema"), "{}", text(&out));
    assert!(text(&out).contains(&url), "{}", text(&out));
    assert_eq!(
        pg.psql_db(&name, "SELECT to_regclass('schema_version') IS NULL"),
        "t"
    );

    let out = pushauthd(&["migrate", "--store-url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("from version 0 to 11"),
        "{}",
        text(&out)
    );
    // Session 22: run before the replica's first `serve`, whose data directory does not exist
    // yet, it logged an error about the timeline file it could not write there.
    let missing = dir.path().join("not-yet");
    let out = pushauthd(&[
        "migrate",
        "--store-url",
        &url,
        "--data-dir",
        missing.to_str().unwrap(),
    ]);
    assert!(
        text(&out).contains("at version 11: nothing to do"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("ERROR"), "{}", text(&out));
    assert!(!missing.exists(), "migrate made the data directory");

    // A password in the URL is refused with the fix, and not echoed.
    let with_password = url.replacen("pushauth@", "pushauth:hunter2@", 1);
    let out = pushauthd(&["rp", "list", "--store-url", &with_password]);
    assert!(!out.status.success());
    assert!(text(&out).contains("password_file"), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));

    // The admin commands work on the database.
    let out = pushauthd(&["rp", "add", "bastion", "--store-url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pushauthd(&["rp", "list", "--store-url", &url]);
    assert!(text(&out).contains("bastion"), "{}", text(&out));
    assert_eq!(
        pg.psql_db(&name, "SELECT count(*) FROM relying_parties"),
        "1"
    );

    // Newer than the binary: refused by every command.
    pg.psql_db(&name, "UPDATE schema_version SET version = 99");
    let out = pushauthd(&["rp", "list", "--store-url", &url]);
    assert!(!out.status.success());
    assert!(text(&out).contains("version 99 is newer"), "{}", text(&out));
}

/// Newcomer walk n2: an admin command on an old primary (its timeline older than one the data
/// directory's `pg-timelines` saw) was told to "point to the server's store with --config",
/// which leads away from the fault. It gets the failover advice instead, and nothing is read.
#[test]
fn issue13_an_admin_command_on_an_old_primary_is_told_what_to_do() {
    if !PgCluster::available() && std::env::var_os(pushauth_testkit::REQUIRE_ENV).is_none() {
        eprintln!(
            "SKIPPED issue13_an_admin_command_on_an_old_primary: PostgreSQL is not installed"
        );
        return;
    }
    let pg = PgCluster::shared("pg_cli").unwrap();
    let name = format!("stale_{}", std::process::id());
    pg.create_database(&name);
    let url = pg.url(&name);
    let out = pushauthd(&["migrate", "--store-url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // This cluster is on timeline 1; the data directory has seen it on timeline 9.
    let cluster = pg.psql_db(&name, "SELECT system_identifier FROM pg_control_system()");
    std::fs::write(dir.path().join("pg-timelines"), format!("{cluster} 9\n")).unwrap();

    let out = pushauthd(&["rp", "list", "--data-dir", data, "--store-url", &url]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("older than timeline 9"), "{said}");
    assert!(
        said.contains("rebuild this server as its standby"),
        "{said}"
    );
    assert!(!said.contains("--config FILE"), "{said}");
    // The same database seen fresh is served: the refusal came from the timeline alone.
    std::fs::remove_file(dir.path().join("pg-timelines")).unwrap();
    let out = pushauthd(&["rp", "list", "--data-dir", data, "--store-url", &url]);
    assert!(out.status.success(), "{}", text(&out));
}

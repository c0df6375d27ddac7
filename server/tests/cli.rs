//! The `pushauthd` binary: config handling and the admin subcommands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pushauth_proto::{b64, Decision, DeviceSigningKey};
use pushauth_server::config::{load_or_create_admin_token, ConfigError};

fn pushauthd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(args)
        .env_remove("PUSHAUTHD_LISTEN")
        .env_remove("PUSHAUTHD_DATA_DIR")
        .env_remove("PUSHAUTHD_ADMIN_TOKEN_FILE")
        .env_remove("PUSHAUTHD_CONFIG")
        .output()
        .unwrap()
}

/// `pushauthd ARGS` on `srv`'s store: its data directory is in `args`; on a PostgreSQL run
/// `PUSHAUTHD_STORE_URL` names its database too.
fn pushauthd_on(srv: &pushauth_testkit::TestServer, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushauthd"));
    command
        .args(args)
        .env_remove("PUSHAUTHD_LISTEN")
        .env_remove("PUSHAUTHD_DATA_DIR")
        .env_remove("PUSHAUTHD_ADMIN_TOKEN_FILE")
        .env_remove("PUSHAUTHD_CONFIG");
    if let pushauth_server::config::StoreConfig::Postgres(pg) = &srv.config.store {
        command.env("PUSHAUTHD_STORE_URL", &pg.url);
    }
    command.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn config_file_typos_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pushauthd.toml");
    std::fs::write(&config, "listn = \"127.0.0.1:0\"\n").unwrap();
    let out = pushauthd(&["serve", "--config", path_str(&config)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listn"), "{err}");
    std::fs::write(&config, "[limits]\nmax_open_per_usr = 1\n").unwrap();
    let out = pushauthd(&["devices", "alice", "--config", path_str(&config)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_open_per_usr"));
}

#[test]
fn admin_token_file_is_created_private_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets/admin-token");
    let token = load_or_create_admin_token(&path).unwrap();
    assert!(token.len() >= 32);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(*load_or_create_admin_token(&path).unwrap(), *token);
    // group/world readable: refused, naming the fix
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = load_or_create_admin_token(&path).unwrap_err();
    assert!(matches!(err, ConfigError::AdminToken { .. }));
    assert!(err.to_string().contains("chmod 600"), "{err}");
    let out = pushauthd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        path_str(&dir.path().join("data")),
        "--admin-token-file",
        path_str(&path),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    // empty: refused
    std::fs::write(&path, "\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load_or_create_admin_token(&path)
        .unwrap_err()
        .to_string()
        .contains("empty"));
}

#[test]
fn serve_runs_without_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let token_file = dir.path().join("admin-token");
    // The listen address as a flag, the data dir and token file from the environment.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["serve", "--listen", &listen])
        .env("PUSHAUTHD_DATA_DIR", dir.path().join("data"))
        .env("PUSHAUTHD_ADMIN_TOKEN_FILE", &token_file)
        .env_remove("PUSHAUTHD_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = ureq::get(&format!("http://{listen}/healthz")).call() {
            healthy = r.status() == 200;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let token = std::fs::read_to_string(&token_file).unwrap_or_default();
    let admin = ureq::get(&format!("http://{listen}/v1/admin/audit"))
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .map(|r| r.status())
        .unwrap_or(0);
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(healthy, "server did not come up: {log}");
    assert_eq!(admin, 200, "the created admin token works");
    assert!(!log.contains(token.trim()), "the token must not be logged");
    assert!(log.contains("admin token"), "{log}");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let data_mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(data_mode & 0o777, 0o700);
}

#[test]
fn admin_subcommands_work_on_the_store() {
    let srv = start();
    let data = srv.data_dir();
    let data = path_str(&data);
    // rp add: the key works against the running server
    let out = stdout(&pushauthd_on(
        &srv,
        &["rp", "add", "bastion", "--data-dir", data],
    ));
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.contains('.'), "{out}");
    let r = srv.rp(&key, "GET", "/v1/users/alice/devices", None);
    assert_error(&r, 404, "unknown_user");
    let r = srv.rp("nope.nope", "GET", "/v1/users/alice/devices", None);
    assert_error(&r, 401, "unauthorized");
    // enroll: prints a link (and a QR code) whose token enrolls a device
    let out = stdout(&pushauthd_on(
        &srv,
        &[
            "enroll",
            "alice",
            "--data-dir",
            data,
            "--public-url",
            &srv.url,
        ],
    ));
    let link = out
        .lines()
        .find(|l| l.starts_with(&format!("{}/enroll?token=", srv.url)))
        .unwrap_or_else(|| panic!("no link in {out}"));
    assert!(
        out.contains('█') || out.contains('▀') || out.contains('▄'),
        "QR code"
    );
    let token = link.split("token=").nth(1).unwrap();
    let device_key = DeviceSigningKey::generate().unwrap();
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(token, &device_key, "cli phone")),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let device = Device {
        id: r.json["device_id"].as_str().unwrap().to_owned(),
        user: "alice".into(),
        key: device_key,
    };
    // devices lists it
    let out = stdout(&pushauthd_on(
        &srv,
        &["devices", "alice", "--data-dir", data],
    ));
    assert!(
        out.contains(&device.id) && out.contains("cli phone") && out.contains("active"),
        "{out}"
    );
    let out = pushauthd_on(&srv, &["devices", "nobody", "--data-dir", data]);
    assert!(!out.status.success());
    // revoke works, and the running server sees it
    assert_eq!(device.pending(&srv, 0).status, 200);
    let out = stdout(&pushauthd_on(
        &srv,
        &["revoke", &device.id, "--data-dir", data],
    ));
    assert!(out.contains(&device.id), "{out}");
    let r = device.pending(&srv, 0);
    assert_error(&r, 403, "device_revoked");
    let out = stdout(&pushauthd_on(
        &srv,
        &["devices", "alice", "--data-dir", data],
    ));
    assert!(out.contains("revoked"), "{out}");
    assert!(
        !pushauthd_on(&srv, &["revoke", "no-such-device", "--data-dir", data])
            .status
            .success()
    );
    // audit shows it all
    let out = stdout(&pushauthd_on(
        &srv,
        &["audit", "--limit", "20", "--data-dir", data],
    ));
    for kind in ["rp_created", "enrollment_created", "enrolled", "revoked"] {
        assert!(out.contains(kind), "{kind} missing from {out}");
    }
}

/// Session 24 newcomer walk: `push` on a host whose server runs from its own config file
/// found no admin token in the default data directory and said only that the file was
/// missing; it now names the options that find it, and sends nothing.
#[test]
fn push_without_the_admin_token_names_the_options_that_find_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("r1.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n", dir.path().join("data").display()),
    )
    .unwrap();
    let out = pushauthd(&[
        "push",
        "alice",
        "--server",
        "http://127.0.0.1:9",
        "--config",
        path_str(&config),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin-token"), "{err}");
    assert!(
        err.contains("--config FILE") && err.contains("--admin-token-file PATH"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "nothing made: {err}");
}

#[test]
fn push_sends_a_test_push_and_follows_it() {
    let srv = start();
    let token_file = srv.dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let device = srv.device("alice");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args([
            "push",
            "alice",
            "--server",
            &srv.url,
            "--admin-token-file",
            path_str(&token_file),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut code = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(c) = line.strip_prefix("Type this code on the device: ") {
            code = Some(c.trim().to_owned());
            break;
        }
    }
    let code = code.expect("push shows the code");
    // Six digits by default, shown in two groups ("482 913"); answered as shown.
    assert_eq!(code.len(), 7, "{code}");
    assert_eq!(code.as_bytes()[3], b' ', "{code}");
    let r = device.pending(&srv, 5);
    let listed = &r.json["challenges"][0];
    assert_eq!(listed["context"]["service"], "pushauthd-push");
    let challenge = Challenge {
        id: listed["id"].as_str().unwrap().to_owned(),
        user: "alice".into(),
        code: Some(code.clone()),
        rp_nonce: b64::decode_array(listed["rp_nonce"].as_str().unwrap(), "n").unwrap(),
        digest: b64::decode_array(listed["context_digest"].as_str().unwrap(), "d").unwrap(),
    };
    let r = device.answer(&srv, &challenge, Decision::Approve, &code);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("approved")), "{rest:?}");
}

/// Item 4, scenario: the admin revokes a leaked key with `pushauthd rp revoke` on the data
/// directory while the server runs (the server used to cache keys for ever): the very next
/// request with it is 401. `rp rotate` likewise: the old key is refused at once, the new one
/// works. `rp list` shows users and rights; `rp add` with no flags keeps its old meaning.
#[test]
fn issue9_item4_rp_list_revoke_rotate_through_the_data_dir_while_serving() {
    let srv = start();
    srv.device("alice");
    let data = srv.data_dir();
    let data = path_str(&data);
    let out = stdout(&pushauthd_on(
        &srv,
        &["rp", "add", "plain", "--data-dir", data],
    ));
    let plain = out.lines().last().unwrap().trim().to_owned();
    let out = stdout(&pushauthd_on(
        &srv,
        &[
            "rp",
            "add",
            "sidecar",
            "--user",
            "kc/*",
            "--user",
            "alice",
            "--enroll",
            "--bootstrap",
            "--data-dir",
            data,
        ],
    ));
    let sidecar = out.lines().last().unwrap().trim().to_owned();
    let sidecar_id = sidecar.split('.').next().unwrap().to_owned();
    let plain_id = plain.split('.').next().unwrap().to_owned();
    let list = stdout(&pushauthd_on(&srv, &["rp", "list", "--data-dir", data]));
    let line = |id: &str| {
        list.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {list}"))
            .to_owned()
    };
    assert!(line(&plain_id).contains("users=*\trights=push\t"), "{list}");
    assert!(line(&plain_id).contains("active"), "{list}");
    assert!(
        line(&sidecar_id).contains("users=kc/*,alice\trights=push,enroll,bootstrap"),
        "{list}"
    );
    // Both keys work (the server has now seen them).
    for key in [&plain, &sidecar] {
        let r = srv.rp(key, "GET", "/v1/users/alice/devices", None);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // rotate through the data dir: old key refused on the very next request
    let out = stdout(&pushauthd_on(
        &srv,
        &["rp", "rotate", &sidecar_id, "--data-dir", data],
    ));
    let rotated = out.lines().last().unwrap().trim().to_owned();
    assert!(rotated.starts_with(&format!("{sidecar_id}.")), "{out}");
    let r = srv.rp(&sidecar, "GET", "/v1/users/alice/devices", None);
    assert_error(&r, 401, "unauthorized");
    let r = srv.rp(&rotated, "GET", "/v1/users/alice/devices", None);
    assert_eq!(r.status, 200, "{}", r.text);
    // revoke through the data dir: refused on the very next request
    let out = stdout(&pushauthd_on(
        &srv,
        &["rp", "revoke", &plain_id, "--data-dir", data],
    ));
    assert!(out.contains("revoked relying party"), "{out}");
    let r = srv.rp(&plain, "GET", "/v1/users/alice/devices", None);
    assert_error(&r, 401, "unauthorized");
    let (r, _) = srv.create(&plain, "alice", serde_json::json!({}));
    assert_error(&r, 401, "unauthorized");
    let list = stdout(&pushauthd_on(&srv, &["rp", "list", "--data-dir", data]));
    assert!(
        list.lines()
            .find(|l| l.starts_with(&plain_id))
            .unwrap()
            .contains("revoked 20"),
        "{list}"
    );
    assert!(
        !pushauthd_on(&srv, &["rp", "rotate", &plain_id, "--data-dir", data])
            .status
            .success()
    );
    assert!(
        !pushauthd_on(&srv, &["rp", "revoke", "no-such-rp", "--data-dir", data])
            .status
            .success()
    );
    assert!(!pushauthd_on(
        &srv,
        &["rp", "add", "bad", "--user", "a*b", "--data-dir", data]
    )
    .status
    .success());
    let audit = stdout(&pushauthd_on(
        &srv,
        &["audit", "--limit", "50", "--data-dir", data],
    ));
    for kind in ["rp_created", "rp_rotated", "rp_revoked"] {
        assert!(audit.contains(kind), "{kind} missing from {audit}");
    }
}

/// The expiry `pushauthd enroll` printed, as Unix milliseconds.
fn printed_expiry(out: &str) -> i64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("Enrollment link for"))
        .unwrap_or_else(|| panic!("no link line in {out}"));
    let at = line
        .split("expires ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("):"))
        .unwrap_or_else(|| panic!("no expiry in {line}"));
    pushauth_server::clock::parse_rfc3339(at).unwrap()
}

#[test]
fn issue10_item1_cli_enroll_uses_configured_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("pushauthd.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nenrollment_ttl_secs = 3600\n",
            path_str(&data)
        ),
    )
    .unwrap();
    let now = || pushauth_server::clock::now_ms();
    let near = |at: i64, before: i64, secs: i64| {
        let want = before + secs * 1000;
        assert!(
            (want - 1000..=now() + secs * 1000 + 1000).contains(&at),
            "expires {at}, expected about {want}"
        );
    };
    let args = ["--public-url", "https://push.example"];
    // Admin commands never create the store: migrate does.
    stdout(&pushauthd(&["migrate", "--config", path_str(&config)]));
    // The configured lifetime, not the built-in 600 s.
    let before = now();
    let out = stdout(&pushauthd(
        &[
            &["enroll", "alice", "--config", path_str(&config)][..],
            &args[..],
        ]
        .concat(),
    ));
    near(printed_expiry(&out), before, 3600);
    // --ttl still wins.
    let before = now();
    let out = stdout(&pushauthd(
        &[
            &[
                "enroll",
                "alice",
                "--ttl",
                "120",
                "--config",
                path_str(&config),
            ][..],
            &args[..],
        ]
        .concat(),
    ));
    near(printed_expiry(&out), before, 120);
    // Without a config file: the server's default (what `serve` would use).
    let before = now();
    let out = stdout(&pushauthd(
        &[
            &["enroll", "bob", "--data-dir", path_str(&data)][..],
            &args[..],
        ]
        .concat(),
    ));
    let default = pushauth_server::ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        data.clone(),
        String::new(),
    )
    .enrollment_ttl_secs;
    near(
        printed_expiry(&out),
        before,
        i64::try_from(default).unwrap(),
    );
    // The same rules as the admin API: a hidden character, or a lifetime out of range, is
    // refused with the API's message, and nothing is issued.
    let out = pushauthd(
        &[
            &["enroll", "alice\u{200B}", "--data-dir", path_str(&data)][..],
            &args[..],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("user must be 1 to 256 printable characters")
    );
    let out = pushauthd(
        &[
            &[
                "enroll",
                "alice",
                "--ttl",
                "0",
                "--data-dir",
                path_str(&data),
            ][..],
            &args[..],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ttl_secs must be 1 to 604800"));
    let audit = stdout(&pushauthd(&["audit", "--data-dir", path_str(&data)]));
    assert_eq!(audit.matches("enrollment_created").count(), 3, "{audit}");
}

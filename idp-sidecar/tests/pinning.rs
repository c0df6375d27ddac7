//! Issue 10 item 2: the sidecar's pushauthd client settings are the shared
//! `pushauth_client::ClientSettings`, so SSO logins pin device keys like SSH and sudo do
//! (DESIGN.md: "a server that is broken into cannot approve"), and `proxy` and
//! `connect_timeout` reach the client. A real pushauthd (in process, on 127.0.0.1) and a
//! simulated device (the `pushauth-device` library).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pushauth_device::{Decision, DeviceClient};
use pushauth_idp_sidecar::config::FileConfig;
use pushauth_idp_sidecar::realms::{Realm, Realms};
use pushauth_idp_sidecar::{ResultToken, RunningSidecar, Settings};
use pushauth_proto::{Alg, DevicePublicKey, DeviceSigningKey};
use pushauth_testkit::{find_challenge, TestServer};
use serde_json::{json, Value};
use zeroize::Zeroizing;

const SECRET: &str = "shim-shared-secret-0123456789";
const NONCE: &str = "shim-nonce-0123456789abcdef";

/// One HTTP call: (status, JSON body or null).
fn call(method: &str, url: &str, bearer: &str, body: Option<Value>) -> (u16, Value) {
    let request = ureq::request(method, url)
        .timeout(Duration::from_secs(40))
        .set("Authorization", &format!("Bearer {bearer}"));
    let result = match body {
        Some(b) => request
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => request.call(),
    };
    let (status, response) = match result {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let text = response.into_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// pushauthd, one enrolled device for `alice`, and a sidecar whose client pins the keys in
/// `pins/alice`, written before the sidecar starts.
struct Env {
    _pins: tempfile::TempDir,
    server: TestServer,
    api_key: String,
    device: DeviceClient,
    sidecar: RunningSidecar,
}

impl Env {
    fn start(pin_the_device: bool) -> Env {
        Env::start_with(pin_the_device, "{username}")
    }

    /// As [`Env::start`], with the realm `demo` mapped by `template`; the pinned-key file is
    /// `pins/<mapped user>`, where a `/` is a subdirectory.
    fn start_with(pin_the_device: bool, template: &str) -> Env {
        Env::start_alg(pin_the_device, template, Alg::Ed25519)
    }

    /// As [`Env::start_with`], with alice's device key of `alg`; an unpinned key is then another
    /// key of the same algorithm.
    fn start_alg(pin_the_device: bool, template: &str, alg: Alg) -> Env {
        Env::start_tweaked(pin_the_device, template, alg, |_| {})
    }

    /// As [`Env::start_alg`], with `tweak` applied to the sidecar's settings before it starts.
    fn start_tweaked(
        pin_the_device: bool,
        template: &str,
        alg: Alg,
        tweak: impl FnOnce(&mut Settings),
    ) -> Env {
        let user = template
            .replace("{realm}", "demo")
            .replace("{username}", "alice");
        let server = TestServer::start();
        let api_key = server
            .add_rp(json!({"name": "sidecar", "enroll": true}))
            .api_key;
        let device = server.enroll_alg(&user, "alice-phone", alg);
        let device_key = device.signing_key().public_key();
        let (_, device) = device.into_parts();

        // alice's pinned keys: her device's, or only a key pushauthd never saw.
        let pins = tempfile::tempdir().unwrap();
        let pinned = if pin_the_device {
            device_key
        } else {
            DeviceSigningKey::generate_alg(alg).unwrap().public_key()
        };
        let pin_file = pins.path().join(&user);
        if let Some(parent) = pin_file.parent() {
            fs::create_dir_all(parent).unwrap();
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(
            &pin_file,
            format!(
                "# alice\n{} {} pinned\n",
                pinned.alg().as_str(),
                pinned.to_b64()
            ),
        )
        .unwrap();
        // Not writable by group or others: the client refuses such a pinned-key file.
        fs::set_permissions(&pin_file, fs::Permissions::from_mode(0o644)).unwrap();

        let mut settings = Settings::new(
            vec![server.url()],
            Zeroizing::new(api_key.clone()),
            Zeroizing::new(SECRET.into()),
            DeviceSigningKey::generate().unwrap(),
        );
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.realms = Realms::new([Realm {
            name: "demo".into(),
            template: template.into(),
            bootstrap: false,
        }])
        .unwrap();
        settings.login_ttl = Duration::from_secs(30);
        settings.client.authorized_devices_dir = Some(pins.path().to_path_buf());
        tweak(&mut settings);
        let sidecar = RunningSidecar::start(settings).unwrap();
        Env {
            _pins: pins,
            server,
            api_key,
            device,
            sidecar,
        }
    }

    fn shim(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            method,
            &format!("{}{path}", self.sidecar.url()),
            SECRET,
            body,
        )
    }

    /// Starts a login for alice, approves it on her device with the right code, and returns
    /// the login id and the sidecar's final state.
    fn approve_on_the_device(&self) -> (String, (u16, Value)) {
        let (status, login) = self.shim(
            "POST",
            "/v1/logins",
            Some(json!({"realm": "demo", "username": "alice", "nonce": NONCE,
                        "context": {"client": "app", "ip": "192.0.2.9"}})),
        );
        assert_eq!(status, 201, "{login}");
        let id = login["id"].as_str().unwrap().to_owned();
        let code = login["code"].as_str().unwrap().to_owned();
        let challenge = find_challenge(&self.device, &id);
        self.device
            .respond(&challenge, Decision::Approve, &code)
            .unwrap();
        let state = self.shim("GET", &format!("/v1/logins/{id}?wait=20"), None);
        (id, state)
    }

    /// pushauthd's own view of the challenge, asked with the sidecar's relying-party key.
    fn pushauthd_state(&self, id: &str) -> Value {
        self.server
            .rp(&self.api_key, "GET", &format!("/v1/challenges/{id}"), None)
            .ok()
            .json
    }

    fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey::from_wire("ed25519", self.sidecar.public_key()).unwrap()
    }
}

/// The device approves, pushauthd accepts (its challenge is `approved`), but the device's key is
/// not among alice's pinned keys: the sidecar's login ends as `error` (fails closed), with a
/// signed result whose outcome is `error`, never `approved`.
#[test]
fn issue10_item2_sso_unpinned_key_refused() {
    let env = Env::start(false);
    let (id, (status, state)) = env.approve_on_the_device();
    assert_eq!(env.pushauthd_state(&id)["state"], "approved");
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["state"], "error", "{state}");
    assert_eq!(
        state["message"], "the push could not be completed; the login fails closed",
        "{state}"
    );
    assert!(state.get("device_id").is_none(), "{state}");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.challenge_id, id);
    assert_eq!(token.outcome, "error");
    assert!(token.verify(&env.public_key()).is_ok());
    // Asking again changes nothing.
    let (_, again) = env.shim("GET", &format!("/v1/logins/{id}?wait=0"), None);
    assert_eq!(again["state"], "error", "{again}");
    let token: ResultToken = serde_json::from_value(again["result"].clone()).unwrap();
    assert_ne!(token.outcome, "approved");
}

/// The same login with the device's key pinned: approved, with an `approved` result token.
#[test]
fn issue10_item2_sso_pinned_key_accepted() {
    let env = Env::start(true);
    let (id, (status, state)) = env.approve_on_the_device();
    assert_eq!(env.pushauthd_state(&id)["state"], "approved");
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["state"], "approved", "{state}");
    assert_eq!(state["device_name"], "alice-phone");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.outcome, "approved");
    assert_eq!(token.user, "alice");
    assert!(token.verify(&env.public_key()).is_ok());
}

/// The default realm template `{realm}/{username}` pins through a realm subdirectory
/// (`pins/demo/alice`): an unpinned key is refused although pushauthd approved, the pinned key
/// is accepted. (Before, a `/` in the user name made every pinned SSO login fail.)
#[test]
fn issue10_item2_sso_pinning_with_the_default_realm_template() {
    let env = Env::start_with(false, "{realm}/{username}");
    let (id, (_, state)) = env.approve_on_the_device();
    assert_eq!(env.pushauthd_state(&id)["state"], "approved");
    assert_eq!(state["state"], "error", "{state}");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.outcome, "error");

    let env = Env::start_with(true, "{realm}/{username}");
    let (_, (_, state)) = env.approve_on_the_device();
    assert_eq!(state["state"], "approved", "{state}");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.outcome, "approved");
    assert_eq!(token.user, "demo/alice");
}

/// Issue 11: an SSO login approved on an es256 device (a phone's browser without Ed25519). With
/// its key pinned the login is approved and the sidecar's result token (Ed25519, the bytes the
/// Keycloak provider's Java check verifies) is unchanged and verifies; with only another P-256
/// key pinned the same approval ends in `error`.
#[test]
fn issue11_sso_es256_device_pinned_and_unpinned() {
    let env = Env::start_alg(true, "{username}", Alg::Es256);
    let (id, (status, state)) = env.approve_on_the_device();
    assert_eq!(env.pushauthd_state(&id)["state"], "approved");
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["state"], "approved", "{state}");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.outcome, "approved");
    assert!(token.verify(&env.public_key()).is_ok());
    assert_eq!(env.public_key().alg(), Alg::Ed25519);

    let env = Env::start_alg(false, "{username}", Alg::Es256);
    let (id, (_, state)) = env.approve_on_the_device();
    assert_eq!(env.pushauthd_state(&id)["state"], "approved");
    assert_eq!(state["state"], "error", "{state}");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.outcome, "error");
    assert!(token.verify(&env.public_key()).is_ok());
}

/// A file only its owner can read.
fn private(dir: &Path, name: &str, text: &str) -> PathBuf {
    pushauth_testkit::write_file(dir, name, text, 0o600)
}

/// `proxy`, `connect_timeout`, `authorized_devices`, `ca_file` and `allow_insecure_http` in the
/// sidecar's config reach its client configuration (the sidecar used to drop the first three);
/// the shared validation refuses what `pam_push` refuses, and an inline `api_key` is refused
/// (secrets live in their own 0600 files, never in the config file).
#[test]
fn issue10_item2_sidecar_config_keys_reach_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let key = private(dir.path(), "api-key", "rp-key-0123456789\n");
    let secret = private(dir.path(), "secret", "shim-secret-0123456789");
    let pins = dir.path().join("pins");
    fs::create_dir(&pins).unwrap();
    let base = format!(
        "api_key_file = \"{}\"\nshared_secret_file = \"{}\"\nsigning_key_file = \"{}\"\n",
        key.display(),
        secret.display(),
        dir.path().join("signing-key").display()
    );
    let realm = "[realms.corp]\nuser = \"{username}\"\n";
    let resolve = |client_keys: &str| {
        FileConfig::parse(
            &format!("{base}{client_keys}{realm}"),
            Path::new("sidecar.toml"),
        )
        .and_then(|file| file.resolve())
    };

    let settings = resolve(&format!(
        "servers = [\"https://push.example\", \"http://push2.example:8080\"]\n\
         allow_insecure_http = true\nproxy = \"http://proxy.example:3128\"\n\
         connect_timeout = 3\nca_file = \"/etc/pushauth/ca.pem\"\n\
         authorized_devices = \"{}\"\n",
        pins.display()
    ))
    .unwrap();
    assert_eq!(
        settings.client.proxy.as_deref(),
        Some("http://proxy.example:3128")
    );
    assert_eq!(settings.client.connect_timeout, Duration::from_secs(3));
    assert_eq!(
        settings.client.authorized_devices_dir.as_deref(),
        Some(pins.as_path())
    );
    assert_eq!(
        settings.client.ca_file.as_deref(),
        Some(Path::new("/etc/pushauth/ca.pem"))
    );
    assert!(settings.client.allow_insecure_http);
    assert_eq!(settings.client.servers.len(), 2);
    assert_eq!(settings.client.api_key.as_str(), "rp-key-0123456789");

    // Defaults: the client's 5 s connect timeout, no proxy, no pins; `server` (pam_push's
    // spelling) is accepted too.
    let settings = resolve("server = \"https://push.example\"\n").unwrap();
    assert_eq!(settings.client.connect_timeout, Duration::from_secs(5));
    assert!(settings.client.proxy.is_none());
    assert!(settings.client.authorized_devices_dir.is_none());

    for (client_keys, needle) in [
        (
            "servers = [\"http://push.example\"]\n",
            "allow_insecure_http",
        ),
        (
            "servers = [\"https://push.example\"]\nproxy = \"socks5://p:1\"\n",
            "proxy",
        ),
        (
            "servers = [\"https://push.example\"]\nconnect_timeout = 0\n",
            "connect_timeout",
        ),
        (
            "servers = [\"https://push.example\"]\nauthorized_devices = \"/nonexistent/pins\"\n",
            "authorized_devices",
        ),
        (
            "servers = [\"https://push.example\"]\nauthorized_devices = \"/dev/null\"\n",
            "authorized_devices",
        ),
        ("servers = []\n", "servers"),
        ("", "no server"),
    ] {
        let err = resolve(client_keys).unwrap_err().to_string();
        assert!(err.contains(needle), "{client_keys}: {err}");
    }
    // A pin directory others can write is refused at start.
    fs::set_permissions(&pins, fs::Permissions::from_mode(0o777)).unwrap();
    let err = resolve(&format!(
        "servers = [\"https://push.example\"]\nauthorized_devices = \"{}\"\n",
        pins.display()
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("authorized_devices") && err.contains("chmod"),
        "{err}"
    );
    let inline = FileConfig::parse(
        &format!(
            "servers = [\"https://push.example\"]\napi_key = \"rp-key-0123456789\"\n\
             shared_secret_file = \"{}\"\nsigning_key_file = \"{}\"\n{realm}",
            secret.display(),
            dir.path().join("signing-key").display()
        ),
        Path::new("sidecar.toml"),
    )
    .unwrap()
    .resolve()
    .unwrap_err()
    .to_string();
    assert!(inline.contains("api_key_file"), "{inline}");
}

/// Issue 12 review: the sidecar refused backup codes for every pinned user, with no way to
/// allow them (pam_push has `pinned_backup_codes`). The sidecar's config now has the same key:
/// off by default (a pinned user's code is refused before it is sent, and stays unused), on it
/// lets the code through.
#[test]
fn issue12_pinned_backup_codes_in_the_sidecar_config() {
    let codes = |env: &Env| -> Vec<String> {
        let r = env
            .server
            .admin("POST", "/v1/admin/users/alice/backup-codes", None);
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    };
    let verify = |env: &Env, code: &str| {
        env.shim(
            "POST",
            "/v1/backup-codes/verify",
            Some(json!({"realm": "demo", "username": "alice", "code": code, "nonce": NONCE})),
        )
    };
    // Off (the default): refused, and the code was never sent (it still works below).
    let env = Env::start(true);
    let set = codes(&env);
    let (status, answer) = verify(&env, &set[0]);
    assert_ne!(status, 200, "{answer}");
    assert!(answer["message"].to_string().contains("pinned"), "{answer}");
    let audit = env.server.admin("GET", "/v1/admin/audit", None).text;
    assert!(!audit.contains("backup_code_used"), "{audit}");
    assert!(!audit.contains("backup_code_refused"), "{audit}");
    // On: the same user's code is used.
    let env = Env::start_tweaked(true, "{username}", Alg::Ed25519, |s| {
        s.client.pinned_backup_codes = true;
    });
    let set = codes(&env);
    let (status, answer) = verify(&env, &set[0]);
    assert_eq!(status, 200, "{answer}");
    assert!(answer["replacement"].is_string(), "{answer}");

    // The config file's key reaches the client; absent, it is off.
    let dir = tempfile::tempdir().unwrap();
    let key = private(dir.path(), "api-key", "rp-key-0123456789\n");
    let secret = private(dir.path(), "secret", "shim-secret-0123456789");
    let resolve = |extra: &str| {
        let text = format!(
            "servers = [\"https://push.example\"]\napi_key_file = \"{}\"\n\
             shared_secret_file = \"{}\"\nsigning_key_file = \"{}\"\n{extra}\
             [realms.corp]\nuser = \"{{username}}\"\n",
            key.display(),
            secret.display(),
            dir.path().join("signing-key").display()
        );
        FileConfig::parse(&text, Path::new("sidecar.toml")).and_then(|f| f.resolve())
    };
    assert!(!resolve("").unwrap().client.pinned_backup_codes);
    assert!(
        resolve("pinned_backup_codes = true\n")
            .unwrap()
            .client
            .pinned_backup_codes
    );
    assert!(resolve("pinned_backup_codes = \"yes\"\n").is_err());
}

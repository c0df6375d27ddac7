//! pushauth-client against a real pushauthd on 127.0.0.1, with simulated devices.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use common::{dead_url, find_challenge, ssh_context, TestServer};
use pushauth_client::{Client, ClientConfig, ClientError, ErrorCode, Outcome, StartOptions};
use pushauth_device::Decision;

fn in_secs(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[test]
fn approve_with_the_right_code_is_approved() {
    let server = TestServer::start();
    let (profile, device) = server.enroll("alice", "alice's phone");
    let client = server.client();
    assert_eq!(client.devices("alice").unwrap()[0].id, profile.device_id);

    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let code = login
        .code
        .clone()
        .expect("number matching is on by default");
    assert_eq!(login.devices.len(), 1);
    let challenge = find_challenge(&device, &login.id);
    assert_eq!(challenge.context, ssh_context());
    assert!(challenge.code_required);
    device.ack(&challenge.id).unwrap();
    device
        .respond(&challenge, Decision::Approve, &code)
        .unwrap();
    assert_eq!(
        client.wait(&login, in_secs(10)).unwrap(),
        Outcome::Approved {
            device_id: profile.device_id,
            device_name: "alice's phone".into()
        }
    );
}

#[test]
fn deny_and_report_are_told_apart() {
    let server = TestServer::start();
    let (profile, device) = server.enroll("alice", "phone");
    let client = server.client();

    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let challenge = find_challenge(&device, &login.id);
    device.respond(&challenge, Decision::Deny, "").unwrap();
    assert_eq!(
        client.wait(&login, in_secs(10)).unwrap(),
        Outcome::Denied {
            device_id: profile.device_id.clone()
        }
    );

    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let challenge = find_challenge(&device, &login.id);
    device.respond(&challenge, Decision::Report, "").unwrap();
    assert_eq!(
        client.wait(&login, in_secs(10)).unwrap(),
        Outcome::Reported {
            device_id: profile.device_id
        }
    );
    // The report locks the user.
    match client.start("alice", &ssh_context(), &StartOptions::default()) {
        Err(ClientError::RateLimited { code, .. }) => assert_eq!(code, ErrorCode::UserLocked),
        other => panic!("expected user_locked, got {other:?}"),
    }
}

#[test]
fn wrong_code_is_code_mismatch() {
    let server = TestServer::start();
    let (profile, device) = server.enroll("alice", "phone");
    let client = server.client();
    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let code = login.code.clone().unwrap();
    let wrong = if code == "42" { "43" } else { "42" };
    let challenge = find_challenge(&device, &login.id);
    device
        .respond(&challenge, Decision::Approve, wrong)
        .unwrap();
    assert_eq!(
        client.wait(&login, in_secs(10)).unwrap(),
        Outcome::CodeMismatch {
            device_id: profile.device_id
        }
    );
}

#[test]
fn without_number_matching_approve_needs_no_code() {
    let server = TestServer::start();
    let (_, device) = server.enroll("alice", "phone");
    let client = server.client();
    let opts = StartOptions {
        number_matching: false,
        ..StartOptions::default()
    };
    let login = client.start("alice", &ssh_context(), &opts).unwrap();
    assert_eq!(login.code, None);
    let challenge = find_challenge(&device, &login.id);
    assert!(!challenge.code_required);
    device.respond(&challenge, Decision::Approve, "").unwrap();
    assert!(matches!(
        client.wait(&login, in_secs(10)).unwrap(),
        Outcome::Approved { .. }
    ));
}

#[test]
fn unanswered_challenge_expires() {
    let server = TestServer::start();
    server.enroll("alice", "phone");
    let client = server.client();
    let opts = StartOptions {
        ttl: Some(Duration::from_secs(1)),
        ..StartOptions::default()
    };
    let login = client.start("alice", &ssh_context(), &opts).unwrap();
    let started = Instant::now();
    assert_eq!(client.wait(&login, in_secs(15)).unwrap(), Outcome::Expired);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn cancelled_challenge_is_cancelled() {
    let server = TestServer::start();
    server.enroll("alice", "phone");
    let client = server.client();
    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    client.cancel(&login).unwrap();
    assert_eq!(client.wait(&login, in_secs(5)).unwrap(), Outcome::Cancelled);
    // A terminal challenge cannot be cancelled again.
    match client.cancel(&login) {
        Err(ClientError::Rejected { status, code, .. }) => {
            assert_eq!(status, 409);
            assert_eq!(code, Some(ErrorCode::WrongState));
        }
        other => panic!("expected 409 wrong_state, got {other:?}"),
    }
}

#[test]
fn short_deadline_times_out() {
    let server = TestServer::start();
    server.enroll("alice", "phone");
    let client = server.client();
    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    assert_eq!(client.wait(&login, deadline).unwrap(), Outcome::TimedOut);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn unknown_user_and_no_device() {
    let server = TestServer::start();
    let (profile, _) = server.enroll("alice", "phone");
    let client = server.client();
    assert!(matches!(
        client.start("nobody", &ssh_context(), &StartOptions::default()),
        Err(ClientError::UnknownUser)
    ));
    // Targeting a device the user does not have.
    let opts = StartOptions {
        devices: Some(vec!["no-such-device".into()]),
        ..StartOptions::default()
    };
    assert!(matches!(
        client.start("alice", &ssh_context(), &opts),
        Err(ClientError::NoDevice)
    ));
    // The user's only device revoked.
    server.admin(
        "DELETE",
        &format!("/v1/admin/devices/{}", profile.device_id),
        None,
    );
    assert!(matches!(
        client.start("alice", &ssh_context(), &StartOptions::default()),
        Err(ClientError::NoDevice)
    ));
}

#[test]
fn bad_api_key_is_unauthorized() {
    let server = TestServer::start();
    server.enroll("alice", "phone");
    let key = "not-the-key-at-all-4f1b2c";
    let client = Client::new(ClientConfig::new(vec![server.url.clone()], key)).unwrap();
    let err = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized), "{err:?}");
    assert!(!err.to_string().contains(key));
    assert!(!format!("{err:?}").contains(key));
    assert!(matches!(
        client.devices("alice"),
        Err(ClientError::Unauthorized)
    ));
}

#[test]
fn too_many_open_challenges_is_rate_limited() {
    let server = TestServer::start_with(|cfg| cfg.limits.max_open_per_user = 2);
    server.enroll("alice", "phone");
    let client = server.client();
    for _ in 0..2 {
        client
            .start("alice", &ssh_context(), &StartOptions::default())
            .unwrap();
    }
    match client.start("alice", &ssh_context(), &StartOptions::default()) {
        Err(ClientError::RateLimited { code, message }) => {
            assert_eq!(code, ErrorCode::TooManyOpenChallenges);
            assert!(!message.is_empty());
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[test]
fn nothing_listening_is_unreachable() {
    let client = Client::new(ClientConfig::new(vec![dead_url(), dead_url()], "k")).unwrap();
    assert!(matches!(
        client.start("alice", &ssh_context(), &StartOptions::default()),
        Err(ClientError::Unreachable(_))
    ));
    assert!(matches!(
        client.devices("alice"),
        Err(ClientError::Unreachable(_))
    ));
}

#[test]
fn fails_over_to_the_next_server() {
    let server = TestServer::start();
    let (_, device) = server.enroll("alice", "phone");
    let cfg = ClientConfig::new(vec![dead_url(), server.url.clone()], server.api_key());
    let client = Client::new(cfg).unwrap();
    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let challenge = find_challenge(&device, &login.id);
    device
        .respond(
            &challenge,
            Decision::Approve,
            login.code.as_deref().unwrap(),
        )
        .unwrap();
    assert!(matches!(
        client.wait(&login, in_secs(10)).unwrap(),
        Outcome::Approved { .. }
    ));
}

#[test]
fn pinned_keys_decide_whether_an_approval_counts() {
    let server = TestServer::start();
    let (profile, device) = server.enroll("alice", "phone");
    let pins = tempfile::tempdir().unwrap();
    let other = pushauth_proto::DeviceSigningKey::from_seed(&[1; 32]).public_key();
    fs::write(
        pins.path().join("alice"),
        format!("# alice\ned25519 {} old phone\n", other.to_b64()),
    )
    .unwrap();
    let mut cfg = ClientConfig::new(vec![server.url.clone()], server.api_key());
    cfg.authorized_devices_dir = Some(pins.path().to_path_buf());
    let client = Client::new(cfg).unwrap();

    let approve = |client: &Client| {
        let login = client
            .start("alice", &ssh_context(), &StartOptions::default())
            .unwrap();
        let challenge = find_challenge(&device, &login.id);
        device
            .respond(
                &challenge,
                Decision::Approve,
                login.code.as_deref().unwrap(),
            )
            .unwrap();
        client.wait(&login, in_secs(10))
    };
    // The server accepts the answer, but the key is not pinned.
    match approve(&client) {
        Err(ClientError::BadAnswer(msg)) => assert!(msg.contains("pinned"), "{msg}"),
        other => panic!("expected BadAnswer, got {other:?}"),
    }
    // Pin the device's real key.
    let key = profile.signing_key().unwrap().public_key();
    fs::write(
        pins.path().join("alice"),
        format!(
            "ed25519 {} old phone\ned25519 {} phone\n",
            other.to_b64(),
            key.to_b64()
        ),
    )
    .unwrap();
    assert!(matches!(approve(&client), Ok(Outcome::Approved { .. })));
    // A malformed pin file fails closed before any push.
    fs::write(pins.path().join("alice"), "ed25519 not-a-key\n").unwrap();
    assert!(matches!(
        client.start("alice", &ssh_context(), &StartOptions::default()),
        Err(ClientError::Config(_))
    ));
}

#[test]
fn server_restart_during_wait_loses_nothing() {
    let mut server = TestServer::start();
    let (profile, device) = server.enroll("alice", "phone");
    let client = server.client();
    let login = client
        .start("alice", &ssh_context(), &StartOptions::default())
        .unwrap();
    let outcome = thread::scope(|scope| {
        let waiter = scope.spawn(|| client.wait(&login, in_secs(30)));
        thread::sleep(Duration::from_millis(700));
        server.restart();
        // Let the waiter hit the restarted server's long poll, then answer.
        thread::sleep(Duration::from_millis(300));
        let challenge = find_challenge(&device, &login.id);
        device
            .respond(
                &challenge,
                Decision::Approve,
                login.code.as_deref().unwrap(),
            )
            .unwrap();
        waiter.join().unwrap()
    });
    assert_eq!(
        outcome.unwrap(),
        Outcome::Approved {
            device_id: profile.device_id,
            device_name: "phone".into()
        }
    );
}

#[test]
fn bad_configuration_is_refused() {
    assert!(matches!(
        Client::new(ClientConfig::new(vec![], "k")),
        Err(ClientError::Config(_))
    ));
    assert!(matches!(
        Client::new(ClientConfig::new(vec!["push.example.com".into()], "k")),
        Err(ClientError::Config(_))
    ));
    let mut cfg = ClientConfig::new(vec!["https://push.example.com".into()], "secret-key-xyz");
    cfg.proxy = Some("ftp://proxy".into());
    let err = Client::new(cfg.clone()).unwrap_err();
    assert!(matches!(err, ClientError::Config(_)), "{err:?}");
    cfg.proxy = None;
    cfg.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(matches!(
        Client::new(cfg.clone()),
        Err(ClientError::Config(_))
    ));
    assert!(!format!("{cfg:?}").contains("secret-key-xyz"));
}

/// Issue 11: an es256 device enrolled through pushauthd. Unpinned (the file lists only other
/// keys, one of them P-256) its approval is refused as not pinned; with an `es256 <key>` line the
/// same approval is accepted and names the device; the answer's ES256 signature was verified by
/// the client against the key pushauthd listed.
#[test]
fn issue11_es256_device_pinned_is_accepted_unpinned_is_refused() {
    let server = TestServer::start();
    let (profile, device) = server
        .0
        .enroll_alg("alice", "browser phone", pushauth_proto::Alg::Es256)
        .into_parts();
    assert_eq!(profile.alg, pushauth_proto::Alg::Es256);
    let key = profile.signing_key().unwrap().public_key();
    let listed = &server.client().devices("alice").unwrap()[0];
    assert_eq!(listed.alg, "es256");
    assert_eq!(listed.public_key, key.to_b64());

    let pins = tempfile::tempdir().unwrap();
    let other_es = pushauth_proto::DeviceSigningKey::generate_alg(pushauth_proto::Alg::Es256)
        .unwrap()
        .public_key();
    let other_ed = pushauth_proto::DeviceSigningKey::from_seed(&[1; 32]).public_key();
    fs::write(
        pins.path().join("alice"),
        format!(
            "es256 {} old phone\ned25519 {} laptop\n",
            other_es.to_b64(),
            other_ed.to_b64()
        ),
    )
    .unwrap();
    let mut cfg = ClientConfig::new(vec![server.url.clone()], server.api_key());
    cfg.authorized_devices_dir = Some(pins.path().to_path_buf());
    let client = Client::new(cfg).unwrap();
    let approve = |client: &Client| {
        let login = client
            .start("alice", &ssh_context(), &StartOptions::default())
            .unwrap();
        let challenge = find_challenge(&device, &login.id);
        device
            .respond(
                &challenge,
                Decision::Approve,
                login.code.as_deref().unwrap(),
            )
            .unwrap();
        client.wait(&login, in_secs(10))
    };
    match approve(&client) {
        Err(ClientError::BadAnswer(msg)) => assert!(msg.contains("pinned"), "{msg}"),
        other => panic!("expected BadAnswer, got {other:?}"),
    }
    fs::write(
        pins.path().join("alice"),
        format!(
            "es256 {} old phone\nes256 {} browser phone\n",
            other_es.to_b64(),
            key.to_b64()
        ),
    )
    .unwrap();
    assert_eq!(
        approve(&client).unwrap(),
        Outcome::Approved {
            device_id: profile.device_id.clone(),
            device_name: "browser phone".into()
        }
    );
}

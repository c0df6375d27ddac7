//! Issue 9 item 21: property tests for the login context pam_push builds from what PAM, sshd and
//! sudo hand it ([`build_context`], [`ssh_key_fingerprint`], [`sudo_command`]): the remote host
//! name, the tty, `SSH_AUTH_INFO_0` and sudo's argv are outside input (a reverse DNS name or a
//! file name on sudo's command line can hold anything).
//!
//! Properties: arbitrary facts never panic and always give a context the server accepts
//! ([`validate_context`]), so a hostile host name or argument can neither break the login nor show
//! the person something else; plain values arrive unchanged; a valid `SSH_AUTH_INFO_0` gives the
//! key's `ssh-keygen -l` fingerprint and a mangled one none.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use pam_push::context::{build_context, ssh_key_fingerprint, sudo_command, LoginFacts};
use proptest::prelude::*;
use pushauth_proto::context::validate_context;
use sha2::{Digest, Sha256};

/// Text with the characters that matter here: controls, bidi and zero-width, any code point.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', '\u{1B}', '\n', '\u{0}',
                    '\u{2028}', '\u{E000}', '\u{00AD}'
                ]),
                any::<char>(),
                "[a-z./ -]".prop_map(|s| s.chars().next().unwrap_or('a')),
            ],
            0..40,
        )
        .prop_map(String::from_iter),
        "[a-z]{1,10}".prop_map(|s| s.repeat(200)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn issue9_item21_pam_context_hostile_facts_give_a_valid_context(
        service in prop_oneof![Just("sudo".to_owned()), Just("sshd".to_owned()), hostile()],
        host in prop::option::of(hostile()),
        rhost in prop::option::of(hostile()),
        tty in prop::option::of(hostile()),
        auth in prop::option::of(hostile()),
        argv in prop::option::of(prop::collection::vec(hostile(), 0..5)),
    ) {
        let facts = LoginFacts { service: Some(service), host, rhost, tty, ssh_auth_info: auth, argv };
        let context = build_context(&facts);
        prop_assert_eq!(validate_context(&context), Ok(()), "{:?}", context);
    }

    #[test]
    fn issue9_item21_pam_context_plain_values_arrive_unchanged(
        rhost in "[a-z0-9][a-z0-9.:-]{0,40}",
        tty in "(pts/[0-9]{1,3}|ssh|tty[0-9])",
        args in prop::collection::vec("[a-zA-Z0-9_./=-]{1,12}", 1..5),
    ) {
        let mut argv = vec!["sudo".to_owned(), "-u".to_owned(), "root".to_owned(), "--".to_owned()];
        argv.extend(args.iter().cloned());
        let facts = LoginFacts {
            service: Some("sudo".into()),
            rhost: Some(rhost.clone()),
            tty: Some(tty.clone()),
            argv: Some(argv.clone()),
            ..LoginFacts::default()
        };
        let context = build_context(&facts);
        prop_assert_eq!(context.get("rhost"), Some(&rhost));
        prop_assert_eq!(context.get("tty"), Some(&tty));
        prop_assert_eq!(context.get("command"), Some(&args.join(" ")));
        prop_assert_eq!(sudo_command(&argv), Some(args.join(" ")));
    }

    #[test]
    fn issue9_item21_pam_context_ssh_fingerprints(
        blob in prop::collection::vec(any::<u8>(), 1..80),
        key_type in "(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa)",
        junk in hostile(),
        mangle in prop::sample::select(vec!["!", "\u{200B}", "==", "*"]),
    ) {
        let encoded = STANDARD.encode(&blob);
        let info = format!("publickey {key_type} {encoded}\n");
        let expected = format!("{key_type} SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)));
        prop_assert_eq!(ssh_key_fingerprint(&info), Some(expected));
        let _ = ssh_key_fingerprint(&junk);
        let mangled = format!("publickey {key_type} {}{mangle}{}\n", &encoded[..1], &encoded[1..]);
        prop_assert_eq!(ssh_key_fingerprint(&mangled), None, "{:?}", mangled);
    }
}

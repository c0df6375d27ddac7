//! Issue 9 item 21: property tests for device profiles (`load_profile`, `save_profile`,
//! `profile_path`): the TOML file holding a device's key.
//!
//! Properties: arbitrary file contents never panic and give a typed error naming the file;
//! every saved profile loads back equal; a misspelt or repeated key is refused naming it;
//! profile names never reach a file outside the directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;
use pushauth_device::profile::{load_profile, profile_path, save_profile};
use pushauth_device::{DeviceError, Profile};
use zeroize::Zeroizing;

fn write_private(dir: &Path, name: &str, text: &str) {
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, text).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        "https?://[a-z]{1,10}(:[1-9][0-9]{3})?(/[a-z]{1,5})?",
        "[ -~]{1,20}|\\PC{1,8}",
        "[A-Za-z0-9_-]{1,22}",
        "[ -~]{1,20}",
        any::<[u8; 32]>(),
        prop::option::of("(/[a-z]{1,6}){1,3}"),
        prop::sample::select(vec![
            pushauth_proto::Alg::Ed25519,
            pushauth_proto::Alg::Es256,
        ]),
    )
        .prop_map(|(server, user, device_id, name, seed, ca, alg)| Profile {
            server,
            user,
            device_id,
            name,
            alg,
            key_seed: Zeroizing::new(pushauth_proto::b64::encode(seed)),
            ca_file: ca.map(Into::into),
            offline: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn issue9_item21_profile_arbitrary_files_never_panic(
        text in prop_oneof![
            any::<String>(),
            "([a-z_]{1,10} = (\"[ -~]{0,20}\"|[0-9]{1,5}|true)\n){0,7}",
        ],
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        write_private(dir.path(), "p", &text);
        if let Err(err) = load_profile(dir.path(), "p") {
            prop_assert!(matches!(err, DeviceError::Profile(_)), "{:?}", err);
            prop_assert!(err.to_string().contains("p.toml"), "{}", err);
        }
    }

    #[test]
    fn issue9_item21_profile_saved_profiles_load_back_equal(p in profile()) {
        let dir = tempfile::tempdir().expect("tempdir");
        save_profile(dir.path(), "default", &p, false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = load_profile(dir.path(), "default").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, p);
    }

    #[test]
    fn issue9_item21_profile_misspelt_or_repeated_keys_are_refused(
        p in profile(),
        key in prop::sample::select(vec!["server", "user", "device_id", "name", "key_seed"]),
        typo in "[a-z]",
    ) {
        let text = toml::to_string(&p).expect("toml");
        let dir = tempfile::tempdir().expect("tempdir");
        let misspelt = format!("{key}{typo}");
        write_private(dir.path(), "a", &text.replacen(&format!("{key} = "), &format!("{misspelt} = "), 1));
        let err = load_profile(dir.path(), "a").expect_err("misspelt key accepted");
        prop_assert!(err.to_string().contains(&misspelt), "{}", err);
        write_private(dir.path(), "b", &format!("{key} = \"x\"\n{text}"));
        let err = load_profile(dir.path(), "b").expect_err("repeated key accepted");
        prop_assert!(err.to_string().contains("duplicate"), "{}", err);
    }

    #[test]
    fn issue9_item21_profile_names_never_leave_the_directory(name in any::<String>()) {
        let dir = Path::new("/nonexistent/profiles");
        if let Ok(path) = profile_path(dir, &name) {
            prop_assert_eq!(path.parent(), Some(dir));
            prop_assert!(!name.contains(['/', '\0']) && !name.starts_with('.'));
        }
    }
}

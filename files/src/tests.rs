//! Unit tests: each refusal, each write guarantee.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::*;

fn me() -> Owner {
    Owner::current()
}

fn other() -> Owner {
    match me() {
        Owner::Uid { uid, .. } => Owner::named(uid.wrapping_add(4242), "someone"),
        Owner::Any | Owner::RootOrCurrent => unreachable!(),
    }
}

fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn issue10_item3_private_secret_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o400] {
        let path = file(dir.path(), "s", "k3y\n", mode);
        let got = read(&path, &ReadPolicy::secret(me())).unwrap();
        assert_eq!(got.mode, mode);
        assert_eq!(got.into_text().unwrap().as_str(), "k3y\n");
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn issue10_item3_group_readable_secret_refused() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o640, 0o610, 0o620, 0o660] {
        let path = file(dir.path(), "s", "k3y", mode);
        let err = read(&path, &ReadPolicy::secret(me())).unwrap_err();
        assert!(matches!(err, FileError::Readable { .. }), "{mode:o}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(msg.contains("group"), "{msg}");
        assert!(!msg.contains("k3y"), "{msg}");
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn issue10_item3_world_readable_secret_refused() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o604, 0o644, 0o666, 0o601] {
        let path = file(dir.path(), "s", "k3y", mode);
        let err = read(&path, &ReadPolicy::secret(me())).unwrap_err();
        assert!(matches!(err, FileError::Readable { .. }), "{mode:o}: {err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::remove_file(&path).unwrap();
    }
    // A config file may be read by all, never written by others.
    let path = file(dir.path(), "c", "a = 1", 0o644);
    assert_eq!(read(&path, &ReadPolicy::config(me())).unwrap().mode, 0o644);
    for mode in [0o664, 0o646] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = read(&path, &ReadPolicy::config(me())).unwrap_err();
        assert!(matches!(err, FileError::Writable { .. }), "{mode:o}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("chmod go-w {}", path.display())),
            "{err}"
        );
    }
    // A config that turns out to hold a secret inline.
    let err = require_private(&path, 0o644).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    assert!(require_private(&path, 0o600).is_ok());
}

#[test]
fn issue10_item3_symlink_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = file(dir.path(), "target", "k3y", 0o600);
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    let policy = ReadPolicy::secret(me()).no_symlinks();
    let err = read(&link, &policy).unwrap_err();
    assert!(matches!(err, FileError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("is a symlink"), "{err}");
    assert!(read(&target, &policy).is_ok());
    // Followed by default: then the target is what is checked.
    assert!(read(&link, &ReadPolicy::secret(me())).is_ok());
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        read(&link, &ReadPolicy::secret(me())),
        Err(FileError::Readable { .. })
    ));
}

#[test]
fn issue10_item3_wrong_owner_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "s", "k3y", 0o600);
    let err = read(&path, &ReadPolicy::secret(other())).unwrap_err();
    assert!(matches!(err, FileError::WrongOwner { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("not someone; chown someone {}", path.display())),
        "{err}"
    );
    let root = Owner::named(4_000_000, "root");
    let err = read(&path, &ReadPolicy::config(root)).unwrap_err();
    assert!(err.to_string().contains("not root; chown root"), "{err}");
    // open() makes the same checks without reading.
    assert!(matches!(
        open(&path, &ReadPolicy::config(other())),
        Err(FileError::WrongOwner { .. })
    ));
    assert!(open(&path, &ReadPolicy::secret(me())).is_ok());
    // Only the mode counts with Owner::Any.
    assert!(read(&path, &ReadPolicy::secret(Owner::Any)).is_ok());
    assert!(check_dir(dir.path(), &other()).is_err());
}

#[test]
fn issue10_item3_oversized_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "s", &"x".repeat(4097), 0o600);
    let err = read(&path, &ReadPolicy::secret(me()).max_bytes(4096)).unwrap_err();
    assert!(
        matches!(err, FileError::TooLarge { max: 4096, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("is larger than 4096 bytes"),
        "{err}"
    );
    assert!(read(&path, &ReadPolicy::secret(me()).max_bytes(4097)).is_ok());
    let big = file(dir.path(), "big", &"x".repeat(70_000), 0o600);
    assert!(matches!(
        read(&big, &ReadPolicy::secret(me())),
        Err(FileError::TooLarge {
            max: MAX_FILE_BYTES,
            ..
        })
    ));
}

#[test]
fn issue10_item3_missing_directory_and_non_utf8_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = read(&dir.path().join("nope"), &ReadPolicy::secret(me())).unwrap_err();
    assert!(matches!(err, FileError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("is missing"), "{err}");
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        read(&sub, &ReadPolicy::secret(me())),
        Err(FileError::NotAFile { .. })
    ));
    let bin = dir.path().join("bin");
    fs::write(&bin, [0xff, 0xfe]).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o600)).unwrap();
    let contents = read(&bin, &ReadPolicy::secret(me())).unwrap();
    assert_eq!(contents.bytes(), &[0xff, 0xfe]);
    assert!(matches!(
        contents.into_text(),
        Err(FileError::NotUtf8 { .. })
    ));
}

#[test]
fn issue10_item3_create_new_does_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    write_new(&path, b"first").unwrap();
    let err = write_new(&path, b"second").unwrap_err();
    assert!(matches!(err, FileError::Exists { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"first");
    // Not through a symlink either, even a dangling one.
    let link = dir.path().join("link");
    symlink(dir.path().join("elsewhere"), &link).unwrap();
    assert!(write_new(&link, b"x").is_err());
    assert!(!dir.path().join("elsewhere").exists());
}

#[test]
fn issue10_item3_written_file_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    write_new(&path, b"one").unwrap();
    assert_eq!(mode_of(&path), 0o600);
    let fresh = dir.path().join("fresh");
    replace(&fresh, b"new").unwrap();
    assert_eq!(mode_of(&fresh), 0o600);
    // Replacing a looser file leaves a 0600 one, and no temporary file behind.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    replace(&path, b"two").unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(fs::read(&path).unwrap(), b"two");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(read(&path, &ReadPolicy::secret(me())).is_ok());
}

#[test]
fn issue10_item3_private_directories() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("a/b");
    create_private_dir(&made, &me()).unwrap();
    assert_eq!(mode_of(&made), 0o700);
    assert_eq!(mode_of(&dir.path().join("a")), 0o700);
    create_private_dir(&made, &me()).unwrap();
    fs::set_permissions(&made, fs::Permissions::from_mode(0o755)).unwrap();
    check_dir(&made, &me()).unwrap();
    for mode in [0o775, 0o757, 0o777] {
        fs::set_permissions(&made, fs::Permissions::from_mode(mode)).unwrap();
        let err = create_private_dir(&made, &me()).unwrap_err();
        assert!(matches!(err, FileError::Writable { .. }), "{mode:o}: {err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }
    let plain = file(dir.path(), "plain", "", 0o600);
    assert!(matches!(
        check_dir(&plain, &me()),
        Err(FileError::NotADirectory { .. })
    ));
    assert!(matches!(
        check_dir(&dir.path().join("none"), &me()),
        Err(FileError::NotFound { .. })
    ));
}

/// A file whose fstat size is 0 but which holds more (a /proc file): the buffer grows, the
/// whole text is read, and the cap still holds.
#[test]
fn issue10_item3_reads_past_the_fstat_size_within_the_cap() {
    let path = Path::new("/proc/self/status");
    let got = read(path, &ReadPolicy::config(Owner::Any)).unwrap();
    assert!(got.bytes().len() > 200, "{got:?}");
    assert!(got.into_text().unwrap().starts_with("Name:"));
    assert!(matches!(
        read(path, &ReadPolicy::config(Owner::Any).max_bytes(100)),
        Err(FileError::TooLarge { max: 100, .. })
    ));
}

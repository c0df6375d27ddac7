//! `--group NAME`: the members a local group lists, read through the system's group database
//! (NSS, so files, sssd and LDAP alike), as `getent group NAME` prints them. A user whose
//! primary group it is but who is not listed is not a member here: nothing enumerates the
//! password database (the same reading as pam_push's `%group` approvers).

/// The group's listed members, in the database's order.
///
/// # Errors
/// A message naming the group: no such group, or the group database could not be read.
pub fn members(name: &str) -> Result<Vec<String>, String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.mem),
        Ok(None) => Err(format!("--group {name}: no such group")),
        Err(e) => Err(format!(
            "--group {name}: the group database cannot be read ({e})"
        )),
    }
}

//! `pushauthd backup-codes USER [--count N]` (issue 12): a new set of backup codes, issued on
//! the store as `POST /v1/admin/users/{user}/backup-codes` issues it, printed once; with
//! `--void`, every code voided and none issued (`DELETE` on that path).

use std::io::Write;

use pushauth_proto::text::for_terminal;

use super::store_open::{load_file, open_store};
use super::{BackupCodesArgs, CliError};
use crate::clock;
use crate::config::BackupCodesConfig;
use crate::service::{self, backup_codes};
use crate::store::Store;

/// Issues the set (voiding the old) and prints it once, with what to do with it.
pub fn backup_codes(args: &BackupCodesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let default: BackupCodesConfig = file.backup_codes.unwrap_or_default();
    let count = backup_codes::check_count(args.count, default.count)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    let failed = |e: service::Error| match e {
        service::Error::UnknownUser => CliError::Failed(format!(
            "no user {:?}: enroll a device for them first (pushauthd enroll)",
            args.user
        )),
        service::Error::Store(e) => CliError::Store(e),
        other => CliError::Failed(other.to_string()),
    };
    if args.void {
        backup_codes::void(store, &args.user, "cli", clock::now_ms()).map_err(failed)?;
        writeln!(
            out,
            "Every backup code of {} is void; none was issued in their place (pushauthd \
             backup-codes {} issues a new set).",
            for_terminal(&args.user),
            for_terminal(&args.user)
        )?;
        return Ok(());
    }
    backup_codes::require_known(store, &args.user).map_err(failed)?;
    let set = backup_codes::draw_set(count).map_err(failed)?;
    let issued =
        backup_codes::store_set(store, &args.user, &set, "cli", clock::now_ms()).map_err(failed)?;
    writeln!(
        out,
        "New backup codes for {} (every earlier code no longer works):\n",
        for_terminal(&args.user)
    )?;
    for (i, code) in issued.codes.iter().enumerate() {
        writeln!(out, "  {:>2}. {code}", i + 1)?;
    }
    writeln!(
        out,
        "\nEach code works once, in place of approving a push (type it at the login prompt), or \
         to enroll a new phone. They are shown only now: print them or write them down and keep \
         them offline, away from the phone (not in a file on this machine)."
    )?;
    Ok(())
}

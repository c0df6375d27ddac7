//! `pushauthd store copy --from sqlite:PATH --to postgresql://…` (issue 13).

use std::io::Write;
use std::path::PathBuf;

use super::{CliError, StoreCopyArgs};
use crate::config::postgres::PgSettings;
use crate::store::postgres::{copy_from_sqlite, PgStore};

/// Copies the SQLite store into the (migrated, empty) PostgreSQL database and prints the rows
/// copied per table.
pub fn copy(args: &StoreCopyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let Some(from) = args.from.strip_prefix("sqlite:").filter(|p| !p.is_empty()) else {
        return Err(CliError::Failed(
            "--from must be sqlite:PATH, PATH the data directory holding pushauthd.sqlite3".into(),
        ));
    };
    let settings = PgSettings::parse(&args.to, args.password_file.as_deref(), Some(1))
        .map_err(|e| CliError::Failed(format!("--to: {e}")))?;
    let target = PgStore::open(&settings, true)?;
    let copied = copy_from_sqlite(&PathBuf::from(from), &target)?;
    for (table, rows) in &copied {
        writeln!(out, "{table}: {rows}")?;
    }
    writeln!(
        out,
        "copied; give every replica the data directory's offline-key and vapid-key files"
    )?;
    Ok(())
}

//! Backup codes (issue 12): one row per unused code (tag + Argon2id hash), the user's count of
//! consecutive wrong codes, and the relying-party approvals used to issue a set. Data access
//! only; the rules are in `service::backup_codes`.

use rusqlite::{params, OptionalExtension};

use super::connection::Db;
use crate::clock::Millis;
use crate::store::{BackupCodeFacts, StoreResult, StoredCode, UseCode};

/// [`Store::backup_code_facts`](crate::store::Store::backup_code_facts).
pub(super) fn facts<D: Db>(db: &D, user: &str, tag: &str) -> StoreResult<BackupCodeFacts> {
    db.read(|conn| {
        let known_user = conn
            .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
            .exists([user])?;
        if !known_user {
            return Ok(BackupCodeFacts::default());
        }
        let failures: u32 = conn
            .prepare_cached("SELECT count FROM backup_code_failures WHERE user = ?1")?
            .query_row([user], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let hash: Option<String> = conn
            .prepare_cached("SELECT hash FROM backup_codes WHERE user = ?1 AND tag = ?2")?
            .query_row([user, tag], |r| r.get(0))
            .optional()?;
        Ok(BackupCodeFacts {
            known_user,
            failures,
            hash,
        })
    })
}

/// [`Store::replace_backup_codes`](crate::store::Store::replace_backup_codes).
pub(super) fn replace<D: Db>(
    db: &D,
    user: &str,
    codes: &[StoredCode],
    now: Millis,
) -> StoreResult<bool> {
    db.write(|tx| {
        let known = tx
            .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
            .exists([user])?;
        if !known {
            return Ok(false);
        }
        tx.prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?
            .execute([user])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO backup_codes (user, tag, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for code in codes {
            insert.execute(params![user, code.tag, code.hash, now])?;
        }
        Ok(true)
    })
}

/// [`Store::use_backup_code`](crate::store::Store::use_backup_code).
pub(super) fn use_code<D: Db>(
    db: &D,
    user: &str,
    used_hash: &str,
    replacement: &StoredCode,
    now: Millis,
) -> StoreResult<UseCode> {
    db.write(|tx| {
        // Compare-and-set on the exact row read before the verify: of two uses of one code,
        // one changes it and the other finds it gone.
        let changed = tx
            .prepare_cached(
                "UPDATE backup_codes SET hash = ?4, created_at = ?5 \
                 WHERE user = ?1 AND tag = ?2 AND hash = ?3",
            )?
            .execute(params![
                user,
                replacement.tag,
                used_hash,
                replacement.hash,
                now
            ])?;
        if changed == 0 {
            return Ok(UseCode::Gone);
        }
        tx.prepare_cached("DELETE FROM backup_code_failures WHERE user = ?1")?
            .execute([user])?;
        let remaining: u32 = tx
            .prepare_cached("SELECT count(*) FROM backup_codes WHERE user = ?1")?
            .query_row([user], |r| r.get(0))?;
        Ok(UseCode::Used { remaining })
    })
}

/// [`Store::backup_code_failed`](crate::store::Store::backup_code_failed).
pub(super) fn failed<D: Db>(db: &D, user: &str) -> StoreResult<u32> {
    db.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO backup_code_failures (user, count) VALUES (?1, 1) \
             ON CONFLICT (user) DO UPDATE SET count = count + 1 RETURNING count",
        )?
        .query_row([user], |r| r.get(0))
    })
}

/// [`Store::use_backup_approval`](crate::store::Store::use_backup_approval).
pub(super) fn use_approval<D: Db>(
    db: &D,
    challenge_id: &str,
    user: &str,
    now: Millis,
) -> StoreResult<bool> {
    db.write(|tx| {
        let inserted = tx
            .prepare_cached(
                "INSERT INTO backup_code_approvals (challenge_id, user, used_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (challenge_id) DO NOTHING",
            )?
            .execute(params![challenge_id, user, now])?;
        Ok(inserted == 1)
    })
}

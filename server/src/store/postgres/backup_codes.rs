//! Backup codes (issue 12): one row per unused code (tag + Argon2id hash), the user's count of
//! consecutive wrong codes, and the relying-party approvals used to issue a set.

use super::db::Db;
use super::error::get;
use super::rows::count;
use crate::clock::Millis;
use crate::store::{BackupCodeFacts, StoreResult, StoredCode, UseCode};

/// [`Store::backup_code_facts`](crate::store::Store::backup_code_facts).
pub(super) fn facts<D: Db>(db: &D, user: &str, tag: &str) -> StoreResult<BackupCodeFacts> {
    if !super::rows::storable(user) || !super::rows::storable(tag) {
        return Ok(BackupCodeFacts::default());
    }
    db.read(|c| {
        if !c.exists("SELECT 1 FROM users WHERE name = $1", &[&user])? {
            return Ok(BackupCodeFacts::default());
        }
        let failures = c
            .opt(
                "SELECT count FROM backup_code_failures WHERE user_name = $1",
                &[&user],
            )?
            .map(|r| count(&r, 0))
            .transpose()?
            .unwrap_or(0);
        let hash: Option<String> = c
            .opt(
                "SELECT hash FROM backup_codes WHERE user_name = $1 AND tag = $2",
                &[&user, &tag],
            )?
            .map(|r| get(&r, 0))
            .transpose()?;
        Ok(BackupCodeFacts {
            known_user: true,
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
    let tags: Vec<&str> = codes.iter().map(|c| c.tag.as_str()).collect();
    let hashes: Vec<&str> = codes.iter().map(|c| c.hash.as_str()).collect();
    db.write(|c| {
        if !c.exists("SELECT 1 FROM users WHERE name = $1", &[&user])? {
            return Ok(false);
        }
        c.exec("DELETE FROM backup_codes WHERE user_name = $1", &[&user])?;
        c.exec(
            "INSERT INTO backup_codes (user_name, tag, hash, created_at) \
             SELECT $1, t, h, $4 FROM unnest($2::text[], $3::text[]) AS x(t, h)",
            &[&user, &tags, &hashes, &now],
        )?;
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
    db.write(|c| {
        // Compare-and-set on the exact row read before the verify: of two uses of one code,
        // one changes it and the other finds it gone.
        let changed = c.exec(
            "UPDATE backup_codes SET hash = $4, created_at = $5 \
             WHERE user_name = $1 AND tag = $2 AND hash = $3",
            &[&user, &replacement.tag, &used_hash, &replacement.hash, &now],
        )?;
        if changed == 0 {
            return Ok(UseCode::Gone);
        }
        c.exec(
            "DELETE FROM backup_code_failures WHERE user_name = $1",
            &[&user],
        )?;
        let remaining = count(
            &c.one(
                "SELECT count(*) FROM backup_codes WHERE user_name = $1",
                &[&user],
            )?,
            0,
        )?;
        Ok(UseCode::Used { remaining })
    })
}

/// [`Store::backup_code_failed`](crate::store::Store::backup_code_failed).
pub(super) fn failed<D: Db>(db: &D, user: &str) -> StoreResult<u32> {
    db.write(|c| {
        count(
            &c.one(
                "INSERT INTO backup_code_failures (user_name, count) VALUES ($1, 1) \
                 ON CONFLICT (user_name) DO UPDATE SET count = backup_code_failures.count + 1 \
                 RETURNING count",
                &[&user],
            )?,
            0,
        )
    })
}

/// [`Store::use_backup_approval`](crate::store::Store::use_backup_approval).
pub(super) fn use_approval<D: Db>(
    db: &D,
    challenge_id: &str,
    user: &str,
    now: Millis,
) -> StoreResult<bool> {
    db.write(|c| {
        let inserted = c.exec(
            "INSERT INTO backup_code_approvals (challenge_id, user_name, used_at) \
             VALUES ($1, $2, $3) ON CONFLICT (challenge_id) DO NOTHING",
            &[&challenge_id, &user, &now],
        )?;
        Ok(inserted == 1)
    })
}

//! Admin subcommands that work directly on the store (the server may be running: SQLite in WAL
//! mode takes a second writer).

use std::io::Write;
use std::net::SocketAddr;

use pushauth_proto::random;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use sha2::{Digest, Sha256};

use pushauth_proto::text::for_terminal;
use pushauth_proto::wire::CreateRelyingParty;

use super::{AuditArgs, CliError, DevicesArgs, EnrollArgs, RevokeArgs, RpAddArgs, StoreArgs};
use crate::api::admin::{enrollment_url, new_relying_party, MAX_ENROLLMENT_TTL_SECS, MAX_USER};
use crate::api::printable;
use crate::auth::hash_secret;
use crate::clock;
use crate::config::{FileConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use crate::store::sqlite::SqliteStore;
use crate::store::{RelyingPartyRecord, Store};

fn load_file(args: &StoreArgs) -> Result<FileConfig, CliError> {
    Ok(match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    })
}

fn open_store(args: &StoreArgs, file: &FileConfig) -> Result<SqliteStore, CliError> {
    let dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    Ok(SqliteStore::open(&dir)?)
}

/// The base URL links use: flag, then config `public_url`, then derived from `listen`.
pub fn base_url(flag: Option<&str>, file: &FileConfig) -> Result<String, CliError> {
    if let Some(url) = flag.or(file.public_url.as_deref()) {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let listen: SocketAddr = match file.listen {
        Some(listen) => listen,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|_| CliError::Failed("bad built-in listen address".into()))?,
    };
    let scheme = if file.tls.is_some() { "https" } else { "http" };
    Ok(format!("{scheme}://{listen}"))
}

pub fn enroll(args: &EnrollArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    if !printable(&args.user, MAX_USER) {
        return Err(CliError::Failed(format!(
            "user must be 1 to {MAX_USER} printable characters"
        )));
    }
    let ttl = args.ttl.or(file.enrollment_ttl_secs).unwrap_or(600);
    if ttl == 0 || ttl > MAX_ENROLLMENT_TTL_SECS {
        return Err(CliError::Failed(format!(
            "--ttl must be 1 to {MAX_ENROLLMENT_TTL_SECS} seconds"
        )));
    }
    let base = base_url(args.public_url.as_deref(), &file)?;
    let store = open_store(&args.store, &file)?;
    let token = random::secret_token().map_err(|e| CliError::Failed(e.to_string()))?;
    let token_hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let now = clock::now_ms();
    let expires_at = clock::ceil_to_second(now + i64::try_from(ttl * 1000).unwrap_or(i64::MAX));
    store.create_enrollment(&args.user, &token_hash, now, expires_at)?;
    let url = enrollment_url(&base, &token);
    writeln!(
        out,
        "Enrollment link for {} (single use, expires {}):",
        args.user,
        clock::rfc3339(expires_at)
    )?;
    writeln!(out, "{url}")?;
    match QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let image = code
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            writeln!(out, "{image}")?;
        }
        Err(e) => writeln!(out, "(no QR code: {e})")?,
    }
    Ok(())
}

pub fn devices(args: &DevicesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    let Some(devices) = store.user_devices(&args.user)? else {
        return Err(CliError::Failed(format!("unknown user {:?}", args.user)));
    };
    if devices.is_empty() {
        writeln!(out, "{} has no devices", args.user)?;
    }
    for d in devices {
        let status = match d.revoked_at {
            Some(at) => format!("revoked {}", clock::rfc3339(at)),
            None => "active".to_owned(),
        };
        let seen = d
            .last_seen_at
            .map_or_else(|| "never".to_owned(), clock::rfc3339);
        writeln!(
            out,
            "{}\t{}\t{}\tcreated {}\tlast seen {}\t{}\tsource {}\tvia {}\tapproved by {}",
            d.id,
            for_terminal(&d.name),
            d.alg,
            clock::rfc3339(d.created_at),
            seen,
            status,
            d.source.as_deref().unwrap_or("unknown"),
            d.via.as_deref().unwrap_or("unknown"),
            d.approved_by.as_deref().unwrap_or("none"),
        )?;
    }
    Ok(())
}

pub fn revoke(args: &RevokeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    match store.revoke_device(&args.device_id, "cli", clock::now_ms())? {
        Some(d) => {
            writeln!(out, "revoked device {} ({}) of {}", d.id, d.name, d.user)?;
            Ok(())
        }
        None => Err(CliError::Failed(format!(
            "no device with id {:?}",
            args.device_id
        ))),
    }
}

pub fn rp_add(args: &RpAddArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let req = CreateRelyingParty {
        name: args.name.clone(),
        users: if args.users.is_empty() {
            vec!["*".to_owned()]
        } else {
            args.users.clone()
        },
        enroll: args.enroll,
        bootstrap: args.bootstrap,
    };
    let (rp, api_key) = new_relying_party(&req).map_err(|e| CliError::Failed(e.message))?;
    let store = open_store(&args.store, &file)?;
    store.create_relying_party(&rp, clock::now_ms())?;
    writeln!(
        out,
        "relying party {} ({}): users {}, rights {}",
        rp.id,
        for_terminal(&rp.name),
        for_terminal(&rp.users.join(",")),
        rights(&rp)
    )?;
    writeln!(out, "API key (shown once; store it 0600):")?;
    writeln!(out, "{api_key}")?;
    Ok(())
}

fn rights(rp: &RelyingPartyRecord) -> String {
    let mut list = vec!["push"];
    if rp.enroll {
        list.push("enroll");
    }
    if rp.bootstrap {
        list.push("bootstrap");
    }
    list.join(",")
}

pub fn rp_list(args: &StoreArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(args)?;
    let store = open_store(args, &file)?;
    let all = store.list_relying_parties()?;
    if all.is_empty() {
        writeln!(out, "no relying parties")?;
    }
    for rp in all {
        let revoked = rp.revoked_at.map_or_else(
            || "active".to_owned(),
            |at| format!("revoked {}", clock::rfc3339(at)),
        );
        writeln!(
            out,
            "{}\t{}\tusers={}\trights={}\tcreated {}\t{}",
            rp.id,
            for_terminal(&rp.name),
            for_terminal(&rp.users.join(",")),
            rights(&rp),
            clock::rfc3339(rp.created_at),
            revoked
        )?;
    }
    Ok(())
}

pub fn rp_revoke(id: &str, args: &StoreArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(args)?;
    let store = open_store(args, &file)?;
    match store.revoke_relying_party(id, clock::now_ms())? {
        Some(rp) => {
            writeln!(
                out,
                "revoked relying party {} ({}); its key is refused from now on",
                rp.id,
                for_terminal(&rp.name)
            )?;
            Ok(())
        }
        None => Err(CliError::Failed(format!("no relying party with id {id:?}"))),
    }
}

pub fn rp_rotate(id: &str, args: &StoreArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(args)?;
    let store = open_store(args, &file)?;
    let secret = random::secret_token().map_err(|e| CliError::Failed(e.to_string()))?;
    let api_key = format!("{id}.{secret}");
    match store.rotate_relying_party(id, &hash_secret(&secret), clock::now_ms())? {
        None => Err(CliError::Failed(format!("no relying party with id {id:?}"))),
        Some(rp) if rp.revoked_at.is_some() => Err(CliError::Failed(format!(
            "relying party {id} is revoked; add a new one"
        ))),
        Some(rp) => {
            writeln!(
                out,
                "new key for relying party {} ({}); the old key is refused from now on",
                rp.id,
                for_terminal(&rp.name)
            )?;
            writeln!(out, "API key (shown once; store it 0600):")?;
            writeln!(out, "{api_key}")?;
            Ok(())
        }
    }
}

pub fn audit(args: &AuditArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    for e in store.list_audit(args.limit.clamp(1, 10_000), args.user.as_deref())? {
        let field = |name: &str, v: &Option<String>| {
            v.as_ref()
                .map(|v| format!(" {name}={v}"))
                .unwrap_or_default()
        };
        writeln!(
            out,
            "{}\t{}\t{}{}{}{}{}",
            e.id,
            e.at,
            e.kind,
            field("user", &e.user),
            field("device", &e.device_id),
            field("challenge", &e.challenge_id),
            field("detail", &e.detail),
        )?;
    }
    Ok(())
}

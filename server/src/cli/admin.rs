//! Admin subcommands that work directly on the store (the server may be running: SQLite in WAL
//! mode takes a second writer).

use std::io::Write;
use std::net::SocketAddr;

use pushauth_proto::text::for_terminal;
use pushauth_proto::wire::CreateRelyingParty;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

use super::store_open::{load_file, open_store, store_config, tell};
use super::{
    AuditArgs, CliError, DevicesArgs, EnrollArgs, RevokeArgs, RpAddArgs, StoreArgs, UnlockArgs,
};
use crate::clock;
use crate::config::{FileConfig, ServerConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use crate::service::enrollments::{self, enrollment_url};
use crate::service::{self, devices, grace, keys, users};
use crate::store::{RelyingPartyRecord, Store};

/// `pushauthd migrate`: brings the configured store's schema up to this binary's version.
pub fn migrate(args: &StoreArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(args)?;
    let (dir, store) = store_config(args, &file)?;
    tell(args, &store, &dir);
    let (found, now) = crate::store::open::migrate(&store, &dir)?;
    if found == now {
        writeln!(out, "schema at version {now}: nothing to do")?;
    } else {
        writeln!(out, "schema migrated from version {found} to {now}")?;
    }
    Ok(())
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

/// The server's enrollment link lifetime: the config file's `enrollment_ttl_secs`, else the
/// server's default (the one `serve` would use).
pub fn configured_enrollment_ttl(file: &FileConfig) -> u64 {
    file.enrollment_ttl_secs.unwrap_or_else(|| {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        ServerConfig::new(any, DEFAULT_DATA_DIR.into(), String::new()).enrollment_ttl_secs
    })
}

/// A service refusal as the person at the keyboard reads it.
fn refused(e: service::Error) -> CliError {
    match e {
        service::Error::Store(e) => CliError::Store(e),
        other => CliError::Failed(other.to_string()),
    }
}

/// `pushauthd enroll USER`: the administrator's enrollment link (and QR code), issued as
/// `POST /v1/admin/enrollments` issues it, living `--ttl` or the configured
/// `enrollment_ttl_secs`.
pub fn enroll(args: &EnrollArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let ttl = args.ttl.unwrap_or_else(|| configured_enrollment_ttl(&file));
    // Refused before the store is opened (or created).
    enrollments::check_admin_request(&args.user, ttl).map_err(refused)?;
    let base = base_url(args.public_url.as_deref(), &file)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    let issued = enrollments::issue(store, &args.user, ttl, clock::now_ms()).map_err(refused)?;
    let url = enrollment_url(&base, &issued.token);
    let expires_at = issued.expires_at;
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
    if let Some(note) = phone_note(&base) {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

/// Why a phone could not use a link on `base`, if it could not: the web app runs only in a
/// secure context (HTTPS, or a loopback address on the same machine), and a phone cannot reach
/// this computer's loopback address.
fn phone_note(base: &str) -> Option<&'static str> {
    let (scheme, rest) = base.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Some("this link names this computer's loopback address, which a phone cannot open; set public_url to the https:// name phones reach, in the config file that both `pushauthd serve` and this command read (--config), or pass --public-url to this command too (the flag given to serve does not reach it). The CLI device on this computer can use it.")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("the web app on a phone needs HTTPS (browsers give WebCrypto keys and notifications only to secure pages); serve pushauthd with --tls-cert/--tls-key or behind a TLS proxy and set public_url to its https:// name.")
    } else {
        None
    }
}

pub fn devices(args: &DevicesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    let devices = devices::of_user(store, &args.user).map_err(|e| match e {
        service::Error::UnknownUser => CliError::Failed(format!("unknown user {:?}", args.user)),
        other => refused(other),
    })?;
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
        // What a person compares with the phone's settings, and what an authorized_devices
        // line pins.
        let fingerprint =
            devices::device_key(&d).map_or_else(|_| "unusable key".to_owned(), |k| k.fingerprint());
        writeln!(
            out,
            "{}\t{}\t{}\tcreated {}\tlast seen {}\t{}\tsource {}\tvia {}\tapproved by {}\t{}\tkey {}",
            d.id,
            for_terminal(&d.name),
            d.alg,
            clock::rfc3339(d.created_at),
            seen,
            status,
            d.source.as_deref().unwrap_or("unknown"),
            d.via.as_deref().unwrap_or("unknown"),
            d.approved_by.as_deref().unwrap_or("none"),
            fingerprint,
            d.public_key,
        )?;
    }
    Ok(())
}

pub fn revoke(args: &RevokeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    let d =
        devices::revoke(store, &args.device_id, "cli", clock::now_ms()).map_err(|e| match e {
            service::Error::NotFound(_) => {
                CliError::Failed(format!("no device with id {:?}", args.device_id))
            }
            other => refused(other),
        })?;
    writeln!(out, "revoked device {} ({}) of {}", d.id, d.name, d.user)?;
    Ok(())
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
    let now = clock::now_ms();
    // Refused before the store is opened (or created).
    keys::check_new(&req).map_err(refused)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    let (rp, api_key) = keys::add(store, &req, now).map_err(refused)?;
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
    let store: &dyn Store = &*store;
    let all = keys::list(store).map_err(refused)?;
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
    let store: &dyn Store = &*store;
    let rp = keys::revoke(store, id, clock::now_ms()).map_err(|e| rp_refused(id, e))?;
    // Until then a replica may still use the record it read before (PostgreSQL).
    std::thread::sleep(store.relying_party_change_spread());
    writeln!(
        out,
        "revoked relying party {} ({}); its key is refused from now on",
        rp.id,
        for_terminal(&rp.name)
    )?;
    Ok(())
}

pub fn rp_rotate(id: &str, args: &StoreArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(args)?;
    let store = open_store(args, &file)?;
    let store: &dyn Store = &*store;
    let (rp, api_key) = keys::rotate(store, id, clock::now_ms()).map_err(|e| rp_refused(id, e))?;
    std::thread::sleep(store.relying_party_change_spread());
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

/// A refusal about relying party `id`.
fn rp_refused(id: &str, e: service::Error) -> CliError {
    match e {
        service::Error::NotFound(_) => CliError::Failed(format!("no relying party with id {id:?}")),
        service::Error::Conflict(_) => {
            CliError::Failed(format!("relying party {id} is revoked; add a new one"))
        }
        other => refused(other),
    }
}

pub fn audit(args: &AuditArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    for e in store.list_audit(args.limit.clamp(1, 10_000), args.user.as_deref())? {
        // Stored text (names, details) is escaped for the terminal.
        let field = |name: &str, v: &Option<String>| {
            v.as_ref()
                .map(|v| format!(" {name}={}", for_terminal(v)))
                .unwrap_or_default()
        };
        let count = if e.count > 1 {
            format!(" count={}", e.count)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{}\t{}\t{}{}{}{}{}{}",
            e.id,
            e.at,
            e.kind,
            field("user", &e.user),
            field("device", &e.device_id),
            field("challenge", &e.challenge_id),
            field("detail", &e.detail),
            count,
        )?;
    }
    Ok(())
}

/// `pushauthd unlock USER`: lifts the user's report lock-outs and wrong-code lock, and resets
/// their push counters and count of wrong codes.
pub fn unlock(args: &UnlockArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    users::unlock(store, &args.user, "pushauthd unlock", clock::now_ms()).map_err(|e| match e {
        service::Error::UnknownUser => CliError::Failed(format!("no user {:?}", args.user)),
        other => refused(other),
    })?;
    writeln!(
        out,
        "unlocked {}: report lock-outs, the wrong-code lock and the backup-code lock lifted, push \
         counters reset",
        for_terminal(&args.user)
    )?;
    Ok(())
}

/// `pushauthd grace end USER` (issue 12): ends every grace window of the user; their next
/// login pushes again.
pub fn grace_end(args: &UnlockArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let file = load_file(&args.store)?;
    let store = open_store(&args.store, &file)?;
    let store: &dyn Store = &*store;
    let who = grace::EndedBy {
        by: "pushauthd grace end",
        via: "cli",
        device: None,
        source: None,
    };
    grace::end(store, &args.user, who, clock::now_ms()).map_err(|e| match e {
        service::Error::UnknownUser => CliError::Failed(format!("no user {:?}", args.user)),
        other => refused(other),
    })?;
    writeln!(
        out,
        "ended every grace window of {}: their next login pushes again",
        for_terminal(&args.user)
    )?;
    Ok(())
}

#[cfg(test)]
mod phone_note_tests {
    use super::phone_note;

    #[test]
    fn issue11_enroll_says_when_a_phone_cannot_use_the_link() {
        for base in [
            "http://127.0.0.1:8443",
            "https://localhost:8443",
            "http://[::1]:8443",
            "https://push.localhost",
        ] {
            assert!(
                phone_note(base).is_some_and(|n| n.contains("loopback")),
                "{base}"
            );
        }
        assert!(phone_note("http://push.example.com").is_some_and(|n| n.contains("HTTPS")));
        assert_eq!(phone_note("https://push.example.com"), None);
        assert_eq!(phone_note("https://push.example.com:8443/base"), None);
    }
}

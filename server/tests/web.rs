//! The web app served by pushauthd (issue 11): the layout `/`, `/app/`, `/app/<file>`,
//! `/enroll`, the headers of every app response, gzip, revalidation, paths that must not
//! resolve, `[web] app_dir` and its file rules, and no enrollment token in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex, OnceLock};

use pushauth_testkit::{write_file, TestServer};
use sha2::{Digest, Sha256};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; manifest-src 'self'; worker-src 'self'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'none'";

/// A response with its headers, exactly as sent (no redirects followed, nothing decompressed).
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One GET over a plain socket. Not ureq: in a workspace build ureq's default `gzip` feature is
/// on, and it then asks for gzip itself and decompresses the answer, hiding what is tested here.
fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an answer head");
    let head = String::from_utf8(answer[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Got {
        status,
        headers,
        body,
    }
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One request written byte by byte (no client normalizes the path); returns the status line
/// and the whole answer.
fn raw(server: &TestServer, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn assert_app_headers(got: &Got, what: &str) {
    assert_eq!(got.header("content-security-policy"), Some(CSP), "{what}");
    assert_eq!(got.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(
        got.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        got.header("cross-origin-opener-policy"),
        Some("same-origin"),
        "{what}"
    );
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn issue11_every_built_in_file_is_served_with_the_app_headers_type_and_etag() {
    let server = TestServer::start();
    for asset in pushauth_webapp::assets() {
        let got = get(&format!("{}/app/{}", server.url, asset.path), &[]);
        let what = asset.path;
        assert_eq!(got.status, 200, "{what}");
        assert_eq!(got.body, asset.bytes, "{what}");
        assert_app_headers(&got, what);
        assert_eq!(got.header("cache-control"), Some("no-cache"), "{what}");
        let sha = hex::encode(Sha256::digest(&got.body));
        assert_eq!(
            got.header("etag"),
            Some(format!("\"{sha}\"").as_str()),
            "{what}"
        );
        assert_eq!(got.header("content-encoding"), None, "{what}");
        let expected = match asset.path.rsplit_once('.').unwrap().1 {
            "js" => "text/javascript; charset=utf-8",
            "html" => "text/html; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "webmanifest" => "application/manifest+json",
            "json" => "application/json",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            _ => asset.content_type,
        };
        assert_eq!(got.header("content-type"), Some(expected), "{what}");
    }
    // The worker may control the whole origin (it sandboxes pages outside the app).
    let sw = get(&format!("{}/app/sw.js", server.url), &[]);
    assert_eq!(sw.header("service-worker-allowed"), Some("/"));
    let other = get(&format!("{}/app/release.js", server.url), &[]);
    assert_eq!(other.header("service-worker-allowed"), None);
    // The page itself, at the directory address.
    let index = get(&format!("{}/app/", server.url), &[]);
    assert_eq!(index.status, 200);
    assert_eq!(
        index.body,
        pushauth_webapp::get("index.html").unwrap().bytes
    );
    assert_app_headers(&index, "/app/");
}

#[test]
fn issue11_gzip_variant_round_trips_and_revalidation_answers_304() {
    let server = TestServer::start();
    let url = format!("{}/app/sw.js", server.url);
    let plain = get(&url, &[]);
    let zipped = get(&url, &[("Accept-Encoding", "br, gzip")]);
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    assert_eq!(gunzip(&zipped.body), plain.body);
    assert_ne!(zipped.header("etag"), plain.header("etag"));
    // gzip refused by q=0: the plain bytes.
    let refused = get(&url, &[("Accept-Encoding", "gzip;q=0")]);
    assert_eq!(refused.header("content-encoding"), None);
    assert_eq!(refused.body, plain.body);
    // A browser revalidating with the tag it holds gets 304 and no body.
    let tag = plain.header("etag").unwrap().to_owned();
    let again = get(&url, &[("If-None-Match", &tag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_app_headers(&again, "304");
    // The plain tag names the gzip variant's content too (the service worker's audit asks so).
    let cross = get(
        &url,
        &[("If-None-Match", &tag), ("Accept-Encoding", "gzip")],
    );
    assert_eq!(cross.status, 304);
    let stale = get(&url, &[("If-None-Match", "\"0000\"")]);
    assert_eq!(stale.status, 200);
}

#[test]
fn issue11_root_redirects_and_enroll_serves_the_page() {
    let server = TestServer::start();
    for path in ["/", "/app"] {
        let got = get(&format!("{}{path}", server.url), &[]);
        assert_eq!(got.status, 302, "{path}");
        assert_eq!(got.header("location"), Some("/app/"), "{path}");
    }
    let got = get(&format!("{}/enroll?token=abc", server.url), &[]);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, pushauth_webapp::get("index.html").unwrap().bytes);
    assert_app_headers(&got, "/enroll");
    assert!(got.header("content-type").unwrap().starts_with("text/html"));
}

#[test]
fn issue11_paths_outside_the_app_or_unknown_are_404_and_list_nothing() {
    let server = TestServer::start();
    for target in [
        "/app/../Cargo.toml",
        "/app/..%2f..%2fCargo.toml",
        "/app/%2e%2e/%2e%2e/etc/passwd",
        "/app/..%5c..%5cCargo.toml",
        "/app/.hidden",
        "/app/nope.js",
        "/app/index.html/",
        "/app/sw.js%00.png",
        "/app//index.html",
        "/app/icons/",
        "/app/build.rs",
        "/app/src/lib.rs",
    ] {
        let (status, answer) = raw(&server, target);
        assert_eq!(status, 404, "{target}: {answer}");
        assert!(answer.contains("\"not_found\""), "{target}: {answer}");
        assert!(!answer.contains("[package]"), "{target}");
    }
}

#[test]
fn issue11_api_responses_carry_no_referrer_and_no_framing() {
    let server = TestServer::start();
    for path in ["/healthz", "/v1/device/challenges", "/nope"] {
        let got = get(&format!("{}{path}", server.url), &[]);
        assert_eq!(got.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(got.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            got.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            got.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'"),
            "{path}"
        );
    }
}

fn app_dir(parent: &std::path::Path) -> std::path::PathBuf {
    let dir = parent.join("app");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn issue11_app_dir_files_are_served_with_the_same_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = app_dir(tmp.path());
    write_file(&dir, "index.html", "<p>from app_dir</p>", 0o644);
    write_file(&dir, "app.js", "export const x = 1;\n", 0o644);
    std::fs::create_dir(dir.join("icons")).unwrap();
    std::fs::set_permissions(dir.join("icons"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write_file(&dir.join("icons"), "a.svg", "<svg/>", 0o644);
    let served = dir.clone();
    let server = TestServer::start_with(move |c| c.web.app_dir = Some(served));
    let index = get(&format!("{}/app/", server.url), &[]);
    assert_eq!(index.status, 200);
    assert_eq!(index.body, b"<p>from app_dir</p>");
    assert_app_headers(&index, "app_dir index");
    let sha = hex::encode(Sha256::digest(b"export const x = 1;\n"));
    let js = get(
        &format!("{}/app/app.js", server.url),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(js.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("content-encoding"), None);
    let svg = get(&format!("{}/app/icons/a.svg", server.url), &[]);
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    // Not in app_dir: 404, even though the built-in app has it.
    assert_eq!(get(&format!("{}/app/sw.js", server.url), &[]).status, 404);
}

#[test]
fn issue11_app_dir_files_others_could_change_are_not_served() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = app_dir(tmp.path());
    write_file(&dir, "index.html", "<p>ok</p>", 0o644);
    write_file(&dir, "app.js", "evil()", 0o666);
    write_file(tmp.path(), "outside.js", "outside()", 0o644);
    std::os::unix::fs::symlink(tmp.path().join("outside.js"), dir.join("link.js")).unwrap();
    std::fs::create_dir(dir.join("open")).unwrap();
    std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    write_file(&dir.join("open"), "x.js", "x()", 0o644);
    let served = dir.clone();
    let server = TestServer::start_with(move |c| c.web.app_dir = Some(served));
    for path in ["app.js", "link.js", "open/x.js"] {
        let got = get(&format!("{}/app/{path}", server.url), &[]);
        assert_eq!(got.status, 500, "{path}");
        let body = String::from_utf8_lossy(&got.body).into_owned();
        assert!(!body.contains("evil") && !body.contains("outside") && !body.contains("x()"));
    }
    assert_eq!(get(&format!("{}/app/", server.url), &[]).status, 200);
    // The directory itself turning group-writable stops everything.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    assert_eq!(get(&format!("{}/app/", server.url), &[]).status, 500);
}

#[test]
fn issue11_config_refuses_an_app_dir_others_can_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = app_dir(tmp.path());
    let text = format!("[web]\napp_dir = {:?}\n", dir.display().to_string());
    let file =
        pushauth_server::config::FileConfig::parse(&text, &tmp.path().join("c.toml")).unwrap();
    assert_eq!(
        file.web_config().unwrap().app_dir.as_deref(),
        Some(dir.as_path())
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = file.web_config().unwrap_err().to_string();
    assert!(err.contains("app_dir"), "{err}");
    let missing = format!(
        "[web]\napp_dir = {:?}\n",
        tmp.path().join("none").display().to_string()
    );
    let file =
        pushauth_server::config::FileConfig::parse(&missing, &tmp.path().join("c.toml")).unwrap();
    assert!(file.web_config().is_err());
    let unknown = "[web]\napp_dri = \"/x\"\n";
    assert!(
        pushauth_server::config::FileConfig::parse(unknown, &tmp.path().join("c.toml")).is_err()
    );
}

/// Log lines written while the test runs, from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn issue11_the_enrollment_token_never_reaches_the_log() {
    static LOG: OnceLock<Captured> = OnceLock::new();
    let log = LOG.get_or_init(Captured::default).clone();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // An index.html others may write makes /enroll fail, which is logged (with its path).
    let tmp = tempfile::tempdir().unwrap();
    let dir = app_dir(tmp.path());
    write_file(&dir, "index.html", "<p>x</p>", 0o666);
    let served = dir.clone();
    let server = TestServer::start_with(move |c| c.web.app_dir = Some(served));
    let secret = "TOKENSECRET0123456789abcdefghijklmnopqrstuv";
    let got = get(&format!("{}/enroll?token={secret}", server.url), &[]);
    assert_eq!(got.status, 500);
    write_file(&dir, "index.html", "<p>x</p>", 0o644);
    let ok = get(&format!("{}/enroll?token={secret}", server.url), &[]);
    assert_eq!(ok.status, 200);
    drop(server);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("request failed") && text.contains("/enroll"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("token="), "{text}");
}

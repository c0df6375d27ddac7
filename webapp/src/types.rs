// Shared by build.rs (through `include!`) and the library: one table of content types.

/// The `Content-Type` for a file name, by its extension; `None` for an extension the app may
/// not ship (the build refuses such a file, and pushauthd will not serve one from `app_dir`).
pub fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, ext)| ext)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        "sig" => "application/octet-stream",
        _ => return None,
    })
}

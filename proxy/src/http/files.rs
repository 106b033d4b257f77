//! The tracker's own files, and optionally a site, served from the shop's origin.
//!
//! - `GET {base}/{file}` from `--static-dir` (the built package: `salebeacon.js` the loader,
//!   `index.js`, `salebeacon_wasm.js`, `salebeacon_wasm_bg.wasm`), so the embed needs no
//!   third-party host, no CORS and no CSP exception beyond `'wasm-unsafe-eval'`. Every answer has
//!   the right MIME type (`application/wasm` lets the browser compile while downloading), a strong
//!   ETag (a revisit costs a 304), and caching by name: a content-hashed name
//!   (`app.3f9a1c0b.js`, `app-3f9a1c0b.wasm`) is immutable for a year; any other name is
//!   revalidated (`no-cache`), so a new release is picked up at once.
//! - `GET /...` from `--site-dir` (the demo storefront): `/` and folders map to `index.html`.
//! - A browser that accepts brotli gets the build's `<name>.br` copy when there is one (the build
//!   writes them at quality 11 for the tracker's files), with `Content-Encoding: br`: what a page
//!   downloads is then what the size table says.
//!
//! - The loader (`salebeacon.js`) is the one file whose answer depends on who asks. A request
//!   from a page on the proxy's own origin (`Sec-Fetch-Site: same-origin`) gets the loader built
//!   knowing whether a sale waits in that browser: `salebeacon.waiting.js` when the request carries
//!   the mark's cookie (`sb_wait`, written by the tracker while a sale waits; see
//!   [`salebeacon::contract::WAIT_COOKIE`]), `salebeacon.quiet.js` when it does not. So a quiet
//!   page's loader checks no browser storage at all (that check was most of its main-thread
//!   time). Any other request (a page on another origin, whose cookies this proxy cannot see; a
//!   browser that sends no Fetch Metadata; a package built before the variants existed) gets
//!   `salebeacon.js`, which checks the mark itself. Each answer has its own ETag, and `Vary:
//!   Cookie, Sec-Fetch-Site` says what it was chosen by; the loader is revalidated on every page
//!   (`no-cache`), so a browser never keeps one variant past the cookie's change.
//!
//! It sits outside the browser trust guard: a GET of a script carries no sale. What is served is
//! exactly the regular files inside the two folders, and nothing else: names are checked after
//! percent-decoding (one plain name for the tracker's files, `/`-separated plain segments for the
//! site; no separator inside a name, no `..`, no dot file, no NUL), and the path the file system
//! resolves (symlinks followed) must still be inside the folder (see [`Root`]).

use super::cookies;
use crate::config::ProxyConfig;
use crate::state::AppState;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use percent_encoding::percent_decode_str;
use salebeacon::contract::{LOADER_FILE, LOADER_QUIET, LOADER_WAITING, WAIT_COOKIE};
use std::path::PathBuf;

/// The static-file routes for `config` (none when no folder is configured).
pub fn routes(config: &ProxyConfig) -> Router<AppState> {
    let mut router = Router::new();
    if let Some(dir) = config.static_dir.clone() {
        let root = Root::new(dir);
        router = router.route(
            &format!("{}/{{file}}", config.base_path),
            // `Path` has already percent-decoded the name: `%2F` is a `/` here, and a name with a
            // separator is refused by `Root::file` like any other.
            get(move |Path(file): Path<String>, headers: HeaderMap| {
                let root = root.clone();
                async move {
                    if file != LOADER_FILE {
                        return serve(&root, &[file], false, &headers, VARY).await;
                    }
                    // The variant this request is owed, if the build has it; else the loader.
                    if let Some(variant) = loader_for(&headers) {
                        let r =
                            serve(&root, &[variant.to_owned()], false, &headers, LOADER_VARY).await;
                        if r.status() != StatusCode::NOT_FOUND {
                            return r;
                        }
                    }
                    serve(&root, &[file], false, &headers, LOADER_VARY).await
                }
            }),
        );
    }
    if let Some(site) = config.site_dir.clone() {
        let root = Root::new(site);
        router = router.fallback(get(move |uri: Uri, headers: HeaderMap| {
            let root = root.clone();
            async move {
                let path = uri.path();
                let mut segments = Vec::new();
                for raw in path.split('/').filter(|s| !s.is_empty()) {
                    match percent_decode_str(raw).decode_utf8() {
                        Ok(s) => segments.push(s.into_owned()),
                        Err(_) => return not_found(),
                    }
                }
                let index = path.ends_with('/') || segments.is_empty();
                serve(&root, &segments, index, &headers, VARY).await
            }
        }));
    }
    router
}

/// What every file's answer varies by: the brotli copy or the file itself.
const VARY: &str = "Accept-Encoding";
/// What the loader's answer varies by (see [`loader_for`]).
const LOADER_VARY: &str = "Accept-Encoding, Cookie, Sec-Fetch-Site";

/// The loader built for this request in place of [`LOADER_FILE`], when the proxy can know whether a
/// sale waits in the browser: only for a page on its own origin, whose cookies it sees.
fn loader_for(headers: &HeaderMap) -> Option<&'static str> {
    let same_origin = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"));
    same_origin.then(|| {
        if cookies::get(headers, WAIT_COOKIE).is_some() {
            LOADER_WAITING
        } else {
            LOADER_QUIET
        }
    })
}

/// A folder whose files may be served, and nothing outside it.
///
/// The check is total: every requested name is split into segments *after* percent-decoding,
/// and each segment must be a plain file name (no separator of any kind, no `..`, no dot file,
/// no NUL or control character, no drive letter). The joined path is then resolved by the file
/// system (`canonicalize`, which follows every symlink) and must still lie inside the folder's own
/// resolved path, so a symlink that points out of the folder is refused as well.
#[derive(Clone)]
struct Root {
    dir: PathBuf,
}

impl Root {
    fn new(dir: PathBuf) -> Self {
        Root { dir }
    }

    /// The file that `segments` (decoded) name inside this folder, if it is one; `index` asks for
    /// the `index.html` of the folder they name.
    async fn file(&self, segments: &[String], index: bool) -> Option<PathBuf> {
        if !segments.iter().all(|s| plain(s)) {
            return None;
        }
        let root = tokio::fs::canonicalize(&self.dir).await.ok()?;
        let mut path = root.clone();
        for s in segments {
            path.push(s);
        }
        if index {
            path.push("index.html");
        }
        let mut real = tokio::fs::canonicalize(&path).await.ok()?;
        if tokio::fs::metadata(&real).await.ok()?.is_dir() {
            real = tokio::fs::canonicalize(real.join("index.html"))
                .await
                .ok()?;
        }
        let meta = tokio::fs::metadata(&real).await.ok()?;
        (meta.is_file() && real.starts_with(&root)).then_some(real)
    }
}

impl Root {
    /// The build's brotli copy of `file` (a path [`Root::file`] returned), held to the same rule:
    /// a regular file that resolves inside the folder.
    async fn brotli_copy(&self, file: &std::path::Path) -> Option<PathBuf> {
        let root = tokio::fs::canonicalize(&self.dir).await.ok()?;
        let mut name = file.as_os_str().to_owned();
        name.push(".br");
        let real = tokio::fs::canonicalize(PathBuf::from(name)).await.ok()?;
        let meta = tokio::fs::metadata(&real).await.ok()?;
        (meta.is_file() && real.starts_with(&root)).then_some(real)
    }
}

/// Whether a decoded path segment is a plain file or folder name.
fn plain(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && !segment
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// The MIME type for a file name.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("ts") => "text/plain; charset=utf-8",
        Some("md" | "txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether a file name carries a content hash (8+ hex digits between `.`/`-` and `.`).
pub fn is_hashed(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.rsplit(['.', '-'])
        .next()
        .is_some_and(|h| h.len() >= 8 && h != stem && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn serve(
    root: &Root,
    segments: &[String],
    index: bool,
    headers: &HeaderMap,
    vary: &'static str,
) -> Response {
    let Some(path) = root.file(segments, index).await else {
        return not_found();
    };
    let Ok(mut bytes) = tokio::fs::read(&path).await else {
        return not_found();
    };
    // A brotli copy made by the build (`name.br`, quality 11) when the browser takes brotli: the
    // bytes a page really downloads. The ETag stays the file's own, so revalidation is the same.
    let takes_br = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|e| {
                let mut parts = e.split(';');
                parts
                    .next()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("br"))
                    && !parts.any(|q| q.trim().replace(' ', "") == "q=0")
            })
        });
    let mut br = None;
    if takes_br {
        if let Some(compressed) = root.brotli_copy(&path).await {
            br = tokio::fs::read(&compressed).await.ok();
        }
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let etag: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The ETag names the content in its encoding: the brotli bytes have their own.
    let etag = if br.is_some() {
        format!("\"{etag}-br\"")
    } else {
        format!("\"{etag}\"")
    };
    let cache = if is_hashed(&name) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&name)),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    out.insert(header::VARY, HeaderValue::from_static(vary));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    if matches {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    if let Some(b) = br {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        bytes = b;
    }
    (StatusCode::OK, out, bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert!(is_hashed("salebeacon_wasm_bg.3f9a1c0b.wasm"));
        assert!(is_hashed("index-3f9a1c0bde.js"));
        assert!(!is_hashed("salebeacon.js"));
        assert!(!is_hashed("salebeacon_wasm_bg.wasm"));
        assert!(!is_hashed("deadbeef.js"), "a whole name is not a hash");
        assert!(!is_hashed("app.3f9a.js"));
    }

    #[test]
    fn types() {
        assert_eq!(content_type("x.wasm"), "application/wasm");
        assert_eq!(
            content_type("salebeacon.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("README"), "application/octet-stream");
    }

    #[test]
    fn the_loader_is_chosen_by_origin_and_the_mark_cookie() {
        let ask = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            loader_for(&h)
        };
        assert_eq!(
            ask(&[("sec-fetch-site", "same-origin")]),
            Some(LOADER_QUIET)
        );
        assert_eq!(
            ask(&[
                ("sec-fetch-site", "same-origin"),
                ("cookie", "a=1; sb_wait=1")
            ]),
            Some(LOADER_WAITING)
        );
        // Cookies may come in several headers.
        assert_eq!(
            ask(&[
                ("sec-fetch-site", "same-origin"),
                ("cookie", "a=1"),
                ("cookie", "sb_wait=1")
            ]),
            Some(LOADER_WAITING)
        );
        assert_eq!(
            ask(&[
                ("sec-fetch-site", "same-origin"),
                ("cookie", "sb_waiting=1")
            ]),
            Some(LOADER_QUIET),
            "names match exactly"
        );
        // Another origin (whose cookies the proxy cannot see), or no Fetch Metadata: the loader
        // that checks for itself.
        for site in ["same-site", "cross-site", "none"] {
            assert_eq!(
                ask(&[("sec-fetch-site", site), ("cookie", "sb_wait=1")]),
                None
            );
        }
        assert_eq!(ask(&[("cookie", "sb_wait=1")]), None);
        assert_eq!(ask(&[]), None);
    }

    #[test]
    fn only_plain_segments() {
        assert!(plain("index.html"));
        assert!(!plain(".."));
        assert!(!plain(".env"));
        assert!(!plain("a\\b"));
        assert!(!plain("a/b"));
        assert!(!plain("/etc"));
        assert!(!plain("a\0b"));
        assert!(!plain("C:x"));
        assert!(!plain("."));
        assert!(!plain(""));
    }
}

//! The site folder at `/`: the demo storefront, or a test's temporary copy with extra pages.
//!
//! What is served is exactly the regular files inside the folder, the same rule the proxy applies
//! to its own folders: each path segment is percent-decoded and must then be a plain name (no
//! separator of any kind — so `%2F` and `%5C` are refused —, no `..`, no dot file, no control
//! character), and the path the file system resolves (symlinks followed) must still be inside the
//! folder's own resolved path. `/` and folders map to their `index.html`.
//!
//! HTML pages get the tests' script (see [`crate::inject`]); `?csp=1` on a page adds the strict
//! policy the tracker is built for as a header, [`STRICT_CSP`], plus that script's hash. Every
//! answer is `no-cache`, so a test never sees a stale page.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use crate::inject::{add_hash_to_policy, Injection};

/// The policy `?csp=1` adds (README, "Content Security Policy").
pub const STRICT_CSP: &str = "script-src 'self' 'wasm-unsafe-eval'";

/// The MIME type for a file name.
pub fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
    {
        Some(ext) => match ext.as_str() {
            "html" | "htm" => "text/html; charset=utf-8",
            "js" | "mjs" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "json" | "map" => "application/json",
            "wasm" => "application/wasm",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "gif" => "image/gif",
            "jpg" | "jpeg" => "image/jpeg",
            "webp" => "image/webp",
            "ico" => "image/x-icon",
            "woff2" => "font/woff2",
            "txt" | "md" | "ts" => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        },
        None => "application/octet-stream",
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

/// The site folder.
#[derive(Debug, Clone)]
pub struct Site {
    dir: PathBuf,
}

impl Site {
    pub fn new(dir: PathBuf) -> Site {
        Site { dir }
    }

    /// The file the URL path names inside the folder, if it is one.
    pub async fn file(&self, path: &str) -> Option<PathBuf> {
        let mut segments = Vec::new();
        for raw in path.split('/').filter(|s| !s.is_empty()) {
            let s = percent_decode_str(raw).decode_utf8().ok()?;
            if !plain(&s) {
                return None;
            }
            segments.push(s.into_owned());
        }
        let root = tokio::fs::canonicalize(&self.dir).await.ok()?;
        let mut wanted = root.clone();
        wanted.extend(&segments);
        if path.ends_with('/') || segments.is_empty() {
            wanted.push("index.html");
        }
        let mut real = tokio::fs::canonicalize(&wanted).await.ok()?;
        if tokio::fs::metadata(&real).await.ok()?.is_dir() {
            real = tokio::fs::canonicalize(real.join("index.html"))
                .await
                .ok()?;
        }
        let meta = tokio::fs::metadata(&real).await.ok()?;
        (meta.is_file() && real.starts_with(&root)).then_some(real)
    }

    /// Answers a GET or HEAD for a page or file of the site.
    pub async fn respond(
        &self,
        method: &Method,
        uri: &Uri,
        inject: Option<&Injection>,
    ) -> Response {
        if !(method == Method::GET || method == Method::HEAD) {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, HEAD")],
                "method not allowed\n",
            )
                .into_response();
        }
        let Some(file) = self.file(uri.path()).await else {
            return not_found();
        };
        let Ok(bytes) = tokio::fs::read(&file).await else {
            return not_found();
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = content_type(&name);
        let is_html = kind.starts_with("text/html");
        let strict = is_html && wants_strict_csp(uri.query());
        let body = match (is_html, inject, String::from_utf8(bytes)) {
            (true, Some(inj), Ok(text)) => inj.apply(&text).into_bytes(),
            (_, _, Ok(text)) => text.into_bytes(),
            (_, _, Err(e)) => e.into_bytes(),
        };
        let mut r = Response::new(Body::from(body));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if strict {
            let policy = match inject {
                Some(inj) => add_hash_to_policy(STRICT_CSP, inj.hash()),
                None => STRICT_CSP.to_owned(),
            };
            if let Ok(v) = HeaderValue::from_str(&policy) {
                h.insert(header::CONTENT_SECURITY_POLICY, v);
            }
        }
        r
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether the query has `csp=1`.
fn wants_strict_csp(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "csp=1"))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(plain("index.html"));
        assert!(!plain(".."));
        assert!(!plain(".env"));
        assert!(!plain("a/b"));
        assert!(!plain("a\\b"));
        assert!(!plain("c:x"));
        assert!(!plain("a\u{0}"));
        assert_eq!(content_type("a.WASM"), "application/wasm");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert!(wants_strict_csp(Some("ref=x&csp=1")));
        assert!(!wants_strict_csp(Some("csp=10")));
        assert!(!wants_strict_csp(None));
    }
}

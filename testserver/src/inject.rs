//! The tests' script, first in every HTML page, allowed by the page's own CSP.
//!
//! The engines layer records console messages, uncaught errors, unhandled rejections and CSP
//! violations with a script that must run before anything else in the page (WebKit's driver has
//! no init scripts, so the page itself must carry it). The server puts it as the first element of
//! `<head>`, and adds its hash (`'sha256-…'`) to the script directives of every
//! `Content-Security-Policy` the page declares in a `<meta>` tag, and to the strict header that
//! `?csp=1` adds, so pages under a strict policy still run it while every other inline script
//! stays blocked. A directive that allows `'unsafe-inline'` without any hash or nonce is left as
//! it is: adding a hash would switch `'unsafe-inline'` off and change the page.
//!
//! HTML is scanned, not parsed: start tags are found outside comments and outside the text of
//! `<script>`, `<style>`, `<textarea>` and `<title>`, which is all that pages written by hand need.

use base64::Engine as _;

/// Why a script cannot be injected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectError {
    #[error("the script contains `</script`, which would end the inline <script> early")]
    ClosesScript,
}

/// The script to inject, with its CSP hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    script: String,
    hash: String,
}

impl Injection {
    pub fn new(script: impl Into<String>) -> Result<Injection, InjectError> {
        let script = script.into();
        if script.to_ascii_lowercase().contains("</script") {
            return Err(InjectError::ClosesScript);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
        let hash = format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        );
        Ok(Injection { script, hash })
    }

    pub fn script(&self) -> &str {
        &self.script
    }

    /// The CSP source expression that allows the script: `'sha256-<base64>'`.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// `html` with the script first in `<head>` and its hash in every `<meta>` CSP.
    pub fn apply(&self, html: &str) -> String {
        let html = patch_meta_policies(html, &self.hash);
        let at = script_position(&html);
        let mut out = String::with_capacity(html.len() + self.script.len() + 17);
        out.push_str(&html[..at]);
        out.push_str("<script>");
        out.push_str(&self.script);
        out.push_str("</script>");
        out.push_str(&html[at..]);
        out
    }
}

/// `policy` with `hash` added to its script directives (`script-src`, `script-src-elem`, or
/// `default-src` when neither is there); unchanged where `'unsafe-inline'` already allows inline
/// scripts without a hash or nonce, or where no directive restricts scripts.
pub fn add_hash_to_policy(policy: &str, hash: &str) -> String {
    let directives: Vec<&str> = policy.split(';').collect();
    let name = |d: &str| {
        d.split_ascii_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let has_script = directives
        .iter()
        .any(|d| matches!(name(d).as_str(), "script-src" | "script-src-elem"));
    let targets: &[&str] = if has_script {
        &["script-src", "script-src-elem"]
    } else {
        &["default-src"]
    };
    let patched: Vec<String> = directives
        .iter()
        .map(|d| {
            if !targets.contains(&name(d).as_str()) {
                return (*d).to_owned();
            }
            let sources: Vec<String> = d
                .split_ascii_whitespace()
                .skip(1)
                .map(str::to_ascii_lowercase)
                .collect();
            let keyed = sources.iter().any(|s| {
                ["'sha256-", "'sha384-", "'sha512-", "'nonce-"]
                    .iter()
                    .any(|p| s.starts_with(p))
            });
            let inline_allowed = sources.iter().any(|s| s == "'unsafe-inline'");
            if (inline_allowed && !keyed) || sources.iter().any(|s| s == &hash.to_ascii_lowercase())
            {
                return (*d).to_owned();
            }
            format!("{} {hash}", d.trim_end())
        })
        .collect();
    patched.join(";")
}

/// A start tag found in the HTML: its byte range and lower-case name.
struct Tag {
    start: usize,
    end: usize,
    name: String,
}

/// The start tags of `html`, skipping comments and the raw text of script-like elements.
fn start_tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let lower = html.to_ascii_lowercase();
    let mut tags = Vec::new();
    let mut pos = 0;
    while let Some(off) = html[pos..].find('<') {
        let start = pos + off;
        if html[start..].starts_with("<!--") {
            pos = match html[start + 4..].find("-->") {
                Some(e) => start + 4 + e + 3,
                None => return tags,
            };
            continue;
        }
        let name_len = bytes[start + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        if name_len == 0 || !bytes[start + 1].is_ascii_alphabetic() {
            pos = start + 1;
            continue;
        }
        let name = lower[start + 1..start + 1 + name_len].to_owned();
        let Some(end) = tag_end(html, start + 1 + name_len) else {
            return tags;
        };
        pos = end;
        if matches!(name.as_str(), "script" | "style" | "textarea" | "title") {
            let close = format!("</{name}");
            pos = lower[end..].find(&close).map_or(html.len(), |e| end + e);
        }
        tags.push(Tag { start, end, name });
    }
    tags
}

/// The index just past the `>` that ends the tag whose attributes start at `from` (quotes
/// respected), if any.
fn tag_end(html: &str, from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in html[from..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(from + i + 1),
            (None, _) => {}
        }
    }
    None
}

/// Where the script goes: just inside `<head>`, else just inside `<html>` (the parser opens the
/// head for it), else after the doctype, else at the start.
fn script_position(html: &str) -> usize {
    let tags = start_tags(html);
    if let Some(t) = tags.iter().find(|t| t.name == "head") {
        return t.end;
    }
    if let Some(t) = tags.iter().find(|t| t.name == "html") {
        return t.end;
    }
    let lower = html.trim_start().to_ascii_lowercase();
    if lower.starts_with("<!doctype") {
        let lead = html.len() - html.trim_start().len();
        if let Some(e) = tag_end(html, lead + 2) {
            return e;
        }
    }
    0
}

/// One attribute of a tag: its lower-case name and the byte range of its value (without quotes).
struct Attr {
    name: String,
    value: Option<(usize, usize)>,
}

/// The attributes of the tag `html[start..end]`.
fn attributes(html: &str, tag: &Tag) -> Vec<Attr> {
    let bytes = html.as_bytes();
    let mut i = tag.start + 1 + tag.name.len();
    let stop = tag.end - 1; // the closing `>`
    let mut attrs = Vec::new();
    while i < stop {
        while i < stop && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < stop && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'/') {
            i += 1;
        }
        if i == name_start {
            break;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        while i < stop && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if i < stop && bytes[i] == b'=' {
            i += 1;
            while i < stop && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < stop && matches!(bytes[i], b'"' | b'\'') {
                let q = bytes[i];
                let v = i + 1;
                let e = html[v..stop]
                    .bytes()
                    .position(|b| b == q)
                    .map_or(stop, |p| v + p);
                value = Some((v, e));
                i = (e + 1).min(stop);
            } else {
                let v = i;
                while i < stop && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = Some((v, i));
            }
        }
        attrs.push(Attr { name, value });
    }
    attrs
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn encode_for(s: &str, quote: Option<u8>) -> String {
    let s = s.replace('&', "&amp;");
    match quote {
        Some(b'\'') => s.replace('\'', "&#39;"),
        _ => s.replace('"', "&quot;"),
    }
}

/// Adds `hash` to every `<meta http-equiv="Content-Security-Policy" content="...">`.
fn patch_meta_policies(html: &str, hash: &str) -> String {
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for tag in start_tags(html).iter().filter(|t| t.name == "meta") {
        let attrs = attributes(html, tag);
        let is_csp = attrs.iter().any(|a| {
            a.name == "http-equiv"
                && a.value.is_some_and(|(s, e)| {
                    decode_entities(&html[s..e])
                        .trim()
                        .eq_ignore_ascii_case("content-security-policy")
                })
        });
        let content = attrs
            .iter()
            .find(|a| a.name == "content")
            .and_then(|a| a.value);
        if let (true, Some((s, e))) = (is_csp, content) {
            let quote = (s > 0)
                .then(|| html.as_bytes()[s - 1])
                .filter(|b| matches!(b, b'"' | b'\''));
            let policy = add_hash_to_policy(&decode_entities(&html[s..e]), hash);
            let value = encode_for(&policy, quote);
            if quote.is_some() {
                edits.push((s, e, value));
            } else {
                edits.push((s, e, format!("\"{}\"", encode_for(&policy, None))));
            }
        }
    }
    let mut out = html.to_owned();
    for (s, e, v) in edits.into_iter().rev() {
        out.replace_range(s..e, &v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inj() -> Injection {
        Injection::new("window.__x=1").unwrap()
    }

    #[test]
    fn the_hash_is_the_csp_sha256_of_the_script() {
        // echo -n 'window.__x=1' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            inj().hash(),
            "'sha256-ZwqldfsJdNVMda3s8g8jPJXfQBqJpWcMt0bbYCrrSVw='"
        );
        assert_eq!(
            Injection::new("a</SCRIPT>b").unwrap_err(),
            InjectError::ClosesScript
        );
    }

    #[test]
    fn first_in_head_not_in_header() {
        let html = "<!doctype html><html lang=en><head>\n<meta charset=utf-8><title>a<head></title></head><body><header>x</header></body></html>";
        let out = inj().apply(html);
        assert!(
            out.starts_with(
                "<!doctype html><html lang=en><head><script>window.__x=1</script>\n<meta"
            ),
            "{out}"
        );
        assert_eq!(out.matches("<script>").count(), 1);
    }

    #[test]
    fn a_head_in_a_comment_or_script_is_not_the_head() {
        let html = "<!-- <head> --><html><script>var s='<head>'</script><head data-x=\"a>b\"><title>t</title></head></html>";
        let out = inj().apply(html);
        assert!(
            out.contains("<head data-x=\"a>b\"><script>window.__x=1</script><title>"),
            "{out}"
        );
    }

    #[test]
    fn pages_without_a_head() {
        assert_eq!(
            inj().apply("<!DOCTYPE html>\n<p>hi"),
            "<!DOCTYPE html><script>window.__x=1</script>\n<p>hi"
        );
        assert_eq!(
            inj().apply("<html><p>hi"),
            "<html><script>window.__x=1</script><p>hi"
        );
        assert_eq!(inj().apply("<p>hi"), "<script>window.__x=1</script><p>hi");
    }

    #[test]
    fn meta_policies_get_the_hash() {
        let h = inj().hash().to_owned();
        let html = r#"<head><meta http-equiv="Content-Security-Policy" content="script-src 'self' 'wasm-unsafe-eval'"><meta name="x" content="script-src 'self'"></head>"#;
        let out = inj().apply(html);
        assert!(
            out.contains(&format!(
                r#"content="script-src 'self' 'wasm-unsafe-eval' {h}">"#
            )),
            "{out}"
        );
        assert!(
            out.contains(r#"<meta name="x" content="script-src 'self'">"#),
            "{out}"
        );
        // Single-quoted attribute: the quotes inside are entities.
        let single = "<head><meta http-equiv='content-security-policy' content='default-src &#39;self&#39;'></head>";
        let out = inj().apply(single);
        let encoded = h.replace('\'', "&#39;");
        assert!(
            out.contains(&format!("content='default-src &#39;self&#39; {encoded}'")),
            "{out}"
        );
    }

    #[test]
    fn policies() {
        let h = "'sha256-abc'";
        assert_eq!(
            add_hash_to_policy("default-src 'self'; script-src 'self'", h),
            "default-src 'self'; script-src 'self' 'sha256-abc'"
        );
        assert_eq!(
            add_hash_to_policy("default-src 'self'; img-src *", h),
            "default-src 'self' 'sha256-abc'; img-src *"
        );
        assert_eq!(add_hash_to_policy("img-src *", h), "img-src *");
        // 'unsafe-inline' alone allows it already; a hash would switch it off.
        assert_eq!(
            add_hash_to_policy("script-src 'self' 'unsafe-inline'", h),
            "script-src 'self' 'unsafe-inline'"
        );
        // With a nonce, 'unsafe-inline' is ignored by browsers: the hash is needed.
        assert_eq!(
            add_hash_to_policy("script-src 'unsafe-inline' 'nonce-x'", h),
            "script-src 'unsafe-inline' 'nonce-x' 'sha256-abc'"
        );
        assert_eq!(
            add_hash_to_policy("script-src 'self'; script-src-elem 'self'", h),
            "script-src 'self' 'sha256-abc'; script-src-elem 'self' 'sha256-abc'"
        );
        assert_eq!(
            add_hash_to_policy("script-src 'self' 'sha256-abc'", h),
            "script-src 'self' 'sha256-abc'"
        );
    }
}

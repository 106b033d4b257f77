//! `cargo xtask bench embed`: salebeacon's script-tag embed measured against five peers
//! (Plausible, Snowplow, Segment, RudderStack, Dub) in headless Chromium, one table per kind of
//! page, and the budgets met or not.
//!
//! The measuring is `www/bench/bench.mjs` (playwright-core and the peers come from npm, pinned in
//! `www/bench/package.json`); this module gets it what it needs and runs it: Chromium (installed
//! with the other browser tools when missing), the bench's `node_modules` (`npm ci` when missing),
//! and the paths of `pkg/` and of the release binaries of the proxy and the sandbox. It builds
//! nothing: a benchmark reports on what was built, and a build here would also compete for the
//! CPU with the measurements that follow. When an input is missing it stops and names the command
//! that makes it; when one looks older than its sources it says so and goes on.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::{cmd, suites, tools};

/// What `bench embed` takes on the command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Cold loads per page and CPU rate (the bench's default, 15, when `None`).
    pub runs: Option<u32>,
}

/// The release binaries the bench starts.
const BINARIES: &[&str] = &["salebeacon-proxy", "salebeacon-sandbox"];

/// Runs `node bench.mjs` in `www/bench`; fails when it fails.
pub fn embed(opts: &Options) -> Result<()> {
    cmd::header("embed benchmark: salebeacon and its peers in Chromium");
    let root = cmd::root();
    let pkg = root.join("pkg");
    let bin_dir = cmd::target_dir().join("release");
    let dir = root.join("www").join("bench");

    let mut missing = Vec::new();
    if !["salebeacon.js", "salebeacon.js.br", "index.js"]
        .iter()
        .all(|f| pkg.join(f).is_file())
    {
        missing.push(format!(
            "{} is not built: run `cargo xtask build`",
            tools::shown(&pkg)
        ));
    }
    let absent: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| !bin_dir.join(b).is_file())
        .collect();
    if !absent.is_empty() {
        missing.push(format!(
            "{} missing in {}: run `cargo build --release {}`",
            absent.join(" and "),
            tools::shown(&bin_dir),
            BINARIES
                .iter()
                .map(|b| format!("-p {b}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if !missing.is_empty() {
        bail!(
            "the benchmark measures what is built and builds nothing itself:\n  {}",
            missing.join("\n  ")
        );
    }
    warn_if_stale(
        &pkg.join("salebeacon.js"),
        &["src", "www/package/src"],
        "cargo xtask build",
    );
    warn_if_stale(
        &bin_dir.join("salebeacon-proxy"),
        &["src", "proxy/src"],
        "cargo build --release -p salebeacon-proxy",
    );
    warn_if_stale(
        &bin_dir.join("salebeacon-sandbox"),
        &["sandbox/src"],
        "cargo build --release -p salebeacon-sandbox",
    );

    let found = tools::ensure(tools::Needs {
        browser: true,
        ..Default::default()
    })?;
    if !dir.join("node_modules").is_dir() {
        suites::npm_install(&dir)?;
    }

    let mut line = String::from("cargo xtask bench embed");
    let mut node = cmd::command("node");
    node.arg("bench.mjs")
        .current_dir(&dir)
        .env("SALEBEACON_ROOT", &root)
        .env("SALEBEACON_PKG", &pkg)
        .env("SALEBEACON_BIN_DIR", &bin_dir);
    if let Some(runs) = opts.runs {
        line.push_str(&format!(" --runs {runs}"));
        node.env("SALEBEACON_BENCH_RUNS", runs.to_string());
    }
    node.env("SALEBEACON_BENCH_COMMAND", &line);
    if let Some(chromium) = &found.chromium {
        node.env("CHROMIUM", chromium);
    }
    cmd::run(&mut node).context("the embed benchmark failed (its output says where)")
}

/// Prints a warning when `built` is older than the newest file under any of `sources`.
fn warn_if_stale(built: &Path, sources: &[&str], rebuild: &str) {
    let Some(made) = modified(built) else {
        return;
    };
    let newest = sources
        .iter()
        .filter_map(|s| newest_under(&cmd::root().join(s)))
        .max_by_key(|(t, _)| *t);
    if let Some((t, file)) = newest {
        if t > made {
            eprintln!(
                "warning: {} is older than {} (measuring it as it is; `{rebuild}` to refresh it)",
                tools::shown(built),
                tools::shown(&file)
            );
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The most recently modified file under `dir` (recursively), with its time.
fn newest_under(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(t) = modified(&path) {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, path));
                }
            }
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_newest_source() {
        let (_, file) = newest_under(&cmd::root().join("xtask").join("src")).unwrap();
        assert!(file.starts_with(cmd::root().join("xtask")), "{file:?}");
        assert!(newest_under(&cmd::root().join("no-such-folder")).is_none());
    }
}

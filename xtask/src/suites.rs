//! `cargo xtask test`: every check and test suite of the project, in one command that works on a
//! fresh machine.
//!
//! Parts, in order (each step printed as a header; the first failure stops the run):
//! 1. **tools**: what the selected parts need (see [`crate::tools`]), installed if missing;
//! 2. **lint**: `cargo fmt --all --check`, then clippy with `-D warnings` natively for the whole
//!    workspace and for `wasm32-unknown-unknown` for the browser crate;
//! 3. **native**: `cargo test --workspace` (with `--no-fail-fast`, so one run reports every
//!    failing crate; the run still stops after this step if anything failed), the proxy's outbox
//!    on SQLite files; then **native postgresql**: the proxy's integration tests again against a
//!    throwaway PostgreSQL server this run starts and removes (see [`crate::postgres`]), with
//!    the multi-instance tests (`postgres_*`) that only that pass runs; then **api contract**:
//!    Schemathesis against a running proxy and its own OpenAPI document ([`crate::schemathesis`]);
//! 4. **wasm**: the WebAssembly module's tests (`tests/wasm.rs`: every export through the real
//!    glue, the allocator) through `wasm-bindgen-test-runner`, in Node's V8;
//! 5. **e2e**: the end-to-end suites listed in [`E2E_SUITES`] that exist in the tree (today
//!    `www/e2e`, `npm test`), after building `pkg/` and the release binaries they run
//!    ([`E2E_BINARIES`]: the proxy, the sandbox and the test server in front of them). The
//!    `www/e2e` suite runs once per browser engine ([`E2E_ENGINES`]: Chromium, Firefox, WebKit),
//!    one summary row each (`e2e chromium`, ...); every engine runs even when an earlier one
//!    failed, and any failing engine (or one that ran zero tests) fails the run.
//!
//! Why counts are parsed: a test binary that is compiled for the wrong target or whose tests are
//! all cfg'd away still "passes" with zero tests (e.g. a native `cargo test` of browser-only
//! tests). So every suite's output is captured and its `test result:` lines summed, and a suite
//! that ran zero tests fails the run. The run ends with a table of every step and a last line
//! `N passed, M failed` that CI reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::{cmd, package, postgres, schemathesis, tools};

/// A part of the test run that can be selected on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Lint,
    Native,
    Wasm,
    E2e,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Lint, Part::Native, Part::Wasm, Part::E2e];

    pub fn parse(s: &str) -> Option<Part> {
        Some(match s {
            "lint" => Part::Lint,
            "native" => Part::Native,
            "wasm" => Part::Wasm,
            "e2e" => Part::E2e,
            _ => return None,
        })
    }
}

/// Options of `cargo xtask test`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip fmt and clippy (ignored for parts named explicitly).
    pub quick: bool,
    /// The parts named on the command line; empty means all.
    pub parts: Vec<Part>,
}

impl Options {
    /// The parts to run, in their fixed order.
    pub fn selected(&self) -> Vec<Part> {
        Part::ALL
            .into_iter()
            .filter(|p| {
                if self.parts.is_empty() {
                    !(self.quick && *p == Part::Lint)
                } else {
                    self.parts.contains(p)
                }
            })
            .collect()
    }
}

/// Test counts of a suite, summed over its `test result:` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// How many result lines were found (test binaries / reporters).
    pub results: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.results += other.results;
    }
}

/// Sums libtest's (and wasm-bindgen-test-runner's) summary lines:
/// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s`.
pub fn parse_libtest(output: &str) -> Counts {
    let mut total = Counts::default();
    for line in output.lines() {
        let Some(rest) = line.split("test result: ").nth(1) else {
            continue;
        };
        let Some((_verdict, counts)) = rest.split_once(". ") else {
            continue;
        };
        let mut found = Counts {
            results: 1,
            ..Counts::default()
        };
        for field in counts.split(';') {
            let mut words = field.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => found.passed = n,
                "failed" => found.failed = n,
                "ignored" => found.ignored = n,
                _ => {}
            }
        }
        total.add(found);
    }
    total
}

/// Sums the summaries of JavaScript test runners: Playwright (`  5 passed (3.1s)`, `1 failed`,
/// `2 skipped`) and `node --test` (`# pass 5` / `ℹ pass 5`, `fail`, `skipped`, `todo`); falls
/// back to libtest lines so a Rust-based e2e suite works too.
pub fn parse_js(output: &str) -> Counts {
    let mut total = Counts::default();
    for line in output.lines() {
        let line = line.trim();
        let line = line
            .strip_prefix("# ")
            .or_else(|| line.strip_prefix("ℹ "))
            .map(|rest| {
                // node:test puts the word first: `pass 5`.
                let mut w = rest.split_whitespace();
                match (w.next(), w.next(), w.next()) {
                    (Some(word), Some(n), None) if n.parse::<u64>().is_ok() => {
                        format!("{n} {word}")
                    }
                    _ => String::new(),
                }
            })
            .unwrap_or_else(|| line.to_owned());
        let mut w = line.split_whitespace();
        let (Some(n), Some(word)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue;
        };
        // Playwright's summary lines are `N word` or `N word (time)`; anything longer is prose.
        if w.next().is_some_and(|rest| !rest.starts_with('(')) {
            continue;
        }
        match word {
            "passed" | "pass" => total.passed += n,
            "failed" | "fail" => total.failed += n,
            "skipped" | "todo" => total.ignored += n,
            "flaky" => total.passed += n,
            _ => continue,
        }
        total.results = 1;
    }
    if total.results == 0 {
        return parse_libtest(output);
    }
    total
}

/// One row of the summary.
#[derive(Debug)]
struct Row {
    name: String,
    counts: Option<Counts>,
    seconds: f64,
    status: &'static str,
}

/// The steps run so far.
#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Runs one step: prints its header, times it, records its outcome. `counts` is filled by
    /// test suites (also when they fail).
    fn step(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Option<Counts>) -> Result<()>,
    ) -> Result<()> {
        cmd::header(name);
        let started = Instant::now();
        let mut counts = None;
        let result = f(&mut counts).with_context(|| format!("step `{name}` failed"));
        self.rows.push(Row {
            name: name.to_owned(),
            counts,
            seconds: started.elapsed().as_secs_f64(),
            status: if result.is_ok() { "ok" } else { "FAILED" },
        });
        result
    }

    fn skipped(&mut self, name: &str, why: &str) {
        cmd::header(name);
        eprintln!("skipped: {why}");
        self.rows.push(Row {
            name: name.to_owned(),
            counts: None,
            seconds: 0.0,
            status: "skipped",
        });
    }

    fn totals(&self) -> Counts {
        let mut total = Counts::default();
        for c in self.rows.iter().filter_map(|r| r.counts) {
            total.add(c);
        }
        total
    }

    fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut out = format!(
            "{:<width$}  {:>7}  {:>7}  {:>7}  {:>8}  status\n",
            "suite", "passed", "failed", "ignored", "seconds"
        );
        out.push_str(&format!("{}\n", "-".repeat(width + 50)));
        let cell = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
        for r in &self.rows {
            out.push_str(&format!(
                "{:<width$}  {:>7}  {:>7}  {:>7}  {:>8.1}  {}\n",
                r.name,
                cell(r.counts.map(|c| c.passed)),
                cell(r.counts.map(|c| c.failed)),
                cell(r.counts.map(|c| c.ignored)),
                r.seconds,
                r.status
            ));
        }
        out
    }
}

/// Runs `cargo xtask test`; prints the summary and the final count line. Returns whether
/// everything passed (the error, if any, has been printed).
pub fn run(opts: &Options) -> bool {
    let parts = opts.selected();
    let mut report = Report::default();
    let started = Instant::now();
    let result = run_parts(&parts, &mut report);

    println!("\nsummary ({:.0} s):", started.elapsed().as_secs_f64());
    print!("{}", report.render());
    let totals = report.totals();
    let failed = match &result {
        Ok(()) => totals.failed,
        Err(e) => {
            eprintln!("\nerror: {e:#}");
            // A failed step without failed tests (fmt, clippy, a build) still counts as one.
            totals.failed.max(1)
        }
    };
    println!("{} passed, {failed} failed", totals.passed);
    result.is_ok()
}

fn run_parts(parts: &[Part], report: &mut Report) -> Result<()> {
    let has = |p| parts.contains(&p);
    let e2e: Vec<_> = if has(Part::E2e) {
        E2E_SUITES
            .iter()
            .filter_map(|s| (s.find)().map(|dir| (s, dir)))
            .collect()
    } else {
        Vec::new()
    };
    let needs = tools::Needs {
        wasm_target: has(Part::Lint) || has(Part::Wasm) || !e2e.is_empty(),
        wasm_bindgen: has(Part::Wasm) || !e2e.is_empty(),
        wasm_opt: !e2e.is_empty() || parts.len() == Part::ALL.len(),
        browser: !e2e.is_empty(),
    };
    let mut found = tools::Tools::default();
    // The e2e suite's Firefox and WebKit (Chromium is `browser` above).
    let mut minibrowser = None;
    report.step("tools", |_| {
        found = tools::ensure(needs)?;
        if !e2e.is_empty() {
            minibrowser = Some(tools::ensure_engines()?);
        }
        Ok(())
    })?;

    if has(Part::Lint) {
        report.step("fmt", |_| {
            cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))
                .map_err(|e| anyhow!("{e:#}; run `cargo fmt --all` to fix"))
        })?;
        report.step("clippy native", |_| {
            cmd::run(cmd::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        report.step("clippy wasm32", |_| {
            cmd::run(cmd::cargo().args([
                "clippy",
                "-p",
                package::CRATE,
                "--target",
                tools::WASM_TARGET,
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        report.step("clippy wasm32 (shipped modules)", |_| {
            cmd::run(cmd::cargo().args([
                "clippy",
                "-p",
                package::CRATE,
                "--lib",
                "--target",
                tools::WASM_TARGET,
                "--no-default-features",
                "--features",
                "visit,order,embed",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }

    if has(Part::Native) {
        report.step("native", |counts| {
            suite(
                counts,
                cmd::cargo().args([
                    "test",
                    "--workspace",
                    "--no-fail-fast",
                    "--",
                    "--skip",
                    "postgres_",
                ]),
                parse_libtest,
            )
        })?;
        report.step("native postgresql", |counts| {
            let server = postgres::throwaway()?;
            let mut test = cmd::cargo();
            // The proxy's integration tests again, each on a database of its own on `server`
            // (proxy/tests/common), skipping those that hold for one SQLite file only.
            test.args([
                "test",
                "-p",
                "salebeacon-proxy",
                "--test",
                "*",
                "--no-fail-fast",
                "--",
                "--skip",
                "sqlite_",
            ])
            .env("SALEBEACON_TEST_POSTGRES", server.url());
            suite(counts, &mut test, parse_libtest)
        })?;
        report.step("api contract (schemathesis)", |counts| {
            let mut tally = None;
            let result = schemathesis::run(&mut tally);
            *counts = tally.map(|t| Counts {
                passed: t.passed,
                failed: t.failed,
                ignored: 0,
                results: 1,
            });
            result
        })?;
    }

    if has(Part::Wasm) {
        report.step("wasm", |counts| {
            let mut test = cmd::cargo();
            test.args([
                "test",
                "--no-fail-fast",
                "--target",
                tools::WASM_TARGET,
                "-p",
                package::CRATE,
            ]);
            if std::env::var_os("WASM_BINDGEN_TEST_TIMEOUT").is_none() {
                test.env("WASM_BINDGEN_TEST_TIMEOUT", "120");
            }
            suite(counts, &mut test, parse_libtest)
        })?;
    }

    if has(Part::E2e) {
        if e2e.is_empty() {
            report.skipped(
                "e2e",
                "no end-to-end suite in the tree yet (www/e2e/package.json)",
            );
            return Ok(());
        }
        let mut pkg = PathBuf::new();
        report.step("build pkg", |_| {
            pkg = package::build_with(package::Options::default(), &found)?;
            Ok(())
        })?;
        report.step("build binaries", |_| {
            let mut build = cmd::cargo();
            build.args(["build", "--release"]);
            for bin in E2E_BINARIES {
                build.args(["-p", bin]);
            }
            cmd::run(&mut build)
        })?;
        let bin_dir = cmd::target_dir().join("release");
        // Every suite and engine runs; the first failure is reported once all have.
        let mut first_error = None;
        for (spec, dir) in e2e {
            if let Some(prepare) = spec.prepare {
                if let Err(e) = report.step(&format!("{} setup", spec.name), |_| prepare(&dir)) {
                    first_error.get_or_insert(e);
                    continue;
                }
            }
            let engines: &[&str] = if spec.engines.is_empty() {
                &[""]
            } else {
                spec.engines
            };
            for engine in engines {
                let name = if engine.is_empty() {
                    spec.name.to_owned()
                } else {
                    format!("{} {engine}", spec.name)
                };
                let ctx = E2eContext {
                    dir: &dir,
                    pkg: &pkg,
                    bin_dir: &bin_dir,
                    engine: (!engine.is_empty()).then_some(*engine),
                    chromium: found.chromium.as_deref(),
                    minibrowser: minibrowser.as_deref(),
                };
                if let Err(e) = report.step(&name, |counts| (spec.run)(&ctx, counts)) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(())
}

/// Runs a test suite, streams and parses its output; fails if the command failed, a test failed,
/// or no test ran at all.
fn suite(
    counts: &mut Option<Counts>,
    command: &mut Command,
    parse: fn(&str) -> Counts,
) -> Result<()> {
    let (status, output) = cmd::run_tee(command)?;
    let found = parse(&output);
    *counts = Some(found);
    let line = cmd::display(command);
    if !status.success() || found.failed > 0 {
        bail!(
            "`{line}` failed ({status}; {} passed, {} failed)",
            found.passed,
            found.failed
        );
    }
    if found.passed == 0 {
        bail!(
            "`{line}` ran zero tests ({} result lines, all empty): the suite is compiled for the \
             wrong target, cfg'd away, or filtered out",
            found.results
        );
    }
    Ok(())
}

/// Installs a JS suite's dependencies: `npm ci` when there is a lock file (exactly what it pins),
/// falling back to `npm install --no-save` with a warning when the lock file is out of date (the
/// run should not fail on a fresh machine because of it; the warning says what to fix).
pub fn npm_install(dir: &Path) -> Result<()> {
    let npm = |args: &[&str]| {
        let mut c = Command::new("npm");
        c.args(args)
            .args(["--no-audit", "--no-fund"])
            .current_dir(dir);
        c
    };
    let shown = tools::shown(dir);
    if dir.join("package-lock.json").is_file() {
        if cmd::run(&mut npm(&["ci"])).is_ok() {
            return Ok(());
        }
        eprintln!(
            "warning: `npm ci` failed in {shown} (package-lock.json out of date with package.json?); \
             falling back to `npm install --no-save`. Fix: run `npm install` there and commit the lock file."
        );
    }
    cmd::run(&mut npm(&["install", "--no-save"]))
        .with_context(|| format!("installing the dependencies of {shown}"))
}

/// What an end-to-end suite gets to work with.
pub struct E2eContext<'a> {
    /// The suite's folder.
    pub dir: &'a Path,
    /// The built package (`pkg/`, release build).
    pub pkg: &'a Path,
    /// Where the release binaries of [`E2E_BINARIES`] are.
    pub bin_dir: &'a Path,
    /// The browser engine of this run, for suites that run once per engine.
    pub engine: Option<&'a str>,
    /// Chromium, for suites that drive it (playwright-core downloads no browser).
    pub chromium: Option<&'a Path>,
    /// WebKitGTK's MiniBrowser (its folder depends on the architecture).
    pub minibrowser: Option<&'a Path>,
}

/// The packages whose release binaries the e2e suites run: the real stack, and the test server
/// the tests put in front of it (`testserver/`).
pub const E2E_BINARIES: &[&str] = &[
    "salebeacon-proxy",
    "salebeacon-sandbox",
    "salebeacon-testserver",
];

/// The browser engines the `www/e2e` suite runs in, one run each (`SALEBEACON_ENGINE`; see
/// `www/e2e/ENGINES.md`).
pub const E2E_ENGINES: &[&str] = &["chromium", "firefox", "webkit"];

/// An end-to-end suite: where it lives and how to run it.
pub struct E2eSuite {
    /// The name in the summary (followed by the engine, for suites run per engine).
    pub name: &'static str,
    /// The suite's folder, if it exists in the tree.
    pub find: fn() -> Option<PathBuf>,
    /// Done once before its runs (e.g. installing its dependencies); a row of its own.
    pub prepare: Option<fn(&Path) -> Result<()>>,
    /// The engines to run it in, one summary row each; empty: one run, no engine.
    pub engines: &'static [&'static str],
    /// Runs it once (for `ctx.engine`), filling the counts.
    pub run: fn(&E2eContext<'_>, &mut Option<Counts>) -> Result<()>,
}

/// The end-to-end suites. Add new ones here; each runs when its `find` finds it.
pub const E2E_SUITES: &[E2eSuite] = &[E2eSuite {
    name: "e2e",
    find: find_www_e2e,
    prepare: Some(ensure_npm_dependencies),
    engines: E2E_ENGINES,
    run: run_npm_suite,
}];

fn find_www_e2e() -> Option<PathBuf> {
    let dir = cmd::root().join("www").join("e2e");
    dir.join("package.json").is_file().then_some(dir)
}

/// Installs the suite's npm dependencies when `node_modules` is missing or older than the lock
/// file (a checkout that moved on since the last `npm ci`).
fn ensure_npm_dependencies(dir: &Path) -> Result<()> {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(dir.join("node_modules").join(".package-lock.json"));
    let locked = modified(dir.join("package-lock.json"));
    match (installed, locked) {
        (Some(i), Some(l)) if i >= l => {
            eprintln!("{}: npm dependencies installed", tools::shown(dir));
            Ok(())
        }
        (Some(_), None) => Ok(()),
        _ => npm_install(dir),
    }
}

/// `npm test` in the suite's folder, with `SALEBEACON_ENGINE` (when the run has one),
/// `SALEBEACON_ROOT`, `SALEBEACON_PKG`, `SALEBEACON_BIN_DIR`, `CHROMIUM` and `WEBKIT_MINIBROWSER`
/// set.
fn run_npm_suite(ctx: &E2eContext<'_>, counts: &mut Option<Counts>) -> Result<()> {
    let mut test = Command::new("npm");
    test.arg("test")
        .current_dir(ctx.dir)
        .env("SALEBEACON_PKG", ctx.pkg)
        .env("SALEBEACON_ROOT", cmd::root())
        .env("SALEBEACON_BIN_DIR", ctx.bin_dir);
    if let Some(engine) = ctx.engine {
        test.env("SALEBEACON_ENGINE", engine);
    }
    if let Some(chromium) = ctx.chromium {
        test.env("CHROMIUM", chromium);
    }
    if let Some(minibrowser) = ctx.minibrowser {
        test.env("WEBKIT_MINIBROWSER", minibrowser);
    }
    let shown = tools::shown(ctx.dir);
    let engine = ctx
        .engine
        .map(|e| format!(", SALEBEACON_ENGINE={e}"))
        .unwrap_or_default();
    suite(counts, &mut test, parse_js).map_err(|e| anyhow!("{e:#} (in {shown}{engine})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO_TEST: &str = "\
     Running unittests src/lib.rs (target/debug/deps/salebeacon-1)
running 12 tests
test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running unittests src/main.rs (target/debug/deps/xtask-2)
test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s

   Doc-tests salebeacon
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn sums_libtest_results() {
        let c = parse_libtest(CARGO_TEST);
        assert_eq!(
            c,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1,
                results: 3
            }
        );
    }

    #[test]
    fn zero_tests_are_visible() {
        let native_run_of_browser_tests = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let c = parse_libtest(native_run_of_browser_tests);
        assert_eq!((c.passed, c.results), (0, 1));
        assert_eq!(
            parse_libtest("Compiling salebeacon\nerror: could not compile\n"),
            Counts::default()
        );
    }

    #[test]
    fn parses_wasm_bindgen_test_runner_output() {
        let out = "Running headless tests in Chrome on `http://127.0.0.1:36123/`\nTry find `webdriver.json` for configure browser's capabilities:\nNot found\nrunning 7 tests\ntest web::a ... ok\n\ntest result: ok. 7 passed; 0 failed; 0 ignored; 0 filtered out; finished in 1.03s\n";
        assert_eq!(
            parse_libtest(out),
            Counts {
                passed: 7,
                failed: 0,
                ignored: 0,
                results: 1
            }
        );
    }

    #[test]
    fn parses_js_runners() {
        let playwright = "Running 9 tests using 2 workers\n  ✓ 1 loads (1.2s)\n\n  1 failed\n    [chromium] › a.spec.ts:3:1 › x\n  2 skipped\n  6 passed (12.3s)\n";
        assert_eq!(
            parse_js(playwright),
            Counts {
                passed: 6,
                failed: 1,
                ignored: 2,
                results: 1
            }
        );
        let node_tap =
            "# tests 4\n# suites 1\n# pass 3\n# fail 0\n# cancelled 0\n# skipped 1\n# todo 0\n";
        assert_eq!(
            parse_js(node_tap),
            Counts {
                passed: 3,
                failed: 0,
                ignored: 1,
                results: 1
            }
        );
        let node_spec = "ℹ tests 2\nℹ pass 2\nℹ fail 0\n";
        assert_eq!(parse_js(node_spec).passed, 2);
        assert_eq!(
            parse_js("12 passed files were read by the 3 things\n").results,
            0
        );
        assert_eq!(parse_js(CARGO_TEST).passed, 15);
    }

    #[test]
    fn selects_parts() {
        let all = Options::default();
        assert_eq!(all.selected(), Part::ALL);
        let quick = Options {
            quick: true,
            parts: vec![],
        };
        assert_eq!(quick.selected(), [Part::Native, Part::Wasm, Part::E2e]);
        let named = Options {
            quick: true,
            parts: vec![Part::Wasm, Part::Lint],
        };
        assert_eq!(named.selected(), [Part::Lint, Part::Wasm]);
        assert_eq!(Part::parse("native"), Some(Part::Native));
        assert_eq!(Part::parse("unit"), None);
    }

    #[test]
    fn suites_fail_on_zero_tests_and_on_failures() {
        let mut counts = None;
        let zero =
            "echo 'test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out'";
        let err = suite(
            &mut counts,
            Command::new("sh").args(["-c", zero]),
            parse_libtest,
        )
        .unwrap_err();
        assert!(err.to_string().contains("zero tests"), "{err}");

        let failing = "echo 'test result: FAILED. 1 passed; 1 failed; 0 ignored'; exit 101";
        let err = suite(
            &mut counts,
            Command::new("sh").args(["-c", failing]),
            parse_libtest,
        )
        .unwrap_err();
        assert!(err.to_string().contains("1 failed"), "{err}");
        assert_eq!(counts.map(|c| c.failed), Some(1));

        let passing = "echo 'test result: ok. 4 passed; 0 failed; 0 ignored'";
        suite(
            &mut counts,
            Command::new("sh").args(["-c", passing]),
            parse_libtest,
        )
        .unwrap();
        assert_eq!(counts.map(|c| c.passed), Some(4));
    }

    #[test]
    fn the_e2e_engines_and_binaries_are_the_trees() {
        // The engines xtask runs are the ones www/e2e/engines.mjs drives.
        let engines = std::fs::read_to_string(cmd::root().join("www/e2e/engines.mjs")).unwrap();
        let line = engines
            .lines()
            .find(|l| l.starts_with("export const ENGINES = ["))
            .unwrap();
        let listed: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
        assert_eq!(listed, E2E_ENGINES);
        // Every binary the suite runs is a package of the workspace.
        let manifests: String = ["proxy", "sandbox", "testserver"]
            .iter()
            .filter_map(|d| std::fs::read_to_string(cmd::root().join(d).join("Cargo.toml")).ok())
            .collect();
        for bin in E2E_BINARIES {
            assert!(
                manifests.contains(&format!("name = \"{bin}\"")),
                "{bin} is a workspace package"
            );
        }
    }

    #[test]
    fn the_summary_counts_failed_steps() {
        let mut report = Report::default();
        report
            .step("one", |c| {
                *c = Some(Counts {
                    passed: 5,
                    results: 1,
                    ..Counts::default()
                });
                Ok(())
            })
            .unwrap();
        assert!(report.step("lint", |_| bail!("nope")).is_err());
        report.skipped("e2e", "absent");
        let table = report.render();
        assert!(
            table.contains("one") && table.contains("FAILED") && table.contains("skipped"),
            "{table}"
        );
        assert_eq!(report.totals().passed, 5);
    }
}

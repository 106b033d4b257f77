//! Making sure the external tools exist, and installing the missing ones.
//!
//! `cargo xtask build` and `cargo xtask test` must work on a fresh machine (Debian 12, rustup,
//! node + npm, only package registries reachable). Everything outside cargo that they need is
//! checked here first and installed only when missing or of the wrong version:
//!
//! | tool | why | installed with |
//! |---|---|---|
//! | the pinned toolchain | `rust-toolchain.toml` | `rustup toolchain install` (never self-update) |
//! | `wasm32-unknown-unknown` | the browser module | `rustup target add` |
//! | `wasm-bindgen` + `wasm-bindgen-test-runner` | JS glue, browser tests; must equal the `wasm-bindgen` version in `Cargo.lock` (the CLI refuses other versions' modules) | `cargo install wasm-bindgen-cli --version <exact>` |
//! | `wasm-opt` (binaryen 132) | size; Debian's binaryen is too old and emits modules Chromium rejects | `npm install --prefix .tools binaryen@132` |
//! | `esbuild` | bundles and minifies the tracker's JavaScript (loader, tracker, wasm-bindgen glue) | `npm install --prefix .tools esbuild@<pinned>` |
//! | `terser` | minifies esbuild's bundles further (-280 B brotli on `index.js`, -43 on the loader: measured) | `npm install --prefix .tools terser@<pinned>` |
//! | `chromium`, `chromedriver` | headless browser tests | `apt-get install chromium chromium-driver` |
//! | `firefox-esr`, `WebKitWebDriver` + MiniBrowser, `Xvfb` | the e2e suite in Firefox and WebKit (`www/e2e/ENGINES.md`) | `apt-get install firefox-esr webkit2gtk-driver xvfb` |
//!
//! When installing is impossible (no rustup, not root, no npm), the error says what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cmd;

/// The binaryen release we use for `wasm-opt` (npm package `binaryen`, major = binaryen version).
pub const BINARYEN_VERSION: &str = "132";
/// The esbuild release that bundles the tracker's JavaScript (npm package `esbuild`).
pub const ESBUILD_VERSION: &str = "0.28.2";
/// The terser release that minifies esbuild's bundles further (npm package `terser`).
pub const TERSER_VERSION: &str = "5.51.4";
/// Where npm-installed tools go (git-ignored).
pub const TOOLS_DIR: &str = ".tools";
/// The Rust target of the browser module.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Which tools a task needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    pub wasm_target: bool,
    pub wasm_bindgen: bool,
    pub wasm_opt: bool,
    pub browser: bool,
}

/// What [`ensure`] found or installed.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    /// `wasm-opt`, when asked for.
    pub wasm_opt: Option<PathBuf>,
    /// `esbuild`, when the package is built (it comes with `wasm-opt`).
    pub esbuild: Option<PathBuf>,
    /// `terser`, likewise.
    pub terser: Option<PathBuf>,
    /// `chromedriver`, when the browser was asked for.
    pub chromedriver: Option<PathBuf>,
    /// The Chromium binary (`$CHROMIUM` or `/usr/bin/chromium`), when the browser was asked for
    /// and it exists (the e2e suites drive it with playwright-core).
    pub chromium: Option<PathBuf>,
}

/// Checks (and installs if missing) every tool in `needs`, printing one line per tool.
pub fn ensure(needs: Needs) -> Result<Tools> {
    let mut tools = Tools::default();
    if needs.wasm_target || needs.wasm_bindgen {
        ensure_toolchain()?;
    }
    if needs.wasm_target {
        ensure_wasm_target()?;
    }
    if needs.wasm_bindgen {
        ensure_wasm_bindgen()?;
    }
    if needs.wasm_opt {
        tools.wasm_opt = Some(ensure_wasm_opt()?);
        tools.esbuild = Some(ensure_js_tool("esbuild", ESBUILD_VERSION)?);
        tools.terser = Some(ensure_js_tool("terser", TERSER_VERSION)?);
    }
    if needs.browser {
        tools.chromedriver = Some(ensure_browser()?);
        tools.chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from("/usr/bin/chromium")])
            .find(|p| p.is_file());
    }
    Ok(tools)
}

fn have_rustup() -> bool {
    cmd::probe(Command::new("rustup").arg("--version")).is_some()
}

/// The `channel` pinned in `rust-toolchain.toml`, if any.
pub fn pinned_channel() -> Option<String> {
    let text = std::fs::read_to_string(cmd::root().join("rust-toolchain.toml")).ok()?;
    toml_string_value(&text, "channel")
}

/// Installs the pinned toolchain if rustup lacks it (only reachable when xtask itself was started
/// with another toolchain, e.g. `cargo +stable xtask`: with `RUSTUP_AUTO_INSTALL=0` the pinned
/// cargo cannot start without it).
fn ensure_toolchain() -> Result<()> {
    let (Some(channel), true) = (pinned_channel(), have_rustup()) else {
        return Ok(());
    };
    let installed =
        cmd::probe(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.starts_with(&format!("{channel}-")) || l == channel)
    {
        return Ok(());
    }
    eprintln!("toolchain {channel}: missing, installing");
    cmd::run(cmd::command("rustup").args([
        "toolchain",
        "install",
        &channel,
        "--no-self-update",
        "--profile",
        "minimal",
        "-c",
        "rustfmt",
        "-c",
        "clippy",
        "-t",
        WASM_TARGET,
    ]))
}

fn ensure_wasm_target() -> Result<()> {
    let libdir = cmd::probe(cmd::command("rustc").args([
        "--print",
        "target-libdir",
        "--target",
        WASM_TARGET,
    ]))
    .map(|s| PathBuf::from(s.trim()));
    let installed = libdir
        .as_deref()
        .and_then(|d| std::fs::read_dir(d).ok())
        .is_some_and(|mut entries| entries.next().is_some());
    if installed {
        eprintln!("{WASM_TARGET}: installed");
        return Ok(());
    }
    if !have_rustup() {
        bail!(
            "the Rust target {WASM_TARGET} is missing and rustup is not available; \
             install the target's standard library for this toolchain"
        );
    }
    eprintln!("{WASM_TARGET}: missing, installing");
    // Run from the root, so rustup adds it to the toolchain that `rustc` above resolved to (the
    // one pinned in rust-toolchain.toml, unless `RUSTUP_TOOLCHAIN` / `cargo +x` overrides it).
    cmd::run(cmd::command("rustup").args(["target", "add", WASM_TARGET]))
}

/// The version of `package` in `Cargo.lock` (which must be locked at exactly one version).
pub fn locked_version(lock: &str, package: &str) -> Result<String> {
    let mut versions = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        if toml_string_value(block, "name").as_deref() == Some(package) {
            if let Some(v) = toml_string_value(block, "version") {
                versions.push(v);
            }
        }
    }
    versions.sort();
    versions.dedup();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("`{package}` is not in Cargo.lock"),
        many => bail!(
            "Cargo.lock holds several versions of `{package}`: {}",
            many.join(", ")
        ),
    }
}

/// `key = "value"` at the start of a line in a small TOML text (no TOML parser needed for
/// `Cargo.lock` and `rust-toolchain.toml`).
fn toml_string_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix('=')?
            .trim();
        Some(rest.strip_prefix('"')?.strip_suffix('"')?.to_owned())
    })
}

/// The `wasm-bindgen` version the crate is locked to.
pub fn wasm_bindgen_version() -> Result<String> {
    let lock_path = cmd::root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path).with_context(|| {
        format!(
            "reading {} (run `cargo generate-lockfile`?)",
            lock_path.display()
        )
    })?;
    locked_version(&lock, "wasm-bindgen")
}

/// The version a CLI reports as `<name> <version>` in `--version`.
fn reported_version(program: &str) -> Option<String> {
    let out = cmd::probe(Command::new(program).arg("--version"))?;
    out.split_whitespace().nth(1).map(str::to_owned)
}

fn ensure_wasm_bindgen() -> Result<()> {
    let wanted = wasm_bindgen_version()?;
    let have = reported_version("wasm-bindgen");
    let runner = reported_version("wasm-bindgen-test-runner");
    if have.as_deref() == Some(&wanted) && runner.as_deref() == Some(&wanted) {
        eprintln!("wasm-bindgen {wanted}: installed");
        return Ok(());
    }
    match &have {
        Some(v) => eprintln!(
            "wasm-bindgen: found {v}, Cargo.lock wants {wanted}; installing (takes ~2 min)"
        ),
        None => eprintln!("wasm-bindgen {wanted}: missing, installing (takes ~2 min)"),
    }
    // Not `--locked`: the CLI's own lock file pins crates that no longer build on current Rust.
    cmd::run(cmd::cargo().args(["install", "wasm-bindgen-cli", "--version", &wanted]))
        .context("installing wasm-bindgen-cli")?;
    let now = reported_version("wasm-bindgen");
    if now.as_deref() != Some(&wanted) {
        bail!(
            "installed wasm-bindgen-cli {wanted}, but `wasm-bindgen --version` reports {}; \
             is another wasm-bindgen earlier on PATH than $CARGO_HOME/bin?",
            now.as_deref().unwrap_or("nothing")
        );
    }
    Ok(())
}

/// The npm packages installed into [`TOOLS_DIR`], with their pinned versions. They are always
/// installed together: `npm install --no-save` of one package removes the others.
const NPM_TOOLS: [(&str, &str); 3] = [
    ("binaryen", BINARYEN_VERSION),
    ("esbuild", ESBUILD_VERSION),
    ("terser", TERSER_VERSION),
];

/// `.tools/node_modules/.bin/<bin>` of the pinned `version`, the npm tools installed if it is
/// missing or of another version. `reported` reads the version out of `<bin> --version`.
fn ensure_npm_tool(
    bin: &str,
    version: &str,
    reported: fn(&str) -> Option<&str>,
) -> Result<PathBuf> {
    let path = cmd::root()
        .join(TOOLS_DIR)
        .join("node_modules/.bin")
        .join(bin);
    let found = || {
        cmd::probe(Command::new(&path).arg("--version"))
            .and_then(|out| reported(&out).map(str::to_owned))
    };
    if found().as_deref() == Some(version) {
        eprintln!("{bin} {version}: installed ({})", shown(&path));
        return Ok(path);
    }
    let packages: Vec<String> = NPM_TOOLS.iter().map(|(p, v)| format!("{p}@{v}")).collect();
    eprintln!(
        "{bin} {version}: missing, installing npm {} into {TOOLS_DIR}/",
        packages.join(" ")
    );
    cmd::run(
        cmd::command("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                TOOLS_DIR,
            ])
            .args(&packages),
    )
    .with_context(|| {
        format!("installing {bin} (needs node and npm: `apt-get install nodejs npm`)")
    })?;
    match found() {
        Some(v) if v == version => Ok(path),
        other => bail!(
            "npm installed {bin}, but {} reports version {}",
            path.display(),
            other.as_deref().unwrap_or("nothing")
        ),
    }
}

/// `wasm-opt`: `wasm-opt version 132 (version_132)` → `132`.
fn ensure_wasm_opt() -> Result<PathBuf> {
    ensure_npm_tool("wasm-opt", BINARYEN_VERSION, |out| {
        out.split_whitespace()
            .skip_while(|w| *w != "version")
            .nth(1)
    })
}

/// `esbuild` (`0.28.2`) and `terser` (`terser 5.51.4`): the version is the last word.
fn ensure_js_tool(bin: &str, version: &str) -> Result<PathBuf> {
    ensure_npm_tool(bin, version, |out| out.split_whitespace().last())
}

/// Chromium and its WebDriver for `wasm-bindgen-test-runner`; returns the chromedriver path.
/// `$CHROMEDRIVER`, when set to an existing file, is used as is.
fn ensure_browser() -> Result<PathBuf> {
    if let Some(driver) = std::env::var_os("CHROMEDRIVER").map(PathBuf::from) {
        if driver.is_file() {
            eprintln!("chromedriver: {} (from $CHROMEDRIVER)", driver.display());
            return Ok(driver);
        }
    }
    let chromium = Path::new("/usr/bin/chromium");
    let driver = PathBuf::from("/usr/bin/chromedriver");
    if chromium.is_file() && driver.is_file() {
        eprintln!("chromium + chromedriver: installed");
        return Ok(driver);
    }
    let install = "apt-get update && apt-get install -y chromium chromium-driver";
    let is_root = cmd::probe(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
    let have_apt = Path::new("/usr/bin/apt-get").is_file();
    if !(is_root && have_apt) {
        bail!(
            "the browser tests need Chromium and chromedriver ({} and {} are missing); \
             install them (Debian: `sudo sh -c '{install}'`) or set CHROMEDRIVER to a chromedriver",
            chromium.display(),
            driver.display()
        );
    }
    eprintln!("chromium + chromedriver: missing, installing with apt-get");
    cmd::run(Command::new("apt-get").arg("update")).context("apt-get update")?;
    cmd::run(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing chromium and chromium-driver")?;
    if !driver.is_file() {
        bail!(
            "apt-get installed chromium-driver, but {} is still missing",
            driver.display()
        );
    }
    Ok(driver)
}

/// The Debian packages of the e2e suite's Firefox and WebKit (`www/e2e/ENGINES.md`, "Install").
pub const ENGINE_PACKAGES: &[&str] = &["firefox-esr", "webkit2gtk-driver", "xvfb"];

/// WebKitGTK's MiniBrowser: `$WEBKIT_MINIBROWSER`, else `/usr/lib/<arch>/webkit2gtk-4.1/MiniBrowser`.
fn find_minibrowser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEBKIT_MINIBROWSER").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("webkit2gtk-4.1/MiniBrowser"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// What is missing of the engines, by the package that brings it.
fn missing_engines() -> Vec<&'static str> {
    let mut missing = Vec::new();
    let firefox = std::env::var_os("FIREFOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"));
    if !firefox.is_file() {
        missing.push("firefox-esr");
    }
    if cmd::probe(Command::new("WebKitWebDriver").arg("--help")).is_none()
        || find_minibrowser().is_none()
    {
        missing.push("webkit2gtk-driver");
    }
    if !Path::new("/usr/bin/Xvfb").is_file() {
        missing.push("xvfb");
    }
    missing
}

/// Firefox ESR, WebKitGTK (WebKitWebDriver + MiniBrowser) and Xvfb for the e2e suite, installed
/// with apt-get when missing, then checked to work: Firefox reports its version, the driver
/// answers `--help`, MiniBrowser is there, and Xvfb starts a display. Returns MiniBrowser's path
/// (its folder depends on the architecture; the e2e suite gets it as `WEBKIT_MINIBROWSER`).
/// Chromium is [`ensure`]'s `browser`.
pub fn ensure_engines() -> Result<PathBuf> {
    let missing = missing_engines();
    if missing.is_empty() {
        eprintln!("firefox-esr + webkit2gtk-driver + xvfb: installed");
    } else {
        let install = format!(
            "apt-get update && apt-get install -y {}",
            ENGINE_PACKAGES.join(" ")
        );
        let is_root = cmd::probe(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
        if !(is_root && Path::new("/usr/bin/apt-get").is_file()) {
            bail!(
                "the e2e suite runs in Firefox and WebKit too, and {} {} missing; install them \
                 (Debian 12: `sudo sh -c '{install}'`)",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" }
            );
        }
        eprintln!(
            "{}: missing, installing with apt-get (about a minute)",
            missing.join(", ")
        );
        cmd::run(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .context("apt-get update")?;
        // With their recommended packages (fonts, GStreamer bits): the setup ENGINES.md measured.
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y"])
                .args(ENGINE_PACKAGES)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .with_context(|| format!("installing {}", ENGINE_PACKAGES.join(", ")))?;
        let still = missing_engines();
        if !still.is_empty() {
            bail!(
                "apt-get installed {}, but {} still missing or not working",
                ENGINE_PACKAGES.join(", "),
                still.join(", ")
            );
        }
    }
    check_engines()
}

/// Checks that the installed engines run; returns MiniBrowser's path.
fn check_engines() -> Result<PathBuf> {
    let firefox = std::env::var_os("FIREFOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"));
    let version = cmd::probe(Command::new(&firefox).arg("--version")).unwrap_or_default();
    if !version.contains("Firefox") {
        bail!(
            "{} --version did not report a Firefox ({:?}); reinstall it: `apt-get install --reinstall firefox-esr`",
            firefox.display(),
            version.trim()
        );
    }
    eprintln!("  {}", version.trim());
    let minibrowser = find_minibrowser().context(
        "WebKitGTK's MiniBrowser is missing (it comes with libwebkit2gtk-4.1-0, a dependency of \
         webkit2gtk-driver); set WEBKIT_MINIBROWSER to it",
    )?;
    eprintln!("  WebKitGTK MiniBrowser: {}", minibrowser.display());
    check_xvfb()?;
    Ok(minibrowser)
}

/// Starts Xvfb on a free display and stops it: MiniBrowser has no headless mode, so WebKit runs
/// on it (a broken Xvfb would otherwise show up as a WebKit session that never starts).
fn check_xvfb() -> Result<()> {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "640x480x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting Xvfb (apt-get install xvfb)")?;
    let mut stdout = child.stdout.take().context("Xvfb's stdout")?;
    // Xvfb prints the display number once it accepts clients; read it on a thread so the wait
    // is bounded.
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).is_ok_and(|n| n == 1) {
            if byte[0] == b'\n' {
                break;
            }
            out.push(char::from(byte[0]));
        }
        out
    });
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait();
    let display = if reader.is_finished() {
        reader.join().unwrap_or_default()
    } else {
        String::new()
    };
    if display.trim().parse::<u32>().is_err() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        bail!(
            "Xvfb did not start a display within 15 s ({status:?}): {}",
            err.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    eprintln!("  Xvfb: started display :{} and stopped it", display.trim());
    Ok(())
}

/// A path relative to the workspace root when it is inside it.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(cmd::root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.131"
"#;

    #[test]
    fn reads_the_locked_version() {
        assert_eq!(locked_version(LOCK, "wasm-bindgen").unwrap(), "0.2.130");
        assert_eq!(
            locked_version(LOCK, "wasm-bindgen-macro").unwrap(),
            "0.2.131"
        );
        assert!(locked_version(LOCK, "js-sys").is_err());
        let twice = format!("{LOCK}\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.99\"\n");
        assert!(locked_version(&twice, "wasm-bindgen")
            .unwrap_err()
            .to_string()
            .contains("several"));
    }

    #[test]
    fn the_workspace_lock_pins_wasm_bindgen() {
        let v = wasm_bindgen_version().unwrap();
        assert!(v.starts_with("0.2."), "{v}");
    }

    #[test]
    fn reads_the_pinned_channel() {
        assert_eq!(
            toml_string_value("[toolchain]\nchannel = \"1.95.0\"\n", "channel").as_deref(),
            Some("1.95.0")
        );
        assert_eq!(toml_string_value("channelx = \"1\"", "channel"), None);
    }
}

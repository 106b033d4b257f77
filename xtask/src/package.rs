//! `cargo xtask build`: the browser package in `pkg/`.
//!
//! The tracker is JavaScript (the loader, the tracker's plumbing) around two small WebAssembly
//! modules built from the one Rust crate, each with only the rules one kind of page needs
//! (`visit`: capture attribution; `order`: validate a sale; see `src/web.rs`). Steps:
//! 1. write `www/package/src/contract.js` from the core (the names the JS shares with the proxy);
//! 2. per module: compile the crate for `wasm32-unknown-unknown` (`wasm-release` profile, only
//!    that module's feature), generate its glue with `wasm-bindgen --target web`, shrink it with
//!    `wasm-opt -Oz --converge` (skipped with `--dev`);
//! 3. bundle and minify with esbuild (then terser, which shrinks esbuild's output further): the tracker with the `order` glue into `index.js` (the npm entry,
//!    ESM, loading its modules with `new URL(<the .wasm>, import.meta.url)` where bundlers see
//!    it), GA4 capture into `ga4.js` (imported by the tracker only where a page asks for it), the
//!    `visit` glue into `visit.js` (imported only where a page needs the `visit` rules), the
//!    sale at the edge into `sale.js` (imported by the loader only on a thank-you page it can
//!    serve without the tracker), and the loader into `salebeacon.js` (an IIFE for the script
//!    tag), built twice more as `salebeacon.quiet.js` and `salebeacon.waiting.js`, the loaders a
//!    same-origin proxy serves in its place when it knows whether a sale waits;
//! 4. write content-hashed copies of everything but the loader and point the loader at them;
//! 5. copy the hand-kept package files (`package.json`, `index.d.ts`, README, LICENSE) and print
//!    the size table, per kind of page.
//!
//! Why this order: `wasm-bindgen` must see the module rustc wrote (it reads the custom sections
//! that describe the exports), `wasm-opt` runs on the module that ships, and the hashes are taken
//! of the final bytes, so the sizes printed are what a page downloads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use salebeacon::contract;

use crate::{cmd, size, tools};

/// The crate that becomes the browser modules.
pub const CRATE: &str = "salebeacon";
/// The cargo profile for the shipped modules (defined in the root `Cargo.toml`).
pub const PROFILE: &str = "wasm-release";
/// The two modules, by their cargo feature: each `pkg/salebeacon_<name>_bg.wasm`.
pub const MODULES: [&str; 2] = ["visit", "order"];

/// Options of `cargo xtask build`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip `wasm-opt` and minification (a faster build, a bigger package).
    pub dev: bool,
}

/// Where the package is written.
pub fn pkg_dir() -> PathBuf {
    cmd::root().join("pkg")
}

/// The hand-kept package files (package.json, README, index.d.ts), copied into `pkg/`.
pub fn package_sources() -> PathBuf {
    cmd::root().join("www").join("package")
}

/// The tracker's JavaScript sources.
pub fn js_sources() -> PathBuf {
    package_sources().join("src")
}

/// Builds the package, prints its size table, and returns the `pkg/` path.
pub fn build(opts: Options) -> Result<PathBuf> {
    cmd::header("tools");
    let found = tools::ensure(tools::Needs {
        wasm_target: true,
        wasm_bindgen: true,
        wasm_opt: true,
        browser: false,
    })?;
    build_with(opts, &found)
}

/// Writes `www/package/src/contract.js` from the core; true when it changed.
pub fn write_contract() -> Result<bool> {
    let path = js_sources().join("contract.js");
    let text = salebeacon::contract::javascript();
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Builds the package with tools already ensured (`wasm-opt`, `esbuild` and `terser` are required).
pub fn build_with(opts: Options, found: &tools::Tools) -> Result<PathBuf> {
    let esbuild = found
        .esbuild
        .as_deref()
        .context("esbuild is required to build the package")?;
    if write_contract()? {
        eprintln!("wrote www/package/src/contract.js from src/contract.rs");
    }
    let stage = cmd::target_dir().join("js-build");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    std::fs::create_dir_all(&stage)?;
    copy_files(&js_sources(), &stage)?;

    let pkg = pkg_dir();
    // Start from an empty pkg/ so files of an earlier layout never linger in the package.
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).with_context(|| format!("clearing {}", pkg.display()))?;
    }
    std::fs::create_dir_all(&pkg)?;

    for module in MODULES {
        cmd::header(&format!(
            "compile {CRATE} for {} ({PROFILE}, module `{module}`)",
            tools::WASM_TARGET
        ));
        cmd::run(cmd::cargo().args([
            "build",
            "--lib",
            "--target",
            tools::WASM_TARGET,
            "--profile",
            PROFILE,
            "-p",
            CRATE,
            "--no-default-features",
            "--features",
            &format!("{module},embed"),
        ]))
        .with_context(|| format!("compiling the `{module}` module"))?;
        let built = cmd::target_dir()
            .join(tools::WASM_TARGET)
            .join(PROFILE)
            .join(format!("{CRATE}.wasm"));
        if !built.is_file() {
            bail!(
                "cargo built, but {} is missing (is `crate-type` still [\"cdylib\", \"rlib\"]?)",
                built.display()
            );
        }
        let name = format!("salebeacon_{module}");
        let raw = stage.join(format!("{name}.raw.wasm"));
        std::fs::copy(&built, &raw).with_context(|| format!("copying {}", built.display()))?;
        cmd::run(
            cmd::command("wasm-bindgen")
                // The tracker always passes the module's URL (written where bundlers see it), so
                // the glue's own default path is dead weight.
                .args(["--target", "web", "--omit-default-module-path", "--out-dir"])
                .arg(&stage)
                .args(["--out-name", &name])
                .arg(&raw),
        )
        .with_context(|| format!("generating the `{module}` glue (wasm-bindgen)"))?;
        trim_glue(&stage.join(format!("{name}.js")))?;
        let bg = stage.join(format!("{name}_bg.wasm"));
        let shipped = pkg.join(format!("{name}_bg.wasm"));
        if opts.dev {
            std::fs::copy(&bg, &shipped)?;
        } else {
            let wasm_opt = found
                .wasm_opt
                .as_deref()
                .context("wasm-opt is required for a release build")?;
            // Features come from the module's target_features section (kept by
            // strip="debuginfo"); the strip passes drop sections no browser reads.
            // `--low-memory-unused`: rustc's layout puts the 1 MiB stack first, growing down
            // towards address 0, and the data and the arena above it, so the first KiB is
            // never touched and constant offsets fold into addresses (-71 B brotli on `order`,
            // the thank-you page's headroom). `--zero-filled-memory`: the module's own memory
            // starts zeroed (it imports none). `--merge-similar-functions --dae-optimizing
            // --precompute-propagate` before -Oz: -70 B brotli on `order`, -40 on `visit`
            // (measured against -Oz alone; `--traps-never-happen` would save 300 more, but a
            // bug that traps today would then run on with garbage instead of failing loudly).
            cmd::run(
                cmd::command(wasm_opt)
                    .arg(&bg)
                    .args([
                        "--merge-similar-functions",
                        "--dae-optimizing",
                        "--precompute-propagate",
                        "-Oz",
                        "--converge",
                        "--strip-debug",
                        "--strip-producers",
                        "--strip-target-features",
                        "--low-memory-unused",
                        "--zero-filled-memory",
                        "-o",
                    ])
                    .arg(&shipped),
            )
            .with_context(|| format!("optimising the `{module}` module (wasm-opt)"))?;
        }
    }

    cmd::header("bundle the tracker and the loader (esbuild)");
    let minify = if opts.dev {
        "--log-level=warning"
    } else {
        "--minify"
    };
    cmd::run(
        cmd::command(esbuild)
            .arg(stage.join("tracker.js"))
            .args(["--bundle", "--format=esm", "--target=es2020", minify])
            // GA4 capture and the `visit` glue are files of their own, imported only by pages
            // that need them.
            .arg(format!("--external:./{GA4}"))
            .arg(format!("--external:./{VISIT_GLUE}"))
            .arg(format!("--outfile={}", pkg.join("index.js").display())),
    )
    .context("bundling the tracker (esbuild)")?;
    for part in [GA4, VISIT_GLUE, EDGE_SALE] {
        cmd::run(
            cmd::command(esbuild)
                .arg(stage.join(part))
                .args(["--bundle", "--format=esm", "--target=es2020", minify])
                .arg(format!("--outfile={}", pkg.join(part).display())),
        )
        .with_context(|| format!("bundling {part} (esbuild)"))?;
    }
    if !opts.dev {
        for part in ["index.js", GA4, VISIT_GLUE, EDGE_SALE] {
            shrink(found, &pkg.join(part), true)?;
        }
    }

    cmd::header("content-hashed embed files");
    let hashed = hash_embed(&pkg)?;
    for name in &hashed.written {
        eprintln!("  {name}");
    }
    // The loader three times: the one that checks the mark itself, and the two a proxy on the
    // page's origin serves in its place when the mark's cookie tells it whether a sale waits.
    for (file, waits) in LOADERS {
        cmd::run(
            cmd::command(esbuild)
                .arg(stage.join("loader.js"))
                .args(["--bundle", "--format=iife", "--target=es2020", minify])
                .arg(format!("--define:__RUNTIME__='{}'", hashed.index))
                .arg(format!("--define:__VISIT__='{}'", hashed.visit))
                .arg(format!("--define:__ORDER__='{}'", hashed.order))
                .arg(format!("--define:__VISIT_GLUE__='{}'", hashed.visit_glue))
                .arg(format!("--define:__SALE__='{}'", hashed.sale))
                .arg(format!("--define:__WAITS__={waits}"))
                .arg(format!("--outfile={}", pkg.join(file).display())),
        )
        .with_context(|| format!("bundling the loader {file} (esbuild)"))?;
        if !opts.dev {
            shrink(found, &pkg.join(file), false)?;
        }
    }

    // Brotli copies (quality 11) of what pages download: the proxy serves them to browsers that
    // take brotli, so a page downloads what the size table says.
    for entry in std::fs::read_dir(&pkg)? {
        let path = entry?.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("js" | "wasm")
        ) {
            let bytes = std::fs::read(&path)?;
            let mut name = path.clone().into_os_string();
            name.push(".br");
            std::fs::write(PathBuf::from(name), size::brotli(&bytes))
                .with_context(|| format!("writing the brotli copy of {}", path.display()))?;
        }
    }

    let extra = package_sources();
    cmd::header(&format!("copy {}/", tools::shown(&extra)));
    for name in copy_files(&extra, &pkg)? {
        eprintln!("  {name}");
    }
    let license = cmd::root().join("LICENSE");
    if license.is_file() {
        std::fs::copy(&license, pkg.join("LICENSE")).context("copying LICENSE")?;
    }

    size::report(&pkg)?;
    println!("pkg: {}", pkg.display());
    Ok(pkg)
}

/// The script-tag loader: the one embed file with a stable name (served `no-cache`).
pub const LOADER: &str = contract::LOADER_FILE;

/// Minifies an esbuild bundle again, in place, with terser (`module`: an ES module, whose
/// top-level names may be shortened too). esbuild bundles and minifies in one fast pass; terser's
/// slower compressor, run over its output, saves what a page downloads (measured, brotli: 280 B
/// on `index.js`, 43 on the loader), which is the budget the tracker's pages live in.
fn shrink(found: &tools::Tools, file: &Path, module: bool) -> Result<()> {
    let terser = found
        .terser
        .as_deref()
        .context("terser is required for a release build")?;
    let out = file.with_extension("min.js");
    cmd::run(
        cmd::command(terser)
            .arg(file)
            .args(if module { &["--module"][..] } else { &[][..] })
            .args([
                "--ecma",
                "2020",
                "--compress",
                "passes=3",
                "--mangle",
                "--output",
            ])
            .arg(&out),
    )
    .with_context(|| format!("minifying {} (terser)", file.display()))?;
    std::fs::rename(&out, file).with_context(|| format!("replacing {}", file.display()))
}

/// The loader's builds, each with what it knows of a waiting sale (`__WAITS__` in loader.js):
/// nothing (it checks the mark), none waits, one waits (see `salebeacon::contract::WAIT_COOKIE`).
pub const LOADERS: [(&str, &str); 3] = [
    (LOADER, "null"),
    (contract::LOADER_QUIET, "false"),
    (contract::LOADER_WAITING, "true"),
];
/// GA4 capture (`capture: ['ga4']`): the tracker imports it only on pages that ask for it.
pub const GA4: &str = "ga4.js";
/// The `visit` module's glue: the tracker imports it only on pages that need the `visit` rules.
pub const VISIT_GLUE: &str = "visit.js";
/// A sale at the edge: the loader imports it only on a thank-you page it can serve without the
/// tracker (not part of the npm package, whose pages run the tracker).
pub const EDGE_SALE: &str = "sale.js";

/// 40 bits of FNV-1a as 10 hex digits: a cache key for a file's content (not a security hash).
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h >> 24)
}

/// What wasm-bindgen's glue carries that these pages never use, and its warnings in words as short
/// as they can be, each in both glues: every working page's budget has no room for either. The
/// glue is pinned with wasm-bindgen, so a changed text fails the build here rather than slipping
/// through.
/// - the streaming warning, in fewer words;
/// - the initialisation's support for the old call form (a bare source, with a warning): the
///   tracker calls it one way only, with `{ module_or_path }` (rules.js);
/// - `passStringToWasm0`'s branch for a call without `realloc`: every call in both glues passes
///   `__wbindgen_realloc` (`trim_glue` checks that every call still does, and fails otherwise);
/// - the `TextEncoder.encodeInto` fallback: every engine has had it since 2020 (Chrome 74,
///   Firefox 66, Safari 14.1), years before the Web Locks and IndexedDB calls the tracker needs;
/// - the fresh `TextDecoder` after 2 GiB decoded (a Safari limit): the rules answer a few hundred
///   bytes a call, a few calls a sale; a page would need millions of sales to come near it.
const GLUE_TRIMS: [(&str, &str); 5] = [
    (
        "`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with \
         `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. \
         Original error:\\n",
        "salebeacon: .wasm not served as application/wasm (slower start):",
    ),
    (
        "    if (module_or_path !== undefined) {
        if (Object.getPrototypeOf(module_or_path) === Object.prototype) {
            ({module_or_path} = module_or_path)
        } else {
            console.warn('using deprecated parameters for the initialization function; pass a single object instead')
        }
    }
",
        "    ({module_or_path} = module_or_path);
",
    ),

    (
        "    if (realloc === undefined) {
        const buf = cachedTextEncoder.encode(arg);
        const ptr = malloc(buf.length, 1) >>> 0;
        getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
        WASM_VECTOR_LEN = buf.length;
        return ptr;
    }
",
        "",
    ),
    (
        "if (!('encodeInto' in cachedTextEncoder)) {
    cachedTextEncoder.encodeInto = function (arg, view) {
        const buf = cachedTextEncoder.encode(arg);
        view.set(buf);
        return {
            read: arg.length,
            written: buf.length
        };
    };
}
",
        "",
    ),
    (
        "const MAX_SAFARI_DECODE_BYTES = 2146435072;
let numBytesDecoded = 0;
function decodeText(bytes) {
    numBytesDecoded += bytes.length;
    if (numBytesDecoded >= MAX_SAFARI_DECODE_BYTES) {
        cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
        cachedTextDecoder.decode();
        numBytesDecoded = bytes.length;
    }
    return cachedTextDecoder.decode(bytes);
}
",
        "const decodeText = (bytes) => cachedTextDecoder.decode(bytes);
",
    ),
];

fn trim_glue(path: &Path) -> Result<()> {
    let file = path.display().to_string();
    let mut text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
    // The branch trimmed below serves calls without `realloc`: there must be none (the split's
    // first piece is the text before any call; the definition's parameters are `arg, malloc,
    // realloc`).
    let bare = text
        .split("passStringToWasm0(")
        .skip(1)
        .filter(|rest| {
            let args = rest.split(')').next().unwrap_or_default();
            args != "arg, malloc, realloc" && !args.contains("__wbindgen_realloc")
        })
        .count();
    if bare > 0 {
        bail!("{file}: {bare} passStringToWasm0 call(s) without __wbindgen_realloc: the glue trims no longer hold");
    }
    for (long, short) in GLUE_TRIMS {
        text = replace_once(&text, long, short, &file)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {file}"))
}

fn replace_once(text: &str, from: &str, to: &str, file: &str) -> Result<String> {
    if text.matches(from).count() != 1 {
        bail!("{file}: expected exactly one `{from}` to replace");
    }
    Ok(text.replacen(from, to, 1))
}

/// The names of the content-hashed copies the loader points at.
#[derive(Debug)]
pub struct Hashed {
    pub index: String,
    pub visit: String,
    pub order: String,
    /// The `visit` glue's hashed name (the loader starts it with the `visit` module).
    pub visit_glue: String,
    /// The sale at the edge's hashed name (the loader imports it).
    pub sale: String,
    /// Every file written.
    pub written: Vec<String>,
}

/// Writes content-hashed copies of the tracker and its modules, the tracker pointing at the
/// hashed modules, so the proxy can serve everything but the loader as immutable for a year: a
/// repeat page view revalidates one small file. The stable names stay for the npm package.
pub fn hash_embed(pkg: &Path) -> Result<Hashed> {
    let read =
        |name: &str| std::fs::read(pkg.join(name)).with_context(|| format!("reading pkg/{name}"));
    let mut written = Vec::new();
    let mut write = |name: String, bytes: &[u8]| -> Result<String> {
        std::fs::write(pkg.join(&name), bytes).with_context(|| format!("writing pkg/{name}"))?;
        written.push(name.clone());
        Ok(name)
    };
    let mut index = String::from_utf8(read("index.js")?).context("pkg/index.js is not UTF-8")?;
    let mut names = Vec::new();
    for module in MODULES {
        let stable = format!("salebeacon_{module}_bg.wasm");
        let wasm = read(&stable)?;
        let hashed = write(
            format!("salebeacon_{module}_bg.{}.wasm", content_hash(&wasm)),
            &wasm,
        )?;
        index = replace_once(
            &index,
            &format!("./{stable}"),
            &format!("./{hashed}"),
            "index.js",
        )?;
        names.push(hashed);
    }
    let mut parts = Vec::new();
    for part in [GA4, VISIT_GLUE] {
        let text = read(part)?;
        let stem = part.trim_end_matches(".js");
        let hashed = write(format!("{stem}.{}.js", content_hash(&text)), &text)?;
        index = replace_once(
            &index,
            &format!("./{part}"),
            &format!("./{hashed}"),
            "index.js",
        )?;
        parts.push(hashed);
    }
    let visit_glue = parts.pop().context("the visit glue")?;
    let text = read(EDGE_SALE)?;
    let sale = write(format!("sale.{}.js", content_hash(&text)), &text)?;
    let index_hashed = write(
        format!("index.{}.js", content_hash(index.as_bytes())),
        index.as_bytes(),
    )?;
    let order = names.pop().context("two modules")?;
    let visit = names.pop().context("two modules")?;
    Ok(Hashed {
        index: index_hashed,
        visit,
        order,
        visit_glue,
        sale,
        written,
    })
}

/// Copies every file directly in `from` into `to`, overwriting; returns the names copied.
pub fn copy_files(from: &Path, to: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", from.display()))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name();
        std::fs::copy(&path, to.join(&name))
            .with_context(|| format!("copying {} into {}", path.display(), to.display()))?;
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashes_are_stable_hex_and_change_with_content() {
        let a = content_hash(b"salebeacon");
        assert_eq!(a.len(), 10);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, content_hash(b"salebeacon"));
        assert_ne!(a, content_hash(b"salebeacon!"));
    }

    #[test]
    fn hashed_copies_point_the_tracker_at_its_hashed_modules() {
        let dir = std::env::temp_dir().join(format!("xtask-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("salebeacon_visit_bg.wasm"), b"\0asm v").unwrap();
        std::fs::write(dir.join("salebeacon_order_bg.wasm"), b"\0asm o").unwrap();
        std::fs::write(dir.join("ga4.js"), "export function watch() {}").unwrap();
        std::fs::write(dir.join("visit.js"), "export function put() {}").unwrap();
        std::fs::write(dir.join("sale.js"), "export function sell() {}").unwrap();
        std::fs::write(
            dir.join("index.js"),
            "new URL('./salebeacon_visit_bg.wasm', import.meta.url); new URL('./salebeacon_order_bg.wasm', import.meta.url); import('./ga4.js'); import('./visit.js');",
        )
        .unwrap();
        let h = hash_embed(&dir).unwrap();
        let index = std::fs::read_to_string(dir.join(&h.index)).unwrap();
        assert!(h.index.starts_with("index.") && h.index != "index.js");
        assert!(
            index.contains(&h.visit) && index.contains(&h.order),
            "{index}"
        );
        assert!(!index.contains("'./salebeacon_order_bg.wasm'"));
        // GA4 capture and the `visit` glue too: the hashed tracker imports the hashed copies.
        for part in [GA4, VISIT_GLUE] {
            let stem = part.trim_end_matches("js");
            let copy = h
                .written
                .iter()
                .find(|n| n.starts_with(stem) && *n != part)
                .unwrap();
            assert!(index.contains(&format!("import('./{copy}')")), "{index}");
        }
        // The sale at the edge: a hashed copy for the loader, the tracker does not import it.
        assert!(
            h.sale.starts_with("sale.") && h.sale != EDGE_SALE,
            "{}",
            h.sale
        );
        assert!(h.written.contains(&h.sale) && !index.contains(&h.sale));
        for name in &h.written {
            assert!(dir.join(name).is_file(), "{name}");
        }
        // The stable npm entry keeps the stable names.
        let stable = std::fs::read_to_string(dir.join("index.js")).unwrap();
        assert!(stable.contains("'./salebeacon_order_bg.wasm'"));
        // A source that does not match is an error, not a silently broken chain.
        std::fs::write(dir.join("index.js"), "nothing to point at").unwrap();
        assert!(hash_embed(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn copies_files_over_existing_ones() {
        let base = std::env::temp_dir().join(format!("xtask-copy-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(from.join("nested")).unwrap();
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(from.join("package.json"), "new").unwrap();
        std::fs::write(from.join("extra.d.ts"), "x").unwrap();
        std::fs::write(to.join("package.json"), "old").unwrap();
        let names = copy_files(&from, &to).unwrap();
        let copied = std::fs::read_to_string(to.join("package.json")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(names, ["extra.d.ts", "package.json"]);
        assert_eq!(copied, "new");
    }
}

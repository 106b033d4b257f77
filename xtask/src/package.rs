//! `cargo xtask build`: the browser package in `pkg/`.
//!
//! Steps: compile the crate for `wasm32-unknown-unknown` with the size-tuned `wasm-release`
//! profile, generate the ES-module glue and TypeScript types with `wasm-bindgen --target web`,
//! shrink the module with `wasm-opt -Oz --converge` and shorten the glue's import names (both
//! skipped with `--dev`), copy the hand-kept package files from `www/package/` over the generated
//! ones, and print the size table.
//!
//! Why this order: `wasm-bindgen` must see the module rustc wrote (it reads the custom sections
//! that describe the exports), and `wasm-opt` runs last on the module that ships, so the sizes
//! printed are the sizes a page downloads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{cmd, size, tools};

/// The crate that becomes the browser module.
pub const CRATE: &str = "salebeacon";
/// The cargo profile for the shipped module (defined in the root `Cargo.toml`).
pub const PROFILE: &str = "wasm-release";
/// The output name: `pkg/salebeacon.js`, `pkg/salebeacon_wasm_bg.wasm`, `pkg/salebeacon_wasm.d.ts`.
pub const OUT_NAME: &str = "salebeacon_wasm";

/// Options of `cargo xtask build`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip `wasm-opt` (a faster build, a bigger module).
    pub dev: bool,
}

/// Where the package is written.
pub fn pkg_dir() -> PathBuf {
    cmd::root().join("pkg")
}

/// The hand-kept package files (package.json, README, extra .d.ts), copied over `pkg/`.
pub fn package_sources() -> PathBuf {
    cmd::root().join("www").join("package")
}

/// Builds the package, prints its size table, and returns the `pkg/` path.
pub fn build(opts: Options) -> Result<PathBuf> {
    cmd::header("tools");
    let found = tools::ensure(tools::Needs {
        wasm_target: true,
        wasm_bindgen: true,
        wasm_opt: !opts.dev,
        browser: false,
    })?;
    build_with(opts, found.wasm_opt.as_deref())
}

/// Builds the package with tools already ensured (`wasm_opt` is required unless `opts.dev`).
pub fn build_with(opts: Options, wasm_opt: Option<&Path>) -> Result<PathBuf> {
    cmd::header(&format!(
        "compile {CRATE} for {} ({PROFILE})",
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
    ]))
    .context("compiling the browser module")?;

    let module = cmd::target_dir()
        .join(tools::WASM_TARGET)
        .join(PROFILE)
        .join(format!("{CRATE}.wasm"));
    if !module.is_file() {
        bail!(
            "cargo built, but {} is missing (is `crate-type` still [\"cdylib\", \"rlib\"]?)",
            module.display()
        );
    }

    let pkg = pkg_dir();
    cmd::header("wasm-bindgen --target web");
    // Start from an empty pkg/ so files of an earlier layout never linger in the package.
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).with_context(|| format!("clearing {}", pkg.display()))?;
    }
    cmd::run(
        cmd::command("wasm-bindgen")
            // index.js always passes the module's URL (written where bundlers see it), so the
            // glue's own default path is dead weight.
            .args(["--target", "web", "--omit-default-module-path", "--out-dir"])
            .arg(&pkg)
            .args(["--out-name", OUT_NAME])
            .arg(&module),
    )
    .context("generating the JS glue (wasm-bindgen)")?;

    let bg = pkg.join(format!("{OUT_NAME}_bg.wasm"));
    if opts.dev {
        eprintln!("\n--dev: skipping wasm-opt");
    } else {
        let wasm_opt = wasm_opt.context("wasm-opt is required for a release build")?;
        cmd::header("wasm-opt -Oz --converge");
        // Features come from the module's target_features section (kept by strip="debuginfo");
        // the strip passes run after optimising and drop sections no browser reads.
        let tmp = pkg.join(format!("{OUT_NAME}_bg.opt.wasm"));
        cmd::run(
            cmd::command(wasm_opt)
                .arg(&bg)
                .args([
                    "-Oz",
                    // Repeat the passes while they still shrink the module (~200 B brotli).
                    "--converge",
                    "--strip-debug",
                    "--strip-producers",
                    "--strip-target-features",
                    "-o",
                ])
                .arg(&tmp),
        )
        .context("optimising the module (wasm-opt)")?;
        std::fs::rename(&tmp, &bg).with_context(|| format!("replacing {}", bg.display()))?;
        cmd::header("short import names");
        let n = shorten_imports(&bg, &pkg.join(format!("{OUT_NAME}.js")))?;
        eprintln!("  {n} imports renamed");
    }

    let extra = package_sources();
    if extra.is_dir() {
        cmd::header(&format!("copy {}/", tools::shown(&extra)));
        for name in copy_files(&extra, &pkg)? {
            eprintln!("  {name}");
        }
    }

    if pkg.join(LOADER).is_file() {
        cmd::header("content-hashed embed files");
        for name in hash_embed(&pkg)? {
            eprintln!("  {name}");
        }
    }

    size::report(&pkg)?;
    println!("pkg: {}", pkg.display());
    Ok(pkg)
}

/// The script-tag loader: the one embed file with a stable name (served `no-cache`).
pub const LOADER: &str = "salebeacon.js";

/// 40 bits of FNV-1a as 10 hex digits: a cache key for a file's content (not a security hash).
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h >> 24)
}

fn replace_once(text: &str, from: &str, to: &str, file: &str) -> Result<String> {
    if text.matches(from).count() != 1 {
        bail!("{file}: expected exactly one `{from}` to point at its hashed copy");
    }
    Ok(text.replacen(from, to, 1))
}

/// Writes content-hashed copies of the embed's module chain and points the loader at them, so
/// the proxy can serve everything but the loader as immutable for a year (DESIGN: long-lived
/// caching for content-hashed names): a repeat page view revalidates one small file. The
/// stable names stay for the npm package (`index.js` imports `./salebeacon_wasm.js`).
pub fn hash_embed(pkg: &Path) -> Result<Vec<String>> {
    let read =
        |name: &str| std::fs::read(pkg.join(name)).with_context(|| format!("reading pkg/{name}"));
    let text = |name: &str| -> Result<String> {
        String::from_utf8(read(name)?).with_context(|| format!("pkg/{name} is not UTF-8"))
    };
    let mut written = Vec::new();
    let mut write = |name: String, bytes: &[u8]| -> Result<String> {
        std::fs::write(pkg.join(&name), bytes).with_context(|| format!("writing pkg/{name}"))?;
        written.push(name.clone());
        Ok(name)
    };
    let wasm_name = format!("{OUT_NAME}_bg.wasm");
    let wasm = read(&wasm_name)?;
    let wasm_hashed = write(format!("{OUT_NAME}_bg.{}.wasm", content_hash(&wasm)), &wasm)?;
    let glue = read(&format!("{OUT_NAME}.js"))?;
    let glue_hashed = write(format!("{OUT_NAME}.{}.js", content_hash(&glue)), &glue)?;
    let mut index = text("index.js")?;
    index = replace_once(
        &index,
        &format!("'./{OUT_NAME}.js'"),
        &format!("'./{glue_hashed}'"),
        "index.js",
    )?;
    index = replace_once(
        &index,
        &format!("'./{wasm_name}'"),
        &format!("'./{wasm_hashed}'"),
        "index.js",
    )?;
    let index_hashed = write(
        format!("index.{}.js", content_hash(index.as_bytes())),
        index.as_bytes(),
    )?;
    let loader = replace_once(
        &text(LOADER)?,
        "'index.js'",
        &format!("'{index_hashed}'"),
        LOADER,
    )?;
    std::fs::write(pkg.join(LOADER), loader).context("writing pkg/salebeacon.js")?;
    written.push(format!("{LOADER} -> {index_hashed}"));
    Ok(written)
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

/// The import module wasm-bindgen names after the glue file.
const GLUE_MODULE: &str = "./salebeacon_wasm_bg.js";
/// What the import module is renamed to.
const SHORT_MODULE: &str = "w";

/// Renames the module's imports from the glue to short names, in the `.wasm` and in the glue's
/// import object alike; returns how many names changed.
///
/// wasm-bindgen names each import `__wbg_{method}_{16 hex digits}` under the module
/// `./salebeacon_wasm_bg.js`, and the names appear twice (wasm import section, glue JS). The hash
/// digits do not compress: shortening them saves about 2 KB brotli of the embed. Only the import
/// object's keys and the import section change; exports keep their names.
pub fn shorten_imports(wasm_path: &Path, glue_path: &Path) -> Result<usize> {
    let wasm =
        std::fs::read(wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let glue = std::fs::read_to_string(glue_path)
        .with_context(|| format!("reading {}", glue_path.display()))?;
    let mut renames: Vec<(String, String)> = Vec::new();
    let new_wasm = rewrite_imports(&wasm, |module, name| {
        if module != GLUE_MODULE {
            return None;
        }
        let short = match renames.iter().find(|(old, _)| old == name) {
            Some((_, short)) => short.clone(),
            None => {
                let short = format!("${:x}", renames.len());
                renames.push((name.to_owned(), short.clone()));
                short
            }
        };
        Some((SHORT_MODULE.to_owned(), short))
    })
    .with_context(|| format!("reading the imports of {}", wasm_path.display()))?;
    // The import object: `    const import0 = {` ... `        name: function(...`, and the
    // module key `"./salebeacon_wasm_bg.js": import0`. Each key must be found exactly once.
    let mut js = glue;
    for (old, short) in &renames {
        let key = format!("\n        {old}: function");
        if js.matches(&key).count() != 1 {
            bail!("the glue has no single import `{old}` (wasm-bindgen changed its output?)");
        }
        js = js.replace(&key, &format!("\n        {short}: function"));
    }
    let module_key = format!("\"{GLUE_MODULE}\": import0");
    if js.matches(&module_key).count() != 1 {
        bail!("the glue has no single `{module_key}` (wasm-bindgen changed its output?)");
    }
    js = js.replace(&module_key, &format!("\"{SHORT_MODULE}\": import0"));
    std::fs::write(wasm_path, new_wasm)
        .with_context(|| format!("writing {}", wasm_path.display()))?;
    std::fs::write(glue_path, js).with_context(|| format!("writing {}", glue_path.display()))?;
    Ok(renames.len())
}

fn read_leb(bytes: &[u8], at: &mut usize) -> Result<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at).context("truncated LEB128")?;
        *at += 1;
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("LEB128 too long")
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read_name<'a>(bytes: &'a [u8], at: &mut usize) -> Result<&'a str> {
    let len = read_leb(bytes, at)? as usize;
    let name = bytes.get(*at..*at + len).context("truncated name")?;
    *at += len;
    std::str::from_utf8(name).context("a name is not UTF-8")
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    write_leb(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

/// Copies a wasm module, renaming imports: `rename(module, name)` returns the new
/// `(module, name)`, or `None` to keep it. Every other section is copied byte for byte.
fn rewrite_imports(
    wasm: &[u8],
    mut rename: impl FnMut(&str, &str) -> Option<(String, String)>,
) -> Result<Vec<u8>> {
    if wasm.get(..8) != Some(b"\0asm\x01\0\0\0".as_slice()) {
        bail!("not a wasm module (version 1)");
    }
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = read_leb(wasm, &mut at)? as usize;
        let body = wasm.get(at..at + size).context("truncated section")?;
        at += size;
        let body = if id == 2 {
            rewrite_import_section(body, &mut rename)?
        } else {
            body.to_vec()
        };
        out.push(id);
        write_leb(&mut out, body.len() as u32);
        out.extend_from_slice(&body);
    }
    Ok(out)
}

fn rewrite_import_section(
    body: &[u8],
    rename: &mut impl FnMut(&str, &str) -> Option<(String, String)>,
) -> Result<Vec<u8>> {
    let mut at = 0;
    let count = read_leb(body, &mut at)?;
    let mut out = Vec::with_capacity(body.len());
    write_leb(&mut out, count);
    for _ in 0..count {
        let module = read_name(body, &mut at)?;
        let name = read_name(body, &mut at)?;
        // The import's description: kind byte, then a type index (func, tag) or a type.
        let start = at;
        let kind = *body.get(at).context("truncated import")?;
        at += 1;
        match kind {
            // func: type index
            0x00 => {
                read_leb(body, &mut at)?;
            }
            // table: reftype, limits
            0x01 => {
                at += 1;
                skip_limits(body, &mut at)?;
            }
            // memory: limits
            0x02 => skip_limits(body, &mut at)?,
            // global: valtype, mutability
            0x03 => at += 2,
            // tag: attribute, type index
            0x04 => {
                at += 1;
                read_leb(body, &mut at)?;
            }
            other => bail!("unknown import kind {other:#x}"),
        }
        let desc = body.get(start..at).context("truncated import")?;
        match rename(module, name) {
            Some((m, n)) => {
                write_name(&mut out, &m);
                write_name(&mut out, &n);
            }
            None => {
                write_name(&mut out, module);
                write_name(&mut out, name);
            }
        }
        out.extend_from_slice(desc);
    }
    if at != body.len() {
        bail!("unexpected bytes after the imports");
    }
    Ok(out)
}

fn skip_limits(body: &[u8], at: &mut usize) -> Result<()> {
    let flags = *body.get(*at).context("truncated limits")?;
    *at += 1;
    read_leb(body, at)?;
    if flags & 1 != 0 {
        read_leb(body, at)?;
    }
    Ok(())
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
    fn hashed_chain_points_each_file_at_the_next() {
        let dir = std::env::temp_dir().join(format!("xtask-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("salebeacon_wasm_bg.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.join("salebeacon_wasm.js"), "export default 1;").unwrap();
        std::fs::write(
            dir.join("index.js"),
            "import g from './salebeacon_wasm.js'; new URL('./salebeacon_wasm_bg.wasm', import.meta.url);",
        )
        .unwrap();
        std::fs::write(dir.join(LOADER), "import(dir.href + 'index.js')").unwrap();
        let written = hash_embed(&dir).unwrap();
        let loader = std::fs::read_to_string(dir.join(LOADER)).unwrap();
        let index_name = loader.split('\'').nth(1).unwrap().to_owned();
        assert!(index_name.starts_with("index.") && index_name != "index.js");
        let index = std::fs::read_to_string(dir.join(&index_name)).unwrap();
        assert!(!index.contains("'./salebeacon_wasm.js'"));
        assert!(!index.contains("'./salebeacon_wasm_bg.wasm'"));
        for name in written.iter().filter(|n| !n.contains("->")) {
            assert!(dir.join(name).is_file(), "{name}");
            assert!(
                index.contains(name.as_str()) || name.starts_with("index."),
                "{name}"
            );
        }
        // A source that does not match is an error, not a silently broken chain.
        std::fs::write(dir.join(LOADER), "import('./other.js')").unwrap();
        assert!(hash_embed(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renames_imports_and_keeps_other_sections() {
        let mut imports = vec![2];
        for (m, n) in [(GLUE_MODULE, "__wbg_now_0123456789abcdef"), ("env", "keep")] {
            write_name(&mut imports, m);
            write_name(&mut imports, n);
            imports.extend_from_slice(&[0x00, 0x00]); // func, type 0
        }
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        wasm.push(2);
        write_leb(&mut wasm, imports.len() as u32);
        wasm.extend_from_slice(&imports);
        let renamed = rewrite_imports(&wasm, |m, n| {
            (m == GLUE_MODULE).then(|| (SHORT_MODULE.to_owned(), format!("$0{}", n.len())))
        })
        .unwrap();
        let mut seen = Vec::new();
        let again = rewrite_imports(&renamed, |m, n| {
            seen.push((m.to_owned(), n.to_owned()));
            None
        })
        .unwrap();
        assert_eq!(again, renamed);
        assert_eq!(renamed[8..14], wasm[8..14]);
        assert_eq!(
            seen,
            [("w".into(), "$026".into()), ("env".into(), "keep".into())]
        );
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

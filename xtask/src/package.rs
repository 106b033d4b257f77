//! `cargo xtask build`: the browser package in `pkg/`.
//!
//! Steps: compile the crate for `wasm32-unknown-unknown` with the size-tuned `wasm-release`
//! profile, generate the ES-module glue and TypeScript types with `wasm-bindgen --target web`,
//! shrink the module with `wasm-opt -Oz` (skipped with `--dev`), copy the hand-kept package files
//! from `www/package/` over the generated ones, and print the size table.
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
            .args(["--target", "web", "--out-dir"])
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
        cmd::header("wasm-opt -Oz");
        // Features come from the module's target_features section (kept by strip="debuginfo");
        // the strip passes run after optimising and drop sections no browser reads.
        let tmp = pkg.join(format!("{OUT_NAME}_bg.opt.wasm"));
        cmd::run(
            cmd::command(wasm_opt)
                .arg(&bg)
                .args([
                    "-Oz",
                    "--strip-debug",
                    "--strip-producers",
                    "--strip-target-features",
                    "-o",
                ])
                .arg(&tmp),
        )
        .context("optimising the module (wasm-opt)")?;
        std::fs::rename(&tmp, &bg).with_context(|| format!("replacing {}", bg.display()))?;
    }

    let extra = package_sources();
    if extra.is_dir() {
        cmd::header(&format!("copy {}/", tools::shown(&extra)));
        for name in copy_files(&extra, &pkg)? {
            eprintln!("  {name}");
        }
    }

    size::report(&pkg)?;
    println!("pkg: {}", pkg.display());
    Ok(pkg)
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

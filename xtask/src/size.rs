//! The size report of the built package: raw, gzip -9 and brotli q11 bytes of every `.js` and
//! `.wasm` file in `pkg/`, and their total.
//!
//! The budgets are per kind of page, in brotli bytes, which is what a page downloads from the
//! proxy: a quiet page loads the loader only (at most 1,500 B); a working page (a landing page
//! that captures, a thank-you page that records a sale) loads the loader, the tracker and the one
//! rules module it needs (at most 20 KiB). Measuring with the same compressors a server uses (at
//! their highest settings) keeps the budgets honest after every build. The benchmark
//! (`cargo xtask bench embed`) measures what browsers actually transfer.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A quiet page's budget (the loader alone), brotli bytes.
pub const QUIET_BUDGET_BROTLI: u64 = 1500;
/// A working page's budget (everything it downloads), brotli bytes (20 KB, read as KiB).
pub const WORKING_BUDGET_BROTLI: u64 = 20 * 1024;

/// One measured file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

/// gzip at level 9 (what `gzip -9` produces, header included).
pub fn gzip_len(data: &[u8]) -> u64 {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail").len() as u64
}

/// brotli at quality 11, window 22 (the `brotli` CLI's defaults for `-q 11`).
pub fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        enc.write_all(data).expect("writing to a Vec cannot fail");
    }
    out
}

/// The length of [`brotli`]'s output.
pub fn brotli_len(data: &[u8]) -> u64 {
    brotli(data).len() as u64
}

/// Measures every `.js` and `.wasm` file directly in `dir`, sorted by name.
pub fn measure(dir: &Path) -> Result<Vec<Row>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("js" | "wasm")))
        // Content-hashed copies (`index.<10 hex>.js`) are the stable-named files as the embed
        // serves them (see `served`); the table lists each file once.
        .filter(|p| !is_hashed_copy(p))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            row_of(path, name.into_owned())
        })
        .collect()
}

/// The table as text, with a total row.
pub fn render(rows: &[Row]) -> String {
    let total = Row {
        name: "total".into(),
        raw: rows.iter().map(|r| r.raw).sum(),
        gzip: rows.iter().map(|r| r.gzip).sum(),
        brotli: rows.iter().map(|r| r.brotli).sum(),
    };
    let width = rows
        .iter()
        .chain([&total])
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:>10}  {:>10}  {:>10}\n",
        "file", "raw", "gzip -9", "brotli 11"
    );
    let rule = format!("{}\n", "-".repeat(width + 36));
    out.push_str(&rule);
    for r in rows {
        out.push_str(&line(r, width));
    }
    out.push_str(&rule);
    out.push_str(&line(&total, width));
    out
}

fn line(r: &Row, width: usize) -> String {
    format!(
        "{:<width$}  {:>10}  {:>10}  {:>10}\n",
        r.name,
        group(r.raw),
        group(r.gzip),
        group(r.brotli)
    )
}

/// `12345` → `12,345`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What each kind of page downloads with the script-tag embed, and its budget.
pub const PAGES: [(&str, &[&str], u64); 5] = [
    ("quiet page", &["salebeacon.js"], QUIET_BUDGET_BROTLI),
    (
        "quiet page, proxy on its origin",
        &["salebeacon.quiet.js"],
        QUIET_BUDGET_BROTLI,
    ),
    (
        "landing page",
        &[
            "salebeacon.js",
            "index.js",
            "visit.js",
            "salebeacon_visit_bg.wasm",
        ],
        WORKING_BUDGET_BROTLI,
    ),
    (
        "thank-you page",
        &["salebeacon.js", "index.js", "salebeacon_order_bg.wasm"],
        WORKING_BUDGET_BROTLI,
    ),
    (
        "thank-you page, sale at the edge",
        // Only on the proxy's origin, which serves the loader built for it.
        &["salebeacon.quiet.js", "sale.js"],
        WORKING_BUDGET_BROTLI,
    ),
];

/// A page's brotli bytes, and its files that are missing from `rows`.
pub fn page_brotli(rows: &[Row], files: &[&'static str]) -> (u64, Vec<&'static str>) {
    let mut total = 0;
    let mut missing = Vec::new();
    for name in files {
        match rows.iter().find(|r| r.name == *name) {
            Some(r) => total += r.brotli,
            None => missing.push(*name),
        }
    }
    (total, missing)
}

/// One file measured, under `name`.
fn row_of(path: &Path, name: String) -> Result<Row> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Row {
        name,
        raw: data.len() as u64,
        gzip: gzip_len(&data),
        brotli: brotli_len(&data),
    })
}

/// What a page downloads under each stable name: the content-hashed copy where the build wrote
/// one (the loader points at those, and the tracker's copy names the hashed modules, so it is a
/// few bytes longer than `index.js`), else the file itself. Named by the stable name.
pub fn served(dir: &Path, rows: &[Row]) -> Result<Vec<Row>> {
    let mut copies: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_hashed_copy(p))
        .collect();
    copies.sort();
    let mut out = Vec::new();
    for row in rows {
        let (stem, ext) = row.name.rsplit_once('.').unwrap_or((&row.name, ""));
        let copy = copies.iter().find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.strip_prefix(stem)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_suffix(ext))
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(|hash| hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        });
        out.push(match copy {
            Some(path) => row_of(path, row.name.clone())?,
            None => row.clone(),
        });
    }
    Ok(out)
}

/// Whether a file name has a content-hash segment: `name.<10 hex digits>.ext`.
fn is_hashed_copy(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.split('.')
        .any(|part| part.len() == 10 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Prints the table for `dir` and how each kind of page compares with its budget.
pub fn report(dir: &Path) -> Result<Vec<Row>> {
    let rows = measure(dir)?;
    println!("\nsizes of {}/ (bytes):", crate::tools::shown(dir));
    print!("{}", render(&rows));
    // The budgets count what a page downloads: the hashed copies the loader points at.
    let pages = served(dir, &rows)?;
    for (page, files, budget) in PAGES {
        let (bytes, missing) = page_brotli(&pages, files);
        let verdict = if bytes <= budget {
            "within budget"
        } else {
            "OVER BUDGET"
        };
        println!(
            "{page} ({}), brotli: {} of {} bytes: {verdict}{}",
            files.join(" + "),
            group(bytes),
            group(budget),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" (missing: {})", missing.join(", "))
            }
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_like_the_real_tools() {
        let text = "salebeacon ".repeat(1000);
        let (gz, br) = (gzip_len(text.as_bytes()), brotli_len(text.as_bytes()));
        assert!(gz < 200 && br < 100, "gzip {gz}, brotli {br}");
        // gzip has an 18-byte frame; brotli of nothing is a single byte.
        assert_eq!(gzip_len(b""), 20);
        assert_eq!(brotli_len(b""), 1);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn pages_count_the_hashed_copies_they_download() {
        let dir = std::env::temp_dir().join(format!("xtask-served-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.js"), "import './m_bg.wasm'").unwrap();
        // The hashed copy names the hashed module: longer than the stable file.
        std::fs::write(
            dir.join("index.0123456789.js"),
            "import './m_bg.abcdef0123.wasm'; // and more",
        )
        .unwrap();
        std::fs::write(dir.join("m_bg.wasm"), [1u8; 10]).unwrap();
        let rows = measure(&dir).unwrap();
        let pages = served(&dir, &rows).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let index = |rows: &[Row]| rows.iter().find(|r| r.name == "index.js").unwrap().raw;
        assert_eq!(index(&rows), 20);
        assert_eq!(index(&pages), 44);
        assert_eq!(pages[1], rows[1], "no copy: the file itself");
    }

    #[test]
    fn measures_only_js_and_wasm() {
        let dir = std::env::temp_dir().join(format!("xtask-size-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.wasm"), [0u8; 100]).unwrap();
        std::fs::write(dir.join("a.js"), "export {}").unwrap();
        std::fs::write(dir.join("a.0123456789.js"), "export {}").unwrap();
        std::fs::write(dir.join("a.d.ts"), "export {}").unwrap();
        std::fs::write(dir.join("package.json"), "{}").unwrap();
        let rows = measure(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a.js", "b.wasm"]);
        assert_eq!(rows[1].raw, 100);
        let table = render(&rows);
        assert!(
            table.lines().last().unwrap().starts_with("total"),
            "{table}"
        );
        assert!(table.contains("109"), "{table}");
        let (bytes, missing) = page_brotli(&rows, &["a.js", "nope.wasm"]);
        assert_eq!(bytes, rows[0].brotli);
        assert_eq!(missing, ["nope.wasm"]);
    }
}

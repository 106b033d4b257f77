//! The operator's documentation holds: the systemd unit in the README passes `systemd-analyze
//! verify` (no unknown keys, no bad values), and the README names every metric the proxy exports.

mod common;

use common::process::BIN;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README")
}

/// The text of the README's only fenced block of `lang`.
fn block(text: &str, lang: &str) -> String {
    let fence = format!("```{lang}\n");
    let start = text.find(&fence).expect("a fenced block") + fence.len();
    let end = text[start..].find("```").expect("a closed block") + start;
    assert!(
        !text[end..].contains(&fence),
        "one ```{lang} block only, so this test reads the right one"
    );
    text[start..end].to_owned()
}

#[test]
fn the_readmes_systemd_unit_verifies() {
    let analyze = std::path::Path::new("/usr/bin/systemd-analyze");
    if !analyze.is_file() {
        // Debian ships it with systemd; CI machines have it.
        eprintln!("no systemd-analyze: not checked");
        return;
    }
    let unit = block(&readme(), "ini").replace("/usr/local/bin/salebeacon-proxy", BIN);
    assert!(
        unit.contains(BIN),
        "the unit runs /usr/local/bin/salebeacon-proxy"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("salebeacon-proxy@8081.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let err = String::from_utf8_lossy(&out.stderr);
    // Warnings about the host (no systemd running as PID 1) are not the unit's.
    let about_unit: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("salebeacon-proxy@"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {err}"
    );
}

#[test]
fn the_readme_names_every_metric() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/metrics.rs"))
        .expect("metrics.rs");
    let readme = readme();
    let mut names: Vec<&str> = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("salebeacon_"))
        .map(|w| {
            w.trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum")
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");
    let missing: Vec<&&str> = names.iter().filter(|n| !readme.contains(**n)).collect();
    assert!(missing.is_empty(), "README.md does not name {missing:?}");
}

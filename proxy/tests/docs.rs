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

/// The root README's data inventory names every cookie and storage key the code writes, every
/// personal field the outbox keeps, and only names the code uses.
#[test]
fn the_data_inventory_matches_the_code() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let start = readme
        .find("## Data inventory")
        .expect("a Data inventory section");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |i| i + start + 3);
    let inventory = &readme[start..end];
    let named = |name: &str| inventory.contains(&format!("`{name}`"));

    // Cookies: the contract's (the mark's too) and the dashboard's.
    use salebeacon::contract::{AFF_COOKIES, STORAGE_PREFIX, VID_COOKIES, WAIT_COOKIE};
    let mut cookies: Vec<&str> = AFF_COOKIES
        .iter()
        .chain(VID_COOKIES.iter())
        .copied()
        .collect();
    cookies.push(WAIT_COOKIE);
    cookies.push(salebeacon_proxy::http::session::COOKIE);
    for c in &cookies {
        assert!(
            inventory.contains(&format!("`{c}`")) || inventory.contains(&format!("`{c}`,")),
            "cookie {c} is not in the inventory"
        );
    }

    // localStorage: every key the tracker's JavaScript writes through storage.js.
    let src = format!("{root}/www/package/src");
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(&src).expect("the tracker's sources") {
        let path = entry.expect("a file").path();
        if path.extension().is_some_and(|e| e == "js") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            for pattern in ["storage.set('", "storage.setJson('"] {
                for part in text.split(pattern).skip(1) {
                    if let Some(key) = part.split('\'').next() {
                        keys.push(format!("{STORAGE_PREFIX}{key}"));
                    }
                }
            }
        }
    }
    let outbox_js = std::fs::read_to_string(format!("{src}/outbox.js")).expect("outbox.js");
    for (constant, suffix) in [("const O = '", "<order_id>"), ("const D = '", "<order_id>")] {
        let prefix = outbox_js
            .split(constant)
            .nth(1)
            .and_then(|p| p.split('\'').next())
            .unwrap_or_else(|| panic!("outbox.js has no {constant}"));
        keys.push(format!("{STORAGE_PREFIX}{prefix}{suffix}"));
    }
    // Raw sales: the contract's key, in outbox.js and in the loader's sale at the edge.
    let sale_js = std::fs::read_to_string(format!("{src}/sale.js")).expect("sale.js");
    assert!(
        outbox_js.contains("const R = RAW_KEY;") && sale_js.contains("PREFIX + RAW_KEY +"),
        "the raw sale's key no longer comes from the contract"
    );
    keys.push(format!(
        "{STORAGE_PREFIX}{}<n>",
        salebeacon::contract::RAW_SALE_KEY
    ));
    let lock_js = std::fs::read_to_string(format!("{src}/lock.js")).expect("lock.js");
    assert!(
        lock_js.contains("`lock:${orderId}`"),
        "lock.js's key changed"
    );
    keys.push(format!("{STORAGE_PREFIX}lock:<order_id>"));
    keys.push(format!(
        "{STORAGE_PREFIX}{}",
        salebeacon::contract::OUTBOX_MARKER
    ));
    assert!(keys.len() >= 8, "{keys:?}");
    for k in &keys {
        assert!(named(k), "localStorage key {k} is not in the inventory");
    }

    // The outbox: every personal field that erasure removes is named, and the tables.
    for f in salebeacon_proxy::outbox::PERSONAL_FIELDS {
        assert!(named(f), "personal field {f} is not in the inventory");
    }
    for t in ["jobs.body", "jobs.order_id", "refused"] {
        assert!(named(t), "{t} is not in the inventory");
    }

    // And every backticked salebeacon:/sb_ name in the inventory is one of the above.
    for part in inventory.split('`').skip(1).step_by(2) {
        if part.starts_with(STORAGE_PREFIX) {
            assert!(
                keys.iter().any(|k| k == part),
                "{part} is not a key the tracker uses"
            );
        }
        if part.starts_with("sb_") {
            assert!(
                cookies.contains(&part),
                "{part} is not a cookie the code sets"
            );
        }
    }
}

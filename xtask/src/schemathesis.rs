//! `cargo xtask test`'s API contract step: Schemathesis (from PyPI) against a running proxy,
//! generating requests from the proxy's own OpenAPI document (`{base}/openapi.json`) and
//! failing on any 5xx, any status code, content type or body the document does not describe,
//! and any crash.
//!
//! The real stack, on loopback: the sandbox and the proxy as their debug binaries (the native
//! step built them), an outbox in a temporary folder, the admin token passed as a header so the
//! admin API is exercised past its guard, and one sale recorded first so the operations on
//! `/admin/sales/{order_id}` reach a sale. Both processes are stopped and waited for whatever
//! happens.
//!
//! Schemathesis lives in a virtual environment under `.tools/` at a pinned version, installed
//! with pip when missing or different (about 20 s once).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::cmd;

/// What a run found: operations tested without a failure, and failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

/// The Schemathesis release the step runs.
pub const VERSION: &str = "4.32.5";
/// Examples per operation (`SALEBEACON_SCHEMATHESIS_EXAMPLES` overrides).
const EXAMPLES: u32 = 30;
const API_KEY: &str = "sk_schemathesis_sandbox";
const ADMIN_TOKEN: &str = "schemathesis-admin-token-0123456789";

/// `.tools/schemathesis/bin/st`, installed if missing or of another version.
pub fn ensure() -> Result<PathBuf> {
    let venv = cmd::root()
        .join(crate::tools::TOOLS_DIR)
        .join("schemathesis");
    let st = venv.join("bin").join("st");
    let version = || cmd::probe(Command::new(&st).arg("--version"));
    if version().is_some_and(|v| v.contains(VERSION)) {
        eprintln!("schemathesis {VERSION}: installed");
        return Ok(st);
    }
    eprintln!(
        "schemathesis {VERSION}: missing, installing from PyPI into {}",
        venv.display()
    );
    cmd::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("creating a Python virtual environment (needs python3 with venv)")?;
    cmd::run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={VERSION}")),
    )
    .context("installing schemathesis from PyPI")?;
    match version() {
        Some(v) if v.contains(VERSION) => Ok(st),
        other => bail!(
            "pip installed schemathesis, but {} reports {}",
            st.display(),
            other.as_deref().unwrap_or("nothing")
        ),
    }
}

/// A child process that is killed and waited for when dropped.
struct Running {
    child: Child,
    name: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin` with `args`, and reads its stdout (`on_stdout`) or stderr until a line holds
/// `announce`; returns the rest of that line (the URL it listens on). The stream is drained
/// until the process ends.
fn start(
    name: &'static str,
    bin: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    announce: &str,
    on_stdout: bool,
) -> Result<(Running, String)> {
    let mut command = Command::new(bin);
    command
        .args(args)
        .envs(envs.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    if on_stdout {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
    } else {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stream: Option<Box<dyn std::io::Read + Send>> = if on_stdout {
        child.stdout.take().map(|s| Box::new(s) as _)
    } else {
        child.stderr.take().map(|s| Box::new(s) as _)
    };
    let running = Running { child, name };
    let Some(stderr) = stream else {
        bail!("{} gave no output stream", running.name);
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let announce = announce.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.split(&announce).nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow!("{} did not say where it listens within 30 s", running.name))?;
    Ok((running, addr))
}

/// Runs the step: the stack up, one sale in, Schemathesis against it.
pub fn run(counts: &mut Option<Tally>) -> Result<()> {
    let st = ensure()?;
    cmd::run(cmd::cargo().args([
        "build",
        "-p",
        "salebeacon-proxy",
        "-p",
        "salebeacon-sandbox",
    ]))?;
    let bin = cmd::target_dir().join("debug");
    let dir = std::env::temp_dir().join(format!("salebeacon-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&st, &bin, &dir, counts);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(st: &Path, bin: &Path, dir: &Path, counts: &mut Option<Tally>) -> Result<()> {
    let (sandbox, sandbox_url) = start(
        "sandbox",
        &bin.join("salebeacon-sandbox"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            API_KEY,
            "--min-interval-ms",
            "0",
        ],
        &[],
        "salebeacon-sandbox listening on ",
        true,
    )?;
    let upstream = sandbox_url;
    let db = dir.join("outbox.sqlite3");
    let db = db.to_string_lossy().into_owned();
    let (proxy, base) = start(
        "proxy",
        &bin.join("salebeacon-proxy"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--db",
            &db,
            "--pace-ms",
            "20",
            "--rate-limit-per-minute",
            "0",
        ],
        &[
            ("GROWI_API_KEY", API_KEY),
            ("SALEBEACON_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
        "salebeacon-proxy listening on ",
        false,
    )?;
    seed(&base)?;
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, "[parameters]\n\"path.order_id\" = \"ST-1\"\n")?;
    let examples = std::env::var("SALEBEACON_SCHEMATHESIS_EXAMPLES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(EXAMPLES);
    let mut command = Command::new(st);
    command
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--max-redirects",
            "0",
            "--workers",
            "2",
            "--max-examples",
            &examples.to_string(),
            "--header",
            &format!("Authorization: Bearer {ADMIN_TOKEN}"),
        ])
        .env("NO_COLOR", "1")
        .current_dir(dir);
    let started = Instant::now();
    let (status, output) = cmd::run_tee(&mut command)?;
    let found = parse(&output);
    *counts = Some(found);
    drop(proxy);
    drop(sandbox);
    eprintln!(
        "schemathesis: {} operations, {} failures, in {:.0} s",
        found.passed + found.failed,
        found.failed,
        started.elapsed().as_secs_f64()
    );
    if !status.success() || found.failed > 0 {
        bail!("schemathesis found the proxy breaking its OpenAPI document ({status})");
    }
    if found.passed == 0 {
        bail!("schemathesis tested no operation");
    }
    Ok(())
}

/// Records one sale through the admin API, so `/admin/sales/ST-1` exists.
fn seed(base: &str) -> Result<()> {
    let url = format!("{base}/admin/sales");
    let body =
        r#"{"order_id":"ST-1","total":12999,"currency":"usd","campaign_affiliate_id":"creator42"}"#;
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["-H", "content-type: application/json", "--data", body, &url])
        .output()
        .context("running curl to record the first sale")?;
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    if code != "202" {
        bail!("recording the first sale answered {code}");
    }
    Ok(())
}

/// Reads `Tested: N` and the failure count from Schemathesis's summary: passed = operations
/// tested without a failure.
pub fn parse(output: &str) -> Tally {
    let number_after = |label: &str| {
        output.lines().find_map(|l| {
            let rest = l.trim().strip_prefix(label)?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let tested = number_after("Tested:").unwrap_or(0);
    // "=== 2 failures, 2 warnings in 16.53s ===" / "=== 23 passed ... ==="
    let failures = output
        .lines()
        .filter(|l| l.starts_with('=') && l.contains(" in ") && l.trim_end().ends_with('='))
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words
                .windows(2)
                .find(|w| w[1].starts_with("failure") || w[1].starts_with("error"))
                .and_then(|w| w[0].parse::<u64>().ok())
        })
        .unwrap_or(0);
    Tally {
        passed: tested.saturating_sub(failures),
        failed: failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary() {
        let failed = "API Operations:\n  Selected: 23/23\n  Tested: 23\n\n\
                      ======================= 2 failures, 2 warnings in 16.53s =======================\n";
        assert_eq!(
            parse(failed),
            Tally {
                passed: 21,
                failed: 2,
            }
        );
        let ok = "API Operations:\n  Selected: 23/23\n  Tested: 23\n\n\
                  ======================= 23 passed, 2 warnings in 23.1s =======================\n";
        assert_eq!(parse(ok).passed, 23);
        assert_eq!(parse(ok).failed, 0);
        assert_eq!(parse("nothing").passed, 0);
    }
}

//! `cargo xtask fuzz [--time S] [--cases N]`: the long run of every fuzz harness.
//!
//! The harnesses are ordinary integration tests named `fuzz_*` (`tests/fuzz.rs`,
//! `proxy/tests/fuzz.rs`, `sandbox/tests/fuzz.rs`, driven by `tests/support/fuzzing.rs`), so a
//! plain `cargo test` runs each a few hundred inputs. The long run is the same tests built in
//! release mode with a larger budget, set through the environment the driver reads: each harness
//! stops after `--cases` inputs (default one million) or `--time` seconds (default 300), whichever
//! comes first. The `regression_*` tests of each file run along (they are the findings so far).
//!
//! Why this shape: `cargo fuzz` needs nightly, which these machines lack; proptest's generators
//! and shrinker on stable, with a case count and a clock, are a fuzzer we can run everywhere. The
//! driver prints one `fuzz-report` line per harness (and a `fuzz-outcomes` line where the harness
//! counts what its inputs reached); this task collects them into one table: inputs tried,
//! findings, time, inputs per second. A finding fails the run and prints the shrunk input and
//! the seed that repeats it (`SALEBEACON_FUZZ_SEED`).

use std::process::Command;

use anyhow::{bail, Result};

use crate::{cmd, suites};

/// What `fuzz` takes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Seconds per harness.
    pub time: u64,
    /// Inputs per harness.
    pub cases: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time: 300,
            cases: 1_000_000,
        }
    }
}

impl Options {
    /// Reads `--time S` and `--cases N` (both positive), in any order.
    pub fn parse(args: &[&str]) -> Result<Options> {
        let mut opts = Options::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0);
            match (*flag, value) {
                ("--time", Some(v)) => opts.time = v,
                ("--cases", Some(v)) => opts.cases = v,
                _ => bail!("`fuzz` takes --time SECONDS and --cases N (positive numbers)"),
            }
        }
        Ok(opts)
    }
}

/// The crates with a `tests/fuzz.rs`, in the order they run.
const CRATES: &[&str] = &["salebeacon", "salebeacon-proxy", "salebeacon-sandbox"];

/// One harness's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub harness: String,
    pub inputs: u64,
    pub findings: u64,
    pub seconds: f64,
}

/// The `fuzz-report harness=NAME inputs=N findings=F seconds=S seed=X` lines of `output`.
pub fn parse_reports(output: &str) -> Vec<Report> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("fuzz-report ")?;
            let field = |name: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            };
            Some(Report {
                harness: field("harness")?.to_owned(),
                inputs: field("inputs")?.parse().ok()?,
                findings: field("findings")?.parse().ok()?,
                seconds: field("seconds")?.parse().ok()?,
            })
        })
        .collect()
}

/// The table of the run, one row per harness and a total.
pub fn render(reports: &[Report]) -> String {
    let width = reports
        .iter()
        .map(|r| r.harness.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!(
        "{:<width$}  {:>12}  {:>8}  {:>8}  {:>10}\n",
        "harness", "inputs", "findings", "seconds", "inputs/s"
    );
    out.push_str(&format!("{}\n", "-".repeat(width + 46)));
    let (mut inputs, mut findings) = (0, 0);
    for r in reports {
        let rate = if r.seconds > 0.0 {
            r.inputs as f64 / r.seconds
        } else {
            0.0
        };
        out.push_str(&format!(
            "{:<width$}  {:>12}  {:>8}  {:>8.1}  {:>10.0}\n",
            r.harness, r.inputs, r.findings, r.seconds, rate
        ));
        inputs += r.inputs;
        findings += r.findings;
    }
    out.push_str(&format!(
        "{:<width$}  {:>12}  {:>8}\n",
        "total", inputs, findings
    ));
    out
}

/// Runs every harness in release mode with the budget; prints the table.
pub fn run(opts: Options) -> Result<()> {
    cmd::header(&format!(
        "fuzz: every harness, release build, up to {} inputs or {} s each",
        opts.cases, opts.time
    ));
    let mut reports = Vec::new();
    let mut outcomes = Vec::new();
    let mut failed = Vec::new();
    for krate in CRATES {
        let mut test: Command = cmd::cargo();
        test.args([
            "test",
            "--release",
            "-p",
            krate,
            "--test",
            "fuzz",
            "--",
            "--nocapture",
        ])
        .env("SALEBEACON_FUZZ_CASES", opts.cases.to_string())
        .env("SALEBEACON_FUZZ_SECS", opts.time.to_string());
        let (status, output) = cmd::run_tee(&mut test)?;
        let counts = suites::parse_libtest(&output);
        reports.extend(parse_reports(&output));
        outcomes.extend(
            output
                .lines()
                .filter(|l| l.starts_with("fuzz-outcomes "))
                .map(str::to_owned),
        );
        if !status.success() || counts.failed > 0 || counts.passed == 0 {
            failed.push(format!(
                "{krate} ({} passed, {} failed)",
                counts.passed, counts.failed
            ));
        }
    }
    println!("\nwhat the inputs reached:");
    for line in &outcomes {
        println!("  {line}");
    }
    println!("\n{}", render(&reports));
    let findings: u64 = reports.iter().map(|r| r.findings).sum();
    if findings > 0 || !failed.is_empty() {
        bail!(
            "{findings} finding(s); failed: {} (each finding above names its shrunk input and the \
             SALEBEACON_FUZZ_SEED that repeats it)",
            if failed.is_empty() {
                "-".to_owned()
            } else {
                failed.join(", ")
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        assert_eq!(
            Options::parse(&["--time", "60"]).unwrap(),
            Options {
                time: 60,
                cases: 1_000_000
            }
        );
        assert_eq!(
            Options::parse(&["--cases", "5", "--time", "2"]).unwrap(),
            Options { time: 2, cases: 5 }
        );
        for bad in [
            &["--time"][..],
            &["--time", "0"],
            &["--time", "x"],
            &["--fast"],
            &["--cases", "-1"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reports_are_read_and_tabled() {
        let out = "running 2 tests\n\
            fuzz-report harness=core_money inputs=1000000 findings=0 seconds=50.0 seed=7\n\
            test fuzz_money ... ok\n\
            fuzz-outcomes harness=core_money a=1\n\
            fuzz-report harness=proxy_pixel inputs=12 findings=1 seconds=0.5 seed=9\n\
            fuzz-report harness=broken inputs=x findings=0 seconds=1 seed=1\n";
        let r = parse_reports(out);
        assert_eq!(
            r,
            vec![
                Report {
                    harness: "core_money".into(),
                    inputs: 1_000_000,
                    findings: 0,
                    seconds: 50.0
                },
                Report {
                    harness: "proxy_pixel".into(),
                    inputs: 12,
                    findings: 1,
                    seconds: 0.5
                },
            ]
        );
        let table = render(&r);
        assert!(table.contains("core_money"), "{table}");
        assert!(table.contains("20000"), "the rate: {table}");
        assert!(
            table
                .lines()
                .last()
                .is_some_and(|l| l.contains("1000012") && l.trim_end().ends_with('1')),
            "{table}"
        );
    }
}

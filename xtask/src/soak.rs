//! `cargo xtask soak [--sales N]`: the proxy's soak test, long.
//!
//! The soak is an ordinary integration test (`proxy/tests/soak.rs`, `soak_*`), so `cargo xtask
//! test` runs it with 2,000 sales on SQLite and again on PostgreSQL. The long run is the same test
//! built in release mode with `SALEBEACON_SOAK_SALES=N` (default 100,000): browser-shaped load
//! through the real proxy binary, SIGKILLed and restarted on the same outbox, into the sandbox
//! with 20% `5xx`, `429` bursts and slow answers; it passes only when every acknowledged sale
//! reached the sandbox exactly once. The test prints its figures as one `soak-report` line, which
//! this task shows as a table.

use anyhow::{bail, Result};

use crate::cmd;

/// What `soak` takes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub sales: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { sales: 100_000 }
    }
}

impl Options {
    /// Reads `--sales N` (positive).
    pub fn parse(args: &[&str]) -> Result<Options> {
        match args {
            [] => Ok(Options::default()),
            ["--sales", n] => match n.parse::<u64>() {
                Ok(sales) if sales > 0 => Ok(Options { sales }),
                _ => bail!("--sales takes a positive number, not `{n}`"),
            },
            _ => bail!("`soak` takes only --sales N"),
        }
    }
}

/// The `key=value` pairs of the `soak-report` line of `output`, in order.
pub fn parse_report(output: &str) -> Option<Vec<(String, String)>> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("soak-report "))?;
    Some(
        line.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// Runs the soak in release mode; prints its figures.
pub fn run(opts: Options) -> Result<()> {
    cmd::header(&format!(
        "soak: {} sales through the release proxy, killed and restarted, into a faulty Growi",
        opts.sales
    ));
    let mut test = cmd::cargo();
    test.args([
        "test",
        "--release",
        "-p",
        "salebeacon-proxy",
        "--test",
        "soak",
        "--",
        "--nocapture",
    ])
    .env("SALEBEACON_SOAK_SALES", opts.sales.to_string());
    let (status, output) = cmd::run_tee(&mut test)?;
    let report = parse_report(&output);
    if let Some(pairs) = &report {
        println!("\nsoak figures:");
        let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in pairs {
            println!("  {k:<width$}  {v}");
        }
    }
    if !status.success() {
        bail!("the soak failed ({status}); its output above says where");
    }
    if report.is_none() {
        bail!("the soak printed no soak-report line");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(Options::parse(&[]).unwrap(), Options { sales: 100_000 });
        assert_eq!(
            Options::parse(&["--sales", "2000"]).unwrap(),
            Options { sales: 2000 }
        );
        for bad in [
            &["--sales"][..],
            &["--sales", "0"],
            &["--sales", "x"],
            &["-n", "5"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_report_line_is_read() {
        let out =
            "running 1 test\nsoak-report sales=5 kills=2 exactly_once=yes\ntest soak ... ok\n";
        assert_eq!(
            parse_report(out),
            Some(vec![
                ("sales".into(), "5".into()),
                ("kills".into(), "2".into()),
                ("exactly_once".into(), "yes".into()),
            ])
        );
        assert_eq!(parse_report("nothing"), None);
    }
}

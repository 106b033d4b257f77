//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! ```text
//! cargo xtask build [--dev]                  the browser package in pkg/, with a size table
//! cargo xtask test [--quick] [PART...]       every check and test; PART: lint native browser e2e
//! cargo xtask bench proxy [-- ARGS...]       the proxy load benchmark (release build)
//! cargo xtask bench size                     build the package and print its sizes
//! cargo xtask bench embed [--runs N]         the embed against its peers in Chromium (builds nothing)
//! cargo xtask demo [--port N]                the demo storefront, proxy and sandbox
//! ```
//!
//! Why an xtask instead of scripts: the steps (toolchain target, exact wasm-bindgen version,
//! wasm-opt, a browser, a test server) must be found or installed the same way on every machine,
//! with clear errors, and the only thing we can rely on everywhere is cargo. The alias lives in
//! `.cargo/config.toml`. Arguments are parsed by hand to keep this crate's own build short on a
//! fresh machine.

mod bench;
mod cmd;
mod demo;
mod package;
mod postgres;
mod size;
mod suites;
mod tools;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build [--dev]              build the browser package into pkg/ and print its sizes
                             (--dev: skip wasm-opt)
  test [--quick] [PART...]   run every check and test suite; PART is one of
                             lint, native, wasm, e2e (default: all; --quick skips lint)
  bench proxy [-- ARGS...]   run the proxy benchmark (cargo run --release --example bench)
  bench size                 build the package and print its size table
  bench embed [--runs N]     salebeacon's embed and five peers in headless Chromium: bytes,
                             main-thread time, long tasks, budgets (uses the built pkg/ and
                             release binaries; N cold loads per page, default 15)
  demo [--port N] [--sandbox-port N]
                             build everything and run the demo storefront with the proxy
                             and the Growi sandbox (default ports 8080 and 4010)
  help                       this text
";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Build(package::Options),
    Test(suites::Options),
    BenchProxy(Vec<String>),
    BenchSize,
    BenchEmbed(bench::Options),
    Demo { port: u16, sandbox_port: u16 },
    Help,
}

fn parse(args: &[String]) -> Result<Task> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let task = match args.as_slice() {
        [] | ["help" | "--help" | "-h", ..] => Task::Help,
        ["build", rest @ ..] => {
            let mut opts = package::Options::default();
            for a in rest {
                match *a {
                    "--dev" => opts.dev = true,
                    other => bail!("unknown option `{other}` for `build`"),
                }
            }
            Task::Build(opts)
        }
        ["test", rest @ ..] => {
            let mut opts = suites::Options::default();
            for a in rest {
                match *a {
                    "--quick" => opts.quick = true,
                    other => match suites::Part::parse(other) {
                        Some(part) => opts.parts.push(part),
                        None => bail!(
                            "unknown part `{other}` for `test` (lint, native, wasm, e2e, --quick)"
                        ),
                    },
                }
            }
            Task::Test(opts)
        }
        ["bench", "proxy", rest @ ..] => {
            let rest = match rest {
                ["--", tail @ ..] => tail,
                other => other,
            };
            Task::BenchProxy(rest.iter().map(|s| s.to_string()).collect())
        }
        ["bench", "size"] => Task::BenchSize,
        ["bench", "embed", rest @ ..] => {
            let mut opts = bench::Options::default();
            match rest {
                [] => {}
                ["--runs", n] => match n.parse::<u32>() {
                    Ok(n) if n > 0 => opts.runs = Some(n),
                    _ => bail!("--runs takes a positive number, not `{n}`"),
                },
                _ => bail!("`bench embed` takes only --runs N"),
            }
            Task::BenchEmbed(opts)
        }
        ["bench", ..] => bail!("`bench` takes `proxy`, `size` or `embed`"),
        ["demo", rest @ ..] => {
            let mut d = demo::Options::default();
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let value = it.next().and_then(|v| v.parse::<u16>().ok());
                match (*flag, value) {
                    ("--port", Some(v)) => d.port = v,
                    ("--sandbox-port", Some(v)) => d.sandbox_port = v,
                    _ => bail!("demo takes --port N and --sandbox-port N"),
                }
            }
            Task::Demo {
                port: d.port,
                sandbox_port: d.sandbox_port,
            }
        }
        [other, ..] => bail!("unknown command `{other}`"),
    };
    Ok(task)
}

fn main() -> ExitCode {
    cmd::put_cargo_bin_on_path();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match parse(&args) {
        Ok(task) => task,
        Err(e) => {
            eprintln!("error: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match task {
        Task::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Task::Build(opts) => package::build(opts).map(drop),
        Task::BenchSize => package::build(package::Options::default()).map(drop),
        Task::Test(opts) => {
            return if suites::run(&opts) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Task::BenchProxy(args) => bench_proxy(&args),
        Task::BenchEmbed(opts) => bench::embed(&opts),
        Task::Demo { port, sandbox_port } => demo::run(demo::Options { port, sandbox_port }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo run --release -p salebeacon-proxy --example bench`, output passed through.
fn bench_proxy(args: &[String]) -> Result<()> {
    cmd::header("proxy benchmark");
    let mut run = cmd::cargo();
    run.args([
        "run",
        "--release",
        "-p",
        "salebeacon-proxy",
        "--example",
        "bench",
    ]);
    if !args.is_empty() {
        run.arg("--").args(args);
    }
    // PostgreSQL rows on a server of this run with its default durability (fsync on), as a
    // merchant's would be; unless BENCH_POSTGRES names one already.
    let server = match std::env::var_os("BENCH_POSTGRES") {
        Some(_) => None,
        None => Some(postgres::durable()?),
    };
    if let Some(server) = &server {
        run.env("BENCH_POSTGRES", server.url());
    }
    cmd::run(&mut run).context("the proxy benchmark failed (is proxy/examples/bench.rs there?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Task> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_commands() {
        assert_eq!(p(&[]).unwrap(), Task::Help);
        assert_eq!(
            p(&["build"]).unwrap(),
            Task::Build(package::Options { dev: false })
        );
        assert_eq!(
            p(&["build", "--dev"]).unwrap(),
            Task::Build(package::Options { dev: true })
        );
        assert_eq!(
            p(&["test", "--quick", "wasm"]).unwrap(),
            Task::Test(suites::Options {
                quick: true,
                parts: vec![suites::Part::Wasm]
            })
        );
        assert_eq!(
            p(&["bench", "proxy", "--", "-n", "5"]).unwrap(),
            Task::BenchProxy(vec!["-n".into(), "5".into()])
        );
        assert_eq!(p(&["bench", "size"]).unwrap(), Task::BenchSize);
        assert_eq!(
            p(&["bench", "embed"]).unwrap(),
            Task::BenchEmbed(bench::Options { runs: None })
        );
        assert_eq!(
            p(&["bench", "embed", "--runs", "5"]).unwrap(),
            Task::BenchEmbed(bench::Options { runs: Some(5) })
        );
        assert!(p(&["bench", "embed", "--runs", "0"]).is_err());
        assert!(p(&["bench", "embed", "--fast"]).is_err());
        assert_eq!(
            p(&["demo"]).unwrap(),
            Task::Demo {
                port: 8080,
                sandbox_port: 4010
            }
        );
        assert_eq!(
            p(&["demo", "--port", "9000"]).unwrap(),
            Task::Demo {
                port: 9000,
                sandbox_port: 4010
            }
        );
        assert!(p(&["demo", "--port", "x"]).is_err());
    }

    #[test]
    fn rejects_unknown_input() {
        for bad in [
            &["build", "--release"][..],
            &["test", "unit"],
            &["bench"],
            &["recorder"],
            &["deploy"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}

//! `cargo xtask demo`: the demo storefront, with the merchant proxy and the Growi sandbox, on
//! this machine, from nothing.
//!
//! It builds the browser package and the two release binaries, builds the npm thank-you page with
//! Vite, then starts `salebeacon-sandbox` and `salebeacon-proxy` (which serves `pkg/` under
//! `/salebeacon/` and `www/demo` at `/`) as child processes, prints the URL to open, and waits.
//! Ctrl-C reaches the children too (same process group); each shuts down gracefully and the
//! xtask waits for them. If either dies on its own, the other is stopped and the demo fails with
//! its exit status. The sandbox paces like Growi (2 s between requests), so the sales page shows
//! sales go from `queued` to `sent` one by one. The sandbox forgets its sales when it stops, so
//! the proxy's outbox is made fresh at each run too (its Growi ids would name other sales).

use crate::{cmd, package, suites};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo's fixed, non-secret credentials (the sandbox accepts any key it is started with).
const DEMO_API_KEY: &str = "sk_demo_sandbox_key";
const DEMO_ADMIN_TOKEN: &str = "demo-admin-token-change-me";

/// Where the demo listens.
pub struct Options {
    pub port: u16,
    pub sandbox_port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 8080,
            sandbox_port: 4010,
        }
    }
}

fn free(port: u16) -> Result<()> {
    TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .with_context(|| format!("port {port} is in use; pass --port N (and --sandbox-port N)"))
}

/// Waits until `child` prints a line containing `needle` on stdout or stderr, echoing its output.
fn wait_for_line(child: &mut Child, name: &str, needle: &str) -> Result<String> {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        let name = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("[{name}] {line}");
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains(needle) => return Ok(line),
            Ok(_) => {}
            Err(_) => {
                if let Some(status) = child.try_wait()? {
                    bail!("{name} exited before it was ready ({status})");
                }
            }
        }
    }
    bail!("{name} did not say {needle:?} within 30 s")
}

/// Builds everything, runs the demo until Ctrl-C.
pub fn run(opts: Options) -> Result<()> {
    free(opts.port)?;
    free(opts.sandbox_port)?;
    package::build(package::Options { dev: false })?;
    cmd::header("release binaries");
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "salebeacon-proxy",
        "-p",
        "salebeacon-sandbox",
    ]))?;
    cmd::header("npm thank-you page (Vite)");
    let root = cmd::root();
    let e2e = root.join("www").join("e2e");
    if !e2e.join("node_modules").is_dir() {
        suites::npm_install(&e2e)?;
    }
    cmd::run(
        Command::new("node")
            .arg("build-demo.mjs")
            .current_dir(&e2e)
            .env("SALEBEACON_PKG", package::pkg_dir()),
    )?;

    let bin = cmd::target_dir().join("release");
    // A fresh outbox every run: the sandbox starts empty each time and hands out the same integer
    // ids again, so an outbox kept from an earlier run would hold ids that now name other sales.
    let data = cmd::target_dir().join("demo");
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("clearing the demo's data in {}", data.display()))?;
    }
    std::fs::create_dir_all(&data)?;
    let sandbox_root = format!("http://127.0.0.1:{}", opts.sandbox_port);
    cmd::header("start");
    let mut sandbox = Command::new(bin.join("salebeacon-sandbox"))
        .args(["--listen", &format!("127.0.0.1:{}", opts.sandbox_port)])
        .args(["--api-key", DEMO_API_KEY])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting salebeacon-sandbox")?;
    wait_for_line(&mut sandbox, "sandbox", "listening on")?;
    let proxy = Command::new(bin.join("salebeacon-proxy"))
        .args(["--listen", &format!("127.0.0.1:{}", opts.port)])
        .args(["--upstream", &format!("{sandbox_root}/api/public/v1")])
        .arg("--db")
        .arg(data.join("outbox.sqlite3"))
        .arg("--static-dir")
        .arg(package::pkg_dir())
        .arg("--site-dir")
        .arg(root.join("www").join("demo"))
        .env("GROWI_API_KEY", DEMO_API_KEY)
        .env("SALEBEACON_ADMIN_TOKEN", DEMO_ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut proxy = match proxy {
        Ok(p) => p,
        Err(e) => {
            let _ = sandbox.kill();
            return Err(e).context("starting salebeacon-proxy");
        }
    };
    if let Err(e) = wait_for_line(&mut proxy, "proxy", "listening on") {
        let _ = sandbox.kill();
        let _ = proxy.kill();
        return Err(e);
    }
    let site = format!("http://127.0.0.1:{}", opts.port);
    println!();
    println!("  demo storefront:  {site}/?ref=creator42");
    if opts.sandbox_port == 4010 {
        println!("  recorded sales:   {site}/sales.html");
    } else {
        println!("  recorded sales:   {site}/sales.html?sandbox={sandbox_root}");
    }
    println!("  admin API:        curl -H 'Authorization: Bearer {DEMO_ADMIN_TOKEN}' {site}/salebeacon/admin/sales");
    println!("  Growi sandbox:    {sandbox_root}/api/public/v1 (key {DEMO_API_KEY}; 2 s between requests, like Growi)");
    println!();
    println!("  Ctrl-C stops everything.");
    println!();
    // Both children get Ctrl-C's SIGINT from the terminal; wait for whichever ends first, then
    // make sure the other ends too.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let p = proxy.try_wait()?;
        let s = sandbox.try_wait()?;
        if p.is_some() || s.is_some() {
            let deadline = Instant::now() + Duration::from_secs(10);
            for child in [&mut proxy, &mut sandbox] {
                while child.try_wait()?.is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                if child.try_wait()?.is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            let failed = [p, s]
                .into_iter()
                .flatten()
                .find(|st| !st.success() && st.code().is_some());
            if let Some(st) = failed {
                bail!("the demo stopped: a server exited with {st}");
            }
            println!("demo stopped");
            return Ok(());
        }
    }
}

//! A throwaway PostgreSQL server: what `cargo xtask test` runs the proxy's PostgreSQL pass
//! against, what the proxy's tests restart under a running proxy, and what `cargo xtask bench
//! proxy` measures.
//!
//! [`Cluster::start`] finds the server binaries (`$SALEBEACON_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin`), runs `initdb` in a fresh temporary folder, and starts
//! `postgres` **as a child process of this one** (not through `pg_ctl`, whose server would be
//! reparented to PID 1, which on these machines never reaps it). The server listens on
//! 127.0.0.1 on a free port and on a Unix socket in the same folder, trusts local connections
//! (`-A trust`: nothing else can reach it), and is stopped (fast shutdown, waited for) and its
//! folder removed when the [`Cluster`] is dropped.
//!
//! PostgreSQL refuses to run as root. When this process is root, `initdb` and the server run as
//! the `postgres` system user (its uid and gid read from `/etc/passwd`), and the folder is handed
//! to that user. [`install`] installs the Debian package when the binaries are missing and this
//! process may (root with apt-get), without letting the package create and start a cluster of
//! its own.
//!
//! No dependencies and no unsafe code: `xtask` links this crate, and every dependency there is
//! paid for by every first command on a fresh machine.

use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the server trades durability for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`, `synchronous_commit=off`, no full page writes: for tests, whose data
    /// matters only while the server runs.
    Throwaway,
    /// PostgreSQL's defaults: what a merchant's server does (for benchmarks).
    Default,
}

/// What can go wrong starting a server.
#[derive(Debug)]
pub enum Error {
    /// No PostgreSQL server binaries (and they could not be installed).
    NotInstalled(String),
    /// A command could not run or failed; the text says which and why.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInstalled(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// A running throwaway server. Dropping it stops the server and removes its folder.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    durability: Durability,
    server: Option<Child>,
}

impl Cluster {
    /// Initialises and starts a server; returns once it accepts connections.
    pub fn start(durability: Durability) -> Result<Cluster, Error> {
        let bin = find_bin().ok_or_else(|| {
            Error::NotInstalled(
                "no PostgreSQL server binaries (looked in $SALEBEACON_PG_BIN and \
                 /usr/lib/postgresql/*/bin); Debian: `apt-get install -y postgresql`"
                    .into(),
            )
        })?;
        let owner = if is_root() {
            Some(system_user("postgres").ok_or_else(|| {
                Error::Failed(
                    "running as root, and there is no `postgres` user to run the server as \
                     (PostgreSQL refuses root); the Debian package creates it"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let dir = unique_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Failed(format!("creating {}: {e}", dir.display())))?;
        let mut cluster = Cluster {
            dir,
            bin,
            port: free_port()?,
            owner,
            durability,
            server: None,
        };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .map_err(|e| Error::Failed(format!("handing the folder to postgres: {e}")))?;
        }
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(cluster.data())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync");
        let out = initdb
            .output()
            .map_err(|e| Error::Failed(format!("running initdb: {e}")))?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        cluster.resume()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The URL of another database on this server (it must exist; see [`Cluster::create_db`]).
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database with `createdb`.
    pub fn create_db(&self, name: &str) -> Result<(), Error> {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ])
            .output()
            .map_err(|e| Error::Failed(format!("running createdb: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Failed(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open connections are cut, committed data stays) and
    /// waits for it. [`Cluster::resume`] starts it again on the same data and port.
    pub fn stop(&mut self) -> Result<(), Error> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        // SIGINT is PostgreSQL's "fast shutdown".
        let _ = Command::new("kill")
            .args(["-INT", &server.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match server.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = server.kill();
                    let _ = server.wait();
                    return Err(Error::Failed(
                        "the PostgreSQL server did not stop within 20 s; killed".into(),
                    ));
                }
            }
        }
    }

    /// Starts the server on this cluster's data and port; returns once it accepts connections.
    pub fn resume(&mut self) -> Result<(), Error> {
        if self.server.is_some() {
            return Ok(());
        }
        let log = std::fs::File::create(self.dir.join("server.log"))
            .map_err(|e| Error::Failed(format!("creating the server log: {e}")))?;
        if let Some((uid, gid)) = self.owner {
            let _ = std::os::unix::fs::chown(self.dir.join("server.log"), Some(uid), Some(gid));
        }
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=400",
            ]);
        if self.durability == Durability::Throwaway {
            postgres.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let err = log
            .try_clone()
            .map_err(|e| Error::Failed(format!("the server log: {e}")))?;
        postgres.stdout(Stdio::from(log)).stderr(Stdio::from(err));
        let server = postgres
            .spawn()
            .map_err(|e| Error::Failed(format!("starting postgres: {e}")))?;
        self.server = Some(server);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(server) = self.server.as_mut() {
                if let Ok(Some(status)) = server.try_wait() {
                    self.server = None;
                    return Err(Error::Failed(format!(
                        "postgres exited at start-up ({status}): {}",
                        self.log_tail()
                    )));
                }
            }
            let up = TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && Command::new(self.bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Failed(format!(
                    "postgres did not accept connections within 30 s: {}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server binary, run as the folder's owner.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        c.current_dir(&self.dir).stdin(Stdio::null());
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Installs the Debian package when the server binaries are missing and this process is root
/// with apt-get. The package's own cluster is not created (nothing starts on port 5432).
/// Returns whether the binaries are there afterwards.
pub fn install() -> Result<(), Error> {
    if find_bin().is_some() {
        return Ok(());
    }
    if !(is_root() && Path::new("/usr/bin/apt-get").is_file()) {
        return Err(Error::NotInstalled(
            "the PostgreSQL tests need the server binaries; install them (Debian: `sudo apt-get \
             install -y postgresql`) or set SALEBEACON_PG_BIN to their folder"
                .into(),
        ));
    }
    eprintln!("postgresql: missing, installing with apt-get (no cluster of its own)");
    let conf = Path::new("/etc/postgresql-common/createcluster.conf");
    if !conf.exists() {
        let _ = std::fs::create_dir_all("/etc/postgresql-common");
        std::fs::write(conf, "create_main_cluster = false\n")
            .map_err(|e| Error::Failed(format!("writing {}: {e}", conf.display())))?;
    }
    let run = |args: &[&str]| -> Result<(), Error> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| Error::Failed(format!("apt-get: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Failed(format!(
                "apt-get {} failed ({status})",
                args.join(" ")
            )))
        }
    };
    run(&["update"])?;
    run(&[
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confold",
        "postgresql",
    ])?;
    find_bin().map(|_| ()).ok_or_else(|| {
        Error::NotInstalled("apt-get installed postgresql, but no server binaries appeared".into())
    })
}

/// `$SALEBEACON_PG_BIN`, else the newest `/usr/lib/postgresql/<major>/bin` with `postgres`.
pub fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SALEBEACON_PG_BIN").map(PathBuf::from) {
        return dir.join("postgres").is_file().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A system user's uid and gid, from `/etc/passwd`.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

fn unique_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("salebeacon-pg-{}-{nanos:09}", std::process::id()))
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Failed(format!("finding a free port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_system_user() {
        assert_eq!(system_user("root"), Some((0, 0)));
        assert_eq!(system_user("no-such-user-here"), None);
    }

    /// Needs the server binaries; skipped (with a line saying so) where they are not installed.
    #[test]
    fn starts_restarts_and_cleans_up() {
        if find_bin().is_none() {
            eprintln!("no PostgreSQL binaries: skipped");
            return;
        }
        let mut c = Cluster::start(Durability::Throwaway).expect("a server starts");
        let dir = c.dir.clone();
        assert!(TcpStream::connect(("127.0.0.1", c.port())).is_ok());
        c.create_db("made_here").expect("createdb");
        c.stop().expect("stops");
        assert!(TcpStream::connect(("127.0.0.1", c.port())).is_err());
        c.resume().expect("starts again");
        assert!(TcpStream::connect(("127.0.0.1", c.port())).is_ok());
        drop(c);
        assert!(!dir.exists(), "the folder is removed");
    }
}

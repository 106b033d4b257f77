//! The throwaway PostgreSQL server of `cargo xtask test` (the proxy's PostgreSQL pass) and of
//! `cargo xtask bench proxy`: installed with apt-get when missing (see `salebeacon_pgtest`),
//! started in a temporary folder on a free port, stopped and removed when dropped. Nothing is
//! left running, and nothing a previous run left behind is used.

use anyhow::{anyhow, Result};
use salebeacon_pgtest::{Cluster, Durability};

/// A server for tests: installed if needed, durability off (its data lives as long as the run).
pub fn throwaway() -> Result<Cluster> {
    start(Durability::Throwaway)
}

/// A server with PostgreSQL's default durability, for benchmarks.
pub fn durable() -> Result<Cluster> {
    start(Durability::Default)
}

fn start(durability: Durability) -> Result<Cluster> {
    salebeacon_pgtest::install().map_err(|e| anyhow!("{e}"))?;
    let started = std::time::Instant::now();
    let cluster = Cluster::start(durability).map_err(|e| anyhow!("{e}"))?;
    eprintln!(
        "postgresql: throwaway server on 127.0.0.1:{} (started in {:.1} s)",
        cluster.port(),
        started.elapsed().as_secs_f64()
    );
    Ok(cluster)
}

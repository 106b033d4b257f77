//! The sales the sandbox holds, and their optional persistence.
//!
//! Sales live in memory, indexed by Growi id and by `order_id` (the idempotency key). With a
//! state file, every change is written *before* it is committed in memory (serialise everything,
//! write a temp file in the same directory, fsync, rename), so what a client was told always
//! survives a restart and a crash mid-write leaves the previous file intact. The sandbox handles
//! a sale every couple of seconds at Growi's pace, so rewriting the whole file is cheap and keeps
//! the format a plain, readable JSON document.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sale::SandboxSale;
use crate::seed::Seed;

/// Failures of the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading the state file failed.
    #[error("cannot read state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is not what the sandbox writes.
    #[error("state file {path} is not valid sandbox state: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// Writing the state file failed.
    #[error("cannot write state file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The on-disk format of `--state-file`.
#[derive(Serialize, Deserialize)]
struct StateFile {
    /// Format version, currently 1.
    version: u32,
    /// The id the next created sale gets.
    next_sale_id: u64,
    /// Every sale, seeded ones included.
    sales: Vec<SandboxSale>,
}

/// All sales, with indexes and persistence.
#[derive(Debug)]
pub struct Store {
    sales: BTreeMap<u64, SandboxSale>,
    by_order_id: HashMap<String, u64>,
    next_id: u64,
    state_file: Option<PathBuf>,
}

impl Store {
    /// A store holding the seed's sales, or, when `state_file` exists, the sales saved there.
    pub fn new(seed: &Seed, state_file: Option<PathBuf>) -> Result<Store, StoreError> {
        let mut store = Store {
            sales: BTreeMap::new(),
            by_order_id: HashMap::new(),
            next_id: seed.first_sale_id,
            state_file,
        };
        let loaded = match &store.state_file {
            Some(path) => load_state(path)?,
            None => None,
        };
        match loaded {
            Some(state) => {
                store.next_id = state.next_sale_id;
                store.fill(state.sales);
            }
            None => store.fill_from_seed(seed),
        }
        Ok(store)
    }

    fn fill_from_seed(&mut self, seed: &Seed) {
        self.next_id = seed.first_sale_id;
        self.fill(seed.sales.clone());
    }

    fn fill(&mut self, sales: Vec<SandboxSale>) {
        self.sales.clear();
        self.by_order_id.clear();
        for sale in sales {
            self.next_id = self.next_id.max(sale.id.saturating_add(1));
            self.by_order_id.insert(sale.external_id.clone(), sale.id);
            self.sales.insert(sale.id, sale);
        }
    }

    /// The sale with this `order_id` (`external_id`).
    pub fn by_order_id(&self, order_id: &str) -> Option<&SandboxSale> {
        self.by_order_id
            .get(order_id)
            .and_then(|id| self.sales.get(id))
    }

    /// The sale with this Growi id.
    pub fn get(&self, id: u64) -> Option<&SandboxSale> {
        self.sales.get(&id)
    }

    /// Every sale, by ascending id.
    pub fn all(&self) -> impl DoubleEndedIterator<Item = &SandboxSale> {
        self.sales.values()
    }

    /// Assigns the next id to a new sale built by `build`, persists, and commits.
    pub fn insert_new(
        &mut self,
        build: impl FnOnce(u64) -> SandboxSale,
    ) -> Result<SandboxSale, StoreError> {
        let id = self.next_id;
        let sale = build(id);
        let next_id = id.saturating_add(1);
        self.persist_with(Some(&sale), next_id)?;
        self.next_id = next_id;
        self.by_order_id.insert(sale.external_id.clone(), sale.id);
        self.sales.insert(sale.id, sale.clone());
        Ok(sale)
    }

    /// Replaces an existing sale (same id), persists, and commits.
    pub fn replace(&mut self, sale: SandboxSale) -> Result<(), StoreError> {
        self.persist_with(Some(&sale), self.next_id)?;
        self.sales.insert(sale.id, sale);
        Ok(())
    }

    /// Removes the sale with this Growi id, persists, and commits; `None` if there is none.
    pub fn remove(&mut self, id: u64) -> Result<Option<SandboxSale>, StoreError> {
        let Some(sale) = self.sales.get(&id).cloned() else {
            return Ok(None);
        };
        if let Some(path) = &self.state_file {
            let state = StateFile {
                version: 1,
                next_sale_id: self.next_id,
                sales: self
                    .sales
                    .values()
                    .filter(|s| s.id != id)
                    .cloned()
                    .collect(),
            };
            write_atomically(path, &state)?;
        }
        self.sales.remove(&id);
        self.by_order_id.remove(&sale.external_id);
        Ok(Some(sale))
    }

    /// Back to the seed's sales and first id, persisted.
    pub fn reset(&mut self, seed: &Seed) -> Result<(), StoreError> {
        if let Some(path) = &self.state_file {
            let state = StateFile {
                version: 1,
                next_sale_id: seed.first_sale_id,
                sales: seed.sales.clone(),
            };
            write_atomically(path, &state)?;
        }
        self.fill_from_seed(seed);
        Ok(())
    }

    /// Writes the current sales plus `extra` (new or replacing one with the same id).
    fn persist_with(&self, extra: Option<&SandboxSale>, next_id: u64) -> Result<(), StoreError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let mut sales: Vec<SandboxSale> = self
            .sales
            .values()
            .filter(|s| extra.is_none_or(|e| e.id != s.id))
            .cloned()
            .collect();
        if let Some(e) = extra {
            sales.push(e.clone());
            sales.sort_by_key(|s| s.id);
        }
        let state = StateFile {
            version: 1,
            next_sale_id: next_id,
            sales,
        };
        write_atomically(path, &state)
    }
}

fn load_state(path: &Path) -> Result<Option<StateFile>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| StoreError::Parse {
            path: path.to_owned(),
            source,
        })
}

fn write_atomically(path: &Path, state: &StateFile) -> Result<(), StoreError> {
    let err = |source| StoreError::Write {
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| err(std::io::Error::other(e)))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.json".to_owned());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

//! localStorage under the `salebeacon:` prefix, tolerant of every way it can fail.
//!
//! localStorage is missing in some embedded views, throws in some private modes, and throws when
//! full. The tracker must still work then (sending directly, with reduced durability), so every
//! call returns a `Result` with a [`StorageError`] the caller can report once, never a panic.

use super::browser;
use crate::text::concat;
use wasm_bindgen::JsCast;

pub const PREFIX: &str = "salebeacon:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    Unavailable,
    WriteFailed,
}

impl StorageError {
    /// What went wrong, in words (also the `Display`; kept off `core::fmt` for size).
    pub fn message(&self) -> &'static str {
        match self {
            StorageError::Unavailable => "localStorage is not available",
            StorageError::WriteFailed => "localStorage refused the write (full, or blocked)",
        }
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StorageError {}

fn storage() -> Result<web_sys::Storage, StorageError> {
    browser::global("localStorage")
        .map(JsCast::unchecked_into)
        .ok_or(StorageError::Unavailable)
}

/// Reads `salebeacon:{key}`.
pub fn get(key: &str) -> Result<Option<String>, StorageError> {
    storage()?
        .get_item(&concat(&[PREFIX, key]))
        .map_err(|_| StorageError::Unavailable)
}

/// Writes `salebeacon:{key}`.
pub fn set(key: &str, value: &str) -> Result<(), StorageError> {
    storage()?
        .set_item(&concat(&[PREFIX, key]), value)
        .map_err(|_| StorageError::WriteFailed)
}

/// Removes `salebeacon:{key}`; a failure is ignored (there is nothing left to protect).
pub fn remove(key: &str) {
    if let Ok(s) = storage() {
        let _ = s.remove_item(&concat(&[PREFIX, key]));
    }
}

//! localStorage under the `salebeacon:` prefix, tolerant of every way it can fail.
//!
//! localStorage is missing in some embedded views, throws in some private modes, and throws when
//! full. The tracker must still work then (sending directly, with reduced durability), so every
//! call returns a `Result` with a [`StorageError`] the caller can report once, never a panic.

use super::browser;

pub const PREFIX: &str = "salebeacon:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("localStorage is not available")]
    Unavailable,
    #[error("localStorage refused the write (full, or blocked)")]
    WriteFailed,
}

fn storage() -> Result<web_sys::Storage, StorageError> {
    browser::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .ok_or(StorageError::Unavailable)
}

/// Reads `salebeacon:{key}`.
pub fn get(key: &str) -> Result<Option<String>, StorageError> {
    storage()?
        .get_item(&format!("{PREFIX}{key}"))
        .map_err(|_| StorageError::Unavailable)
}

/// Writes `salebeacon:{key}`.
pub fn set(key: &str, value: &str) -> Result<(), StorageError> {
    storage()?
        .set_item(&format!("{PREFIX}{key}"), value)
        .map_err(|_| StorageError::WriteFailed)
}

/// Removes `salebeacon:{key}`; a failure is ignored (there is nothing left to protect).
pub fn remove(key: &str) {
    if let Ok(s) = storage() {
        let _ = s.remove_item(&format!("{PREFIX}{key}"));
    }
}

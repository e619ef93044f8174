//! Delivery to the file system: atomic, permission-keeping writes of verified text.
//!
//! The new text goes to a temporary file in the same folder, is flushed to disk, gets the
//! original's permissions, and replaces the original by rename. The original is re-read first:
//! a file that changed since it was read is not overwritten.

use std::fs;
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the file changed since it was read; not overwritten (run again)")]
    ChangedMeanwhile,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Replaces the file at `path`, whose content was `original`, with `new_text`. With `durable`,
/// the new content is flushed to disk before the rename (survives a power cut, costs an fsync
/// per file); without it the rename is still atomic for every reader and for a killed process.
pub fn write_atomic(
    path: &Path,
    original: &str,
    new_text: &str,
    durable: bool,
) -> Result<(), WriteError> {
    if fs::read(path)? != original.as_bytes() {
        return Err(WriteError::ChangedMeanwhile);
    }
    let permissions = fs::metadata(path)?.permissions();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".kube-harden-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(new_text.as_bytes())?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    fs::set_permissions(tmp.path(), permissions)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

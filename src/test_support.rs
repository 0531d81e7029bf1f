//! Helpers the unit tests of several modules share.

use std::path::{Path, PathBuf};

/// The entries of `dir`, sorted: to show that a call created nothing.
pub(crate) fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    names
}

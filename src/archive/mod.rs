//! The archive folder: where verified files lie under their final names.
//!
//! The small interface every storage target offers: a place for partial
//! data, [`Archive::place`] (atomically move a complete, verified file to its
//! final name), [`Archive::digest`] (re-read one for verification) and
//! [`Archive::exists`]. Partial data lives in `<dir>/.partial/`, never under
//! a final name. An S3-compatible target would implement the same four.

mod paths;

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ledger::FileId;

pub use paths::{file_name, rel_paths, sanitize_component, url_path};

/// The hidden folder for partial downloads, inside the archive folder.
pub const PARTIAL_DIR: &str = ".partial";

/// A local archive folder.
#[derive(Clone, Debug)]
pub struct Archive {
    root: PathBuf,
}

impl Archive {
    /// Opens the archive at `root`, creating it and its partial area.
    pub fn open(root: &Path) -> io::Result<Archive> {
        std::fs::create_dir_all(root.join(PARTIAL_DIR))?;
        Ok(Archive {
            root: root.to_owned(),
        })
    }

    /// The archive folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the partial data of a file is kept while it downloads.
    pub fn partial_path(&self, file_id: FileId) -> PathBuf {
        self.root.join(PARTIAL_DIR).join(format!("{file_id}.part"))
    }

    /// The final path of an archive-relative path. Refuses anything that is
    /// not a plain relative path, as a second line of defence behind the
    /// sanitiser.
    pub fn final_path(&self, rel: &str) -> io::Result<PathBuf> {
        let rel = Path::new(rel);
        let plain = rel
            .components()
            .all(|c| matches!(c, Component::Normal(p) if !p.to_string_lossy().starts_with('.')));
        if !plain || rel.as_os_str().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing archive path {}", rel.display()),
            ));
        }
        Ok(self.root.join(rel))
    }

    /// Moves a complete partial file to its final name: fsync the data,
    /// create the folders, rename, fsync the folder so the rename survives a
    /// power loss. Only after this returns may the ledger say `done`.
    pub async fn place(&self, partial: &Path, rel: &str) -> io::Result<PathBuf> {
        let target = self.final_path(rel)?;
        let partial = partial.to_owned();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&partial)?.sync_all()?;
            let parent = target.parent().unwrap_or(&root);
            create_dirs_durably(&root, parent)?;
            std::fs::rename(&partial, &target)?;
            sync_dir(parent)?;
            Ok(target)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Whether a file lies at `rel`.
    pub async fn exists(&self, rel: &str) -> bool {
        match self.final_path(rel) {
            Ok(path) => tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file()),
            Err(_) => false,
        }
    }

    /// Size and hex SHA-256 of the file at `rel`, read from disk.
    pub async fn digest(&self, rel: &str) -> io::Result<(u64, String)> {
        let path = self.final_path(rel)?;
        tokio::task::spawn_blocking(move || digest_file(&path))
            .await
            .map_err(io::Error::other)?
    }

    /// Writes a small metadata file (a manifest) atomically at `rel`.
    pub async fn write_metadata(&self, rel: &str, bytes: Vec<u8>) -> io::Result<()> {
        let target = self.final_path(rel)?;
        let tmp = self
            .root
            .join(PARTIAL_DIR)
            .join(format!("meta-{}.tmp", uuid::Uuid::new_v4().simple()));
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            let parent = target.parent().unwrap_or(&root);
            create_dirs_durably(&root, parent)?;
            std::fs::rename(&tmp, &target)?;
            sync_dir(parent)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// Size and hex SHA-256 of a file.
pub fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Creates `dir` (inside `root`) and fsyncs each parent whose entry changed.
fn create_dirs_durably(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| p.starts_with(root) && *p != dir) {
        create_dirs_durably(root, parent)?;
        match std::fs::create_dir(dir) {
            Ok(()) => sync_dir(parent),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    } else {
        std::fs::create_dir_all(dir)
    }
}

/// fsync a directory, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn place_moves_a_partial_into_place_and_digest_reads_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = Archive::open(dir.path()).expect("open");
        let partial = archive.partial_path(FileId::new(7));
        std::fs::write(&partial, b"hello").expect("write");
        let placed = archive
            .place(&partial, "conf/Hd/0_0.mp4")
            .await
            .expect("place");
        assert_eq!(placed, dir.path().join("conf/Hd/0_0.mp4"));
        assert!(!partial.exists());
        assert!(archive.exists("conf/Hd/0_0.mp4").await);
        let (size, sha) = archive.digest("conf/Hd/0_0.mp4").await.expect("digest");
        assert_eq!(size, 5);
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn final_path_refuses_escapes() {
        let archive = Archive {
            root: PathBuf::from("/srv/a"),
        };
        for bad in ["../x", "/etc/passwd", "a/../../x", ".partial/1.part", ""] {
            assert!(archive.final_path(bad).is_err(), "{bad}");
        }
        assert!(archive.final_path("c/Hd/0_0.mp4").is_ok());
    }

    #[tokio::test]
    async fn metadata_is_written_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = Archive::open(dir.path()).expect("open");
        archive
            .write_metadata("conf/meeting.json", b"{}".to_vec())
            .await
            .expect("write");
        assert_eq!(
            std::fs::read(dir.path().join("conf/meeting.json")).expect("read"),
            b"{}"
        );
        let leftovers = std::fs::read_dir(dir.path().join(PARTIAL_DIR))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 0);
    }
}

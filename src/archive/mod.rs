//! The archive folder: where verified files lie under their final names.
//!
//! The small interface every storage target offers: a place for partial
//! data, [`Archive::place`] (atomically move a complete, verified file to its
//! final name), [`Archive::digest`] (re-read one for verification) and
//! [`Archive::exists`]. Partial data lives in `<dir>/.partial/`, never under
//! a final name. Two targets sit behind it: the local folder, and an
//! S3-compatible bucket ([`Bucket`], `archive.target = "s3"`), where a
//! verified partial file is uploaded instead of renamed, and removed once
//! the store confirms it.
//!
//! One process owns a folder at a time: partials are named by ledger row,
//! so two archivers with two ledgers on one folder would write into each
//! other's partial files. The owner holds an exclusive lock on
//! `.partial/owner.lock` for its lifetime; readers (`verify`) take none.

mod bucket;
mod layout;
mod paths;
mod upload;
mod zone;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::ledger::FileId;

pub use bucket::{AccessError, Bucket, BucketError, MAX_KEY_BYTES, ObjectFacts, UploadFault};
pub use layout::{
    DEFAULT_LAYOUT, FALLBACK_DIR, LEGACY_LAYOUT, Layout, LayoutError, MANIFEST_NAME, MeetingFile,
    README_NAME, SCHEMA_NAME, SUMS_NAME, part_number, readable_subject, recorded, split_recorded,
};
pub use paths::{rel_paths, sanitize_component};
pub use upload::{
    Journaled, MAX_PARTS, NoJournal, PART_SIZE, PARTS_IN_FLIGHT, Placement, UploadJournal,
    part_size,
};
pub use zone::{Zone, ZoneError};

/// The hidden folder for partial downloads, inside the archive folder.
pub const PARTIAL_DIR: &str = ".partial";

/// The owner's lock file, inside the partial area.
pub const LOCK_NAME: &str = "owner.lock";

/// Errors of opening an archive folder for writing.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Another process owns the folder.
    #[error(
        "archive folder {} is in use by another meeting-archiver process ({holder}); \
         two archivers must not share one download.dir",
        root.display()
    )]
    InUse {
        /// The archive folder.
        root: PathBuf,
        /// What the owner wrote in the lock file (its pid and ledger).
        holder: String,
    },
    /// The folder, its partial area or the lock file could not be set up.
    #[error("cannot prepare the archive folder {}", path.display())]
    Prepare {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The archive: the local folder (partial downloads always; final files
/// unless a bucket is the target) and, optionally, the bucket.
#[derive(Clone, Debug)]
pub struct Archive {
    root: PathBuf,
    // The target for final files when `archive.target = "s3"`.
    bucket: Option<Bucket>,
    // The owner's lock, released when the last clone drops (the process
    // ends); `None` for readers.
    _owner: Option<Arc<File>>,
}

impl Archive {
    /// Opens the archive at `root` for writing: creates it and its partial
    /// area (mode 0700: partials are unpublished recordings), takes the
    /// owner's lock and writes `owner` (who we are) into the lock file, then
    /// removes stray temporary files a crash left behind.
    pub fn open(root: &Path, owner: &str) -> Result<Archive, ArchiveError> {
        let prepare = |path: &Path| {
            let path = path.to_owned();
            move |source| ArchiveError::Prepare { path, source }
        };
        let partial = root.join(PARTIAL_DIR);
        std::fs::create_dir_all(root).map_err(prepare(root))?;
        match std::fs::DirBuilder::new().mode(0o700).create(&partial) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(prepare(&partial)(e));
            }
            _ => std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o700))
                .map_err(prepare(&partial))?,
        }
        let lock_path = partial.join(LOCK_NAME);
        let lock = lock_owner(&lock_path, root, owner)?;
        let archive = Archive {
            root: root.to_owned(),
            bucket: None,
            _owner: Some(Arc::new(lock)),
        };
        archive.remove_stray_temporaries();
        Ok(archive)
    }

    /// The archive at `root` for reading (verification); creates nothing
    /// and takes no lock.
    pub fn read_only(root: &Path) -> Archive {
        Archive {
            root: root.to_owned(),
            bucket: None,
            _owner: None,
        }
    }

    /// The same archive with final files going to `bucket`.
    pub fn with_bucket(mut self, bucket: Bucket) -> Archive {
        self.bucket = Some(bucket);
        self
    }

    /// The bucket, when it is the target.
    pub fn bucket(&self) -> Option<&Bucket> {
        self.bucket.as_ref()
    }

    /// Where `rel` lies, for messages: a path or an `s3://` URL.
    pub fn describe(&self, rel: &str) -> String {
        match &self.bucket {
            Some(bucket) => bucket.describe(rel),
            None => self.root.join(rel).display().to_string(),
        }
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

    /// Puts a complete, verified partial file in its final place; only
    /// after this returns may the ledger say `done`. Returns the bytes sent
    /// to a bucket (0 when none were). Local: fsync the data, create the
    /// folders, rename, fsync the folder so the rename survives a power
    /// loss. Bucket: abort an upload an interrupted attempt left open (a
    /// failed abort is logged and its id kept: it does not block the
    /// file); unless the object already holds the file (an interrupted
    /// upload that completed), upload it and check it by HEAD. The partial
    /// file stays: the caller removes it once the ledger says `done`
    /// ([`Archive::remove_partial`]).
    pub async fn place(&self, partial: &Path, file: &Placement<'_>) -> io::Result<u64> {
        let Some(bucket) = &self.bucket else {
            self.rename_into_place(partial, file.rel).await?;
            return Ok(0);
        };
        if let Some(id) = file.earlier_upload {
            match bucket.abort_upload(file.rel, id).await {
                Ok(()) => file.journal.record(None).await?,
                Err(e) => tracing::warn!(
                    object = %bucket.describe(file.rel),
                    error = %crate::telemetry::error_chain(&e),
                    "cannot abort the upload an earlier attempt left open; uploading anyway \
                     (a lifecycle rule with AbortIncompleteMultipartUpload removes its parts)"
                ),
            }
        }
        if file.resumed && bucket.matches(file.rel, file.size, file.sha256).await? {
            return Ok(0);
        }
        let upload = upload::Upload {
            local: partial,
            rel: file.rel,
            size: file.size,
            sha256: file.sha256,
            meeting: file.meeting,
            cancel: file.cancel,
        };
        bucket.upload(&upload, file.journal).await?;
        Ok(file.size)
    }

    async fn rename_into_place(&self, partial: &Path, rel: &str) -> io::Result<()> {
        let target = self.final_path(rel)?;
        let partial = partial.to_owned();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&partial)?.sync_all()?;
            let parent = target.parent().unwrap_or(&root);
            create_dirs_durably(&root, parent)?;
            std::fs::rename(&partial, &target)?;
            sync_dir(parent)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Whether a file lies at `rel`.
    pub async fn exists(&self, rel: &str) -> bool {
        if let Some(bucket) = &self.bucket {
            return bucket.head(rel).await.is_ok();
        }
        match self.final_path(rel) {
            Ok(path) => tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file()),
            Err(_) => false,
        }
    }

    /// Size and hex SHA-256 of the file at `rel` as the target attests
    /// them: a local file is re-read and hashed; an object is asked by HEAD
    /// (its size, and the SHA-256 in its metadata, which the upload checked
    /// against the bytes sent). [`Archive::digest_deep`] reads objects back.
    pub async fn digest(&self, rel: &str) -> io::Result<(u64, String)> {
        if let Some(bucket) = &self.bucket {
            let facts = bucket.head(rel).await?;
            let sha = facts.sha256.ok_or_else(|| {
                let problem = format!("{} has no sha256 metadata", bucket.describe(rel));
                io::Error::new(io::ErrorKind::InvalidData, problem)
            })?;
            return Ok((facts.size, sha));
        }
        self.digest_deep(rel).await
    }

    /// Size and hex SHA-256 of the file at `rel`, read back whole and hashed.
    pub async fn digest_deep(&self, rel: &str) -> io::Result<(u64, String)> {
        if let Some(bucket) = &self.bucket {
            return bucket.digest(rel).await;
        }
        let path = self.final_path(rel)?;
        tokio::task::spawn_blocking(move || digest_file(&path))
            .await
            .map_err(io::Error::other)?
    }

    /// The content of the small metadata file at `rel`; `None` if there is
    /// none (so that an unchanged one need not be written again).
    pub async fn read_metadata(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        if let Some(bucket) = &self.bucket {
            return bucket.get_small(rel).await;
        }
        match tokio::fs::read(self.final_path(rel)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a small metadata file (a manifest, `SHA256SUMS`, the root's
    /// `README.txt`) atomically at `rel`: a temporary file renamed into
    /// place, or one PUT of the object.
    pub async fn write_metadata(&self, rel: &str, bytes: Vec<u8>) -> io::Result<()> {
        if let Some(bucket) = &self.bucket {
            return bucket.put_small(rel, bytes).await;
        }
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

impl Archive {
    /// Partial files in the partial area, by ledger row id.
    pub fn partial_ids(&self) -> io::Result<Vec<FileId>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(self.root.join(PARTIAL_DIR))? {
            let name = entry?.file_name();
            let id = name.to_str().and_then(|n| n.strip_suffix(".part"));
            if let Some(id) = id.and_then(|id| id.parse().ok()) {
                ids.push(FileId::new(id));
            }
        }
        Ok(ids)
    }

    /// Removes a partial file (of a file that failed for good or was
    /// archived), so that one bad file cannot keep the disk full.
    pub fn remove_partial(&self, file_id: FileId) -> io::Result<()> {
        match std::fs::remove_file(self.partial_path(file_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Temporary metadata files are written and renamed at once; any left
    /// over was torn by a crash. Only the owner may remove them.
    fn remove_stray_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join(PARTIAL_DIR)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stray = name.starts_with("meta-") && name.ends_with(".tmp");
            if stray && let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %name, error = %e, "cannot remove a stray temporary file");
            }
        }
    }
}

/// Takes the exclusive lock on `path` and writes who holds it.
fn lock_owner(path: &Path, root: &Path, owner: &str) -> Result<File, ArchiveError> {
    let prepare = |source| ArchiveError::Prepare {
        path: path.to_owned(),
        source,
    };
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(prepare)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(ArchiveError::InUse {
                root: root.to_owned(),
                holder: if holder.is_empty() {
                    "holder unknown".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(prepare(e)),
    }
    file.set_len(0).map_err(prepare)?;
    writeln!(file, "pid {}, {owner}", std::process::id()).map_err(prepare)?;
    Ok(file)
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
mod tests;

//! Uploading a verified partial file to the bucket: one PUT up to
//! [`PART_SIZE`], else a multipart upload of `PART_SIZE` parts (larger only
//! past 10,000 parts) with at most [`PARTS_IN_FLIGHT`] in memory. The bytes are
//! hashed again as they are read: if they are not the verified ones the
//! upload is aborted before it completes, so no wrong object ever appears
//! under the final key (a PUT replaces an object atomically; a multipart
//! upload is published only by its completion). A multipart upload's id is
//! handed to an [`UploadJournal`] before its first part goes out, so that
//! one a crash interrupts is aborted by the next attempt, not left behind.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;

use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutMultipartOptions, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::bucket::{Bucket, attributes};

/// Files up to this size go up in one PUT; larger ones in parts this size
/// (S3 wants at least 5 MiB but for the last), unless that would take more
/// than [`MAX_PARTS`] parts (files over about 58 GiB): see [`part_size`].
pub const PART_SIZE: usize = 6 << 20;
/// Parts uploaded at once: an upload holds at most
/// `(PARTS_IN_FLIGHT + 1) * part_size` bytes in memory.
pub const PARTS_IN_FLIGHT: usize = 2;
/// The most parts S3 (and OBS) accept in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// The part size for a file of `size` bytes: [`PART_SIZE`], or larger (in
/// whole MiB) when the file would need more than [`MAX_PARTS`] parts.
pub fn part_size(size: u64) -> usize {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    usize::try_from(needed).map_or(usize::MAX, |n| n.max(PART_SIZE))
}

/// A boxed future, for the journal's object-safe methods.
pub type Journaled<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

/// Where a file's open multipart upload is remembered across crashes.
pub trait UploadJournal: Send + Sync {
    /// Records the upload now open for the file (`None`: none is).
    fn record<'a>(&'a self, upload_id: Option<&'a str>) -> Journaled<'a>;
}

/// A verified file to place: where it goes and what it must hold.
#[derive(Clone, Copy)]
pub struct Placement<'a> {
    /// Its archive-relative path (the object key under the prefix).
    pub rel: &'a str,
    /// Its size in bytes.
    pub size: u64,
    /// Its hex SHA-256.
    pub sha256: &'a str,
    /// Its meeting (recorded in the object's metadata).
    pub meeting: &'a str,
    /// A multipart upload an earlier attempt left open (aborted first).
    pub earlier_upload: Option<&'a str>,
    /// An earlier attempt was interrupted during the upload and may have
    /// completed it: an object whose HEAD matches is then kept, not sent
    /// again. Otherwise the file is always uploaded (an object `verify`
    /// found corrupt may still report the right size and SHA-256).
    pub resumed: bool,
    /// Where an upload's id is remembered while it is open.
    pub journal: &'a dyn UploadJournal,
    /// Stops a multipart upload at its next part (aborted; the error is
    /// `Interrupted`); `None` lets it run to the end.
    pub cancel: Option<&'a CancellationToken>,
}

/// A part on its way to the store.
type PartTask = tokio::task::JoinHandle<object_store::Result<PartId>>;

/// A journal that remembers nothing (local placements, tests).
pub struct NoJournal;

impl UploadJournal for NoJournal {
    fn record<'a>(&'a self, _: Option<&'a str>) -> Journaled<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// What to upload: the local copy and what it was verified to be.
pub(super) struct Upload<'a> {
    pub local: &'a Path,
    pub rel: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub meeting: &'a str,
    pub cancel: Option<&'a CancellationToken>,
}

impl Bucket {
    /// Uploads `file`, then checks by HEAD that the store reports its size
    /// and SHA-256. A multipart upload's id goes to `journal` first.
    pub(super) async fn upload(
        &self,
        file: &Upload<'_>,
        journal: &dyn UploadJournal,
    ) -> io::Result<()> {
        let key = self.key(file.rel).map_err(|e| e.into_io())?;
        let mut local = tokio::fs::File::open(file.local).await?;
        if file.size <= PART_SIZE as u64 {
            // One byte more than expected shows a file that grew.
            let bytes = read_up_to(&mut local, file.size as usize + 1).await?;
            let read = (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)));
            self.check_read(&key, file, read)?;
            let options = PutOptions {
                attributes: attributes(file.rel, file.sha256, Some(file.meeting)),
                ..PutOptions::default()
            };
            self.store
                .put_opts(&key, PutPayload::from(bytes), options)
                .await
                .map_err(|e| self.store_error("uploading", &key, e))?;
        } else {
            self.upload_parts(&mut local, &key, file, journal).await?;
        }
        if !self.matches(file.rel, file.size, file.sha256).await? {
            let problem = "after the upload the store does not report the size and SHA-256 sent";
            return Err(self.mismatch(&key, problem.to_owned()));
        }
        Ok(())
    }

    /// The `check-config --online` probe of multipart uploads (every file
    /// over [`PART_SIZE`] uses one): starts an upload of `rel`, sends one
    /// 5 MiB part, and aborts it, so nothing is published. The abort is
    /// tried whatever failed before it.
    pub async fn probe_multipart(&self, rel: &str) -> io::Result<()> {
        let key = self.key(rel).map_err(|e| e.into_io())?;
        let id = self
            .store
            .create_multipart(&key)
            .await
            .map_err(|e| self.store_error("starting a multipart upload of", &key, e))?;
        let part = PutPayload::from(vec![0u8; 5 << 20]);
        let sent = self
            .store
            .put_part(&key, &id, 0, part)
            .await
            .map_err(|e| self.store_error("uploading a part of", &key, e));
        let aborted = self
            .store
            .abort_multipart(&key, &id)
            .await
            .map_err(|e| self.store_error("aborting the multipart upload of", &key, e));
        sent.and(aborted).map(|_| ())
    }

    /// Aborts an upload an earlier attempt left open (one that is already
    /// gone, completed or aborted, is fine).
    pub(super) async fn abort_upload(&self, rel: &str, upload_id: &str) -> io::Result<()> {
        let key = self.key(rel).map_err(|e| e.into_io())?;
        match self
            .store
            .abort_multipart(&key, &upload_id.to_owned())
            .await
        {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(self.store_error("aborting an earlier upload of", &key, e)),
        }
    }

    async fn upload_parts(
        &self,
        local: &mut tokio::fs::File,
        key: &Key,
        file: &Upload<'_>,
        journal: &dyn UploadJournal,
    ) -> io::Result<()> {
        let options = PutMultipartOptions {
            attributes: attributes(file.rel, file.sha256, Some(file.meeting)),
            ..PutMultipartOptions::default()
        };
        let id = self
            .store
            .create_multipart_opts(key, options)
            .await
            .map_err(|e| self.store_error("starting the upload of", key, e))?;
        let sent = match journal.record(Some(&id)).await {
            Ok(()) => self.send_parts(local, key, &id, file).await,
            Err(e) => Err(e),
        };
        let parts = match sent {
            Ok(parts) => parts,
            Err(e) => {
                if let Err(abort) = self.store.abort_multipart(key, &id).await {
                    tracing::warn!(object = %self.describe(file.rel), error = %abort,
                        "cannot abort the unfinished upload; the next attempt retries");
                } else if let Err(forget) = journal.record(None).await {
                    tracing::warn!(error = %forget, "cannot forget the aborted upload");
                }
                return Err(e);
            }
        };
        self.store
            .complete_multipart(key, &id, parts)
            .await
            .map_err(|e| self.store_error("completing the upload of", key, e))?;
        Ok(())
    }

    /// Reads the file part by part, hashing it, with at most
    /// [`PARTS_IN_FLIGHT`] parts on their way; fails (before completion)
    /// if the bytes read are not the verified file. On any failure the
    /// parts still in flight are stopped and awaited, so none lands after
    /// the caller aborts the upload.
    async fn send_parts(
        &self,
        local: &mut tokio::fs::File,
        key: &Key,
        id: &str,
        file: &Upload<'_>,
    ) -> io::Result<Vec<PartId>> {
        let mut in_flight = VecDeque::new();
        let sent = self
            .send_parts_in(local, key, id, file, &mut in_flight)
            .await;
        if sent.is_err() {
            for task in in_flight.drain(..) {
                task.abort();
                // Cancelled or finished: either way it sends nothing more.
                let _ = task.await;
            }
        }
        sent
    }

    async fn send_parts_in(
        &self,
        local: &mut tokio::fs::File,
        key: &Key,
        id: &str,
        file: &Upload<'_>,
        in_flight: &mut VecDeque<PartTask>,
    ) -> io::Result<Vec<PartId>> {
        let (mut hasher, mut read) = (Sha256::new(), 0u64);
        let mut parts = Vec::new();
        for index in 0.. {
            if file.cancel.is_some_and(|c| c.is_cancelled()) {
                let why = "stopping: the upload was aborted; the verified copy is kept";
                return Err(io::Error::new(io::ErrorKind::Interrupted, why));
            }
            let part = read_up_to(local, part_size(file.size)).await?;
            if part.is_empty() {
                break;
            }
            hasher.update(&part);
            read += part.len() as u64;
            if in_flight.len() >= PARTS_IN_FLIGHT {
                parts.push(self.landed(in_flight.pop_front(), key).await?);
            }
            let (store, key, id) = (self.store.clone(), key.clone(), id.to_owned());
            in_flight.push_back(tokio::spawn(async move {
                store
                    .put_part(&key, &id, index, PutPayload::from(part))
                    .await
            }));
            if read > file.size {
                break;
            }
        }
        let read = (read, hex::encode(hasher.finalize()));
        self.check_read(key, file, read)?;
        while !in_flight.is_empty() {
            parts.push(self.landed(in_flight.pop_front(), key).await?);
        }
        Ok(parts)
    }

    /// The id of a part once the store has it.
    async fn landed(&self, task: Option<PartTask>, key: &Key) -> io::Result<PartId> {
        let Some(task) = task else {
            return Err(io::Error::other("no part in flight"));
        };
        task.await
            .map_err(io::Error::other)?
            .map_err(|e| self.store_error("uploading a part of", key, e))
    }

    /// The bytes read must be the verified file.
    fn check_read(
        &self,
        key: &Key,
        file: &Upload<'_>,
        (size, sha): (u64, String),
    ) -> io::Result<()> {
        if size == file.size && sha == file.sha256 {
            return Ok(());
        }
        let problem = format!(
            "the local copy ({size} bytes, SHA-256 {sha}) is not the verified file ({} bytes, \
             SHA-256 {}); upload refused",
            file.size, file.sha256
        );
        Err(self.local_copy_changed(key, problem))
    }
}

/// Up to `limit` bytes of `file` (fewer only at its end), in one buffer
/// allocated once (`read_to_end` would double it to probe for the end).
async fn read_up_to(file: &mut tokio::fs::File, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; limit];
    let mut filled = 0;
    while filled < limit {
        match file.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_only_past_the_part_limit() {
        assert_eq!(part_size(1), PART_SIZE);
        assert_eq!(part_size(2 << 30), PART_SIZE);
        let limit = MAX_PARTS * PART_SIZE as u64;
        assert_eq!(part_size(limit), PART_SIZE);
        let bigger = part_size(limit + 1);
        assert_eq!(bigger, PART_SIZE + (1 << 20));
        assert!((limit + 1).div_ceil(bigger as u64) <= MAX_PARTS);
        let huge: u64 = 5 << 40;
        assert!(huge.div_ceil(part_size(huge) as u64) <= MAX_PARTS);
    }
}

//! The partial file of a transfer: opened at the durable length the ledger
//! knows (anything after it may be torn by a crash), hashed as it grows,
//! fsynced before its length is reported as durable.

use std::io::SeekFrom;
use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

/// Keeps the first `size` bytes of the partial file at `path` and returns
/// their hex SHA-256, or `None` if the file holds fewer bytes.
pub async fn prefix_digest(path: &Path, size: u64) -> std::io::Result<Option<String>> {
    let partial = Partial::open(path, size).await?;
    if partial.len < size {
        return Ok(None);
    }
    Ok(Some(hex::encode(partial.hasher.finalize())))
}

/// The partial file being written and the hash of what it holds.
pub(super) struct Partial {
    file: BufWriter<tokio::fs::File>,
    pub(super) hasher: Sha256,
    pub(super) len: u64,
}

impl Partial {
    /// Opens the partial file, keeping at most `keep` bytes (those the ledger
    /// knows to be durable) and hashing them.
    pub(super) async fn open(path: &Path, keep: u64) -> std::io::Result<Partial> {
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await?;
        let keep = keep.min(file.metadata().await?.len());
        file.set_len(keep).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = keep;
        file.seek(SeekFrom::Start(0)).await?;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[..want]).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        file.seek(SeekFrom::Start(keep)).await?;
        Ok(Partial {
            file: BufWriter::with_capacity(1 << 20, file),
            hasher,
            len: keep,
        })
    }

    /// Drops everything: the server is sending the whole file again.
    pub(super) async fn restart(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.get_mut().set_len(0).await?;
        self.file.seek(SeekFrom::Start(0)).await?;
        self.hasher = Sha256::new();
        self.len = 0;
        Ok(())
    }

    pub(super) async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs; returns the durable length.
    pub(super) async fn sync(&mut self) -> std::io::Result<u64> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        Ok(self.len)
    }

    /// Flushes, then fsyncs in the background while the transfer goes on:
    /// once it ends, the bytes written before it started are durable. The
    /// stream is not held up by the disk the way a checkpoint that waits for
    /// its fsync holds it up (every 64 MiB of a big file).
    pub(super) async fn start_sync(&mut self) -> std::io::Result<PendingSync> {
        self.file.flush().await?;
        let file = self.file.get_ref().try_clone().await?.into_std().await;
        Ok(PendingSync {
            task: tokio::task::spawn_blocking(move || file.sync_data()),
            len: self.len,
        })
    }
}

/// An fsync running in the background; see [`Partial::start_sync`].
pub(super) struct PendingSync {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// What is durable once it ends.
    pub(super) len: u64,
}

impl PendingSync {
    /// Whether it has ended (waiting for it then costs nothing).
    pub(super) fn is_done(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for it; returns the length it made durable.
    pub(super) async fn wait(self) -> std::io::Result<u64> {
        self.task.await.map_err(std::io::Error::other)??;
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_partial_keeps_only_the_durable_prefix_and_hashes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("1.part");
        std::fs::write(&path, b"hello world, torn tail").expect("write");
        let mut partial = Partial::open(&path, 5).await.expect("open");
        assert_eq!(partial.len, 5);
        partial.write(b" again").await.expect("write");
        assert_eq!(partial.sync().await.expect("sync"), 11);
        assert_eq!(std::fs::read(&path).expect("read"), b"hello again");
        let expected = Sha256::digest(b"hello again");
        assert_eq!(partial.hasher.clone().finalize(), expected);
        // Asking for more than the file holds keeps what is there.
        let longer = Partial::open(&path, 1_000).await.expect("open");
        assert_eq!(longer.len, 11);
    }

    #[tokio::test]
    async fn restart_empties_the_file_and_the_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("2.part");
        std::fs::write(&path, b"old bytes").expect("write");
        let mut partial = Partial::open(&path, 9).await.expect("open");
        partial.restart().await.expect("restart");
        partial.write(b"new").await.expect("write");
        assert_eq!(partial.sync().await.expect("sync"), 3);
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert_eq!(partial.hasher.clone().finalize(), Sha256::digest(b"new"));
    }
}

//! Keeping the pipeline honest around faults: the claims this process
//! holds (so that no claimed file is ever left `downloading` for good),
//! start-up recovery, the archive's free space (a full disk pauses claims
//! without blaming any file), partial files nothing will resume, and
//! manifests whose write failed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Engine, EngineError};
use crate::clock::Millis;
use crate::ledger::{FileId, LedgerError};

/// The condition name a full disk is recorded under.
pub const DISK_FULL: &str = "disk_full";
/// After a write failed for lack of space, claims wait until this much more
/// is free than there was at the failure (or `min_free_space`, if larger).
const SPACE_MARGIN: u64 = 64 * 1024 * 1024;

/// A claim held by this process; dropping it (however the step ends)
/// removes it from the engine's claims and wakes idle workers: a `sync`
/// worker waiting for the last claim to go must hear of it, also when
/// the step that held it ended in an error.
pub(super) struct Claim<'a> {
    engine: &'a Engine,
    id: FileId,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claims = self.engine.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.remove(&self.id);
        drop(claims);
        self.engine.wake.notify_waiters();
    }
}

/// The archive file system's free space against `download.min_free_space`.
pub(crate) struct Space {
    dir: PathBuf,
    min_free: u64,
    /// Free bytes needed before claims resume: `min_free`, or more after a
    /// write failed for lack of space (the file system said no although
    /// it reported room, e.g. a quota).
    needed: AtomicU64,
    /// What the ledger and the log were last told (`None` until the first
    /// check, which also clears a condition an earlier run left behind).
    reported: std::sync::Mutex<Option<bool>>,
    full: AtomicBool,
}

impl Space {
    pub(super) fn new(dir: &Path, min_free: u64) -> Space {
        Space {
            dir: dir.to_owned(),
            min_free,
            needed: AtomicU64::new(min_free),
            reported: std::sync::Mutex::new(None),
            full: AtomicBool::new(false),
        }
    }

    /// `Some(why)` while the disk has less free space than needed.
    fn shortage(&self) -> Option<String> {
        let free = match fs4::available_space(&self.dir) {
            Ok(free) => free,
            // Cannot tell: let the writes speak for themselves.
            Err(_) => return None,
        };
        let needed = self.needed.load(Ordering::Relaxed);
        if free >= needed {
            self.needed.store(self.min_free, Ordering::Relaxed);
            return None;
        }
        Some(format!(
            "the disk of {} is full: {} free, {} needed (download.min_free_space is {})",
            self.dir.display(),
            human_bytes(free),
            human_bytes(needed),
            human_bytes(self.min_free)
        ))
    }
}

impl Engine {
    /// Registers a claim of this process.
    pub(super) fn hold(&self, id: FileId) -> Claim<'_> {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.insert(id);
        Claim { engine: self, id }
    }

    /// How many files this process holds claimed now.
    pub fn claims_held(&self) -> usize {
        self.claims.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// At start-up: work left `downloading` by an earlier stop or crash
    /// goes back to the queue (its partial data is resumed), partial files
    /// that nothing will resume are removed, and manifests a failed write
    /// left behind are rewritten.
    pub async fn recover_interrupted(&self) -> Result<(), EngineError> {
        let requeued = self
            .ledger
            .call(|l| l.reset_interrupted(Millis::now()))
            .await?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "requeued transfers interrupted by an earlier stop"
            );
        }
        self.remove_dead_partials().await?;
        if let Err(e) = self.describe_archive().await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "could not write the archive's README.txt");
        }
        self.rewrite_stale_manifests().await;
        self.resolve_deletion_intents().await;
        Ok(())
    }

    /// Requeues `downloading` rows that no claim of this process covers:
    /// put-backs the ledger refused while it was unavailable.
    pub async fn requeue_orphans(&self) -> Result<usize, LedgerError> {
        let _gate = self.claim_gate.write().await;
        let owned: Vec<FileId> = self
            .claims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        let requeued = self
            .ledger
            .call(move |l| l.requeue_unowned(&owned, Millis::now()))
            .await?;
        if requeued > 0 {
            tracing::warn!(requeued, "requeued files no worker owned");
            self.wake.notify_waiters();
        }
        Ok(requeued)
    }

    /// `Some(why)` when the archive's disk is too full to claim a file.
    /// The ledger (for `status` and `/healthz`) and the log hear of it only
    /// when it starts or ends, so a claim costs one `statvfs`, no write.
    pub async fn disk_full(&self) -> Result<Option<String>, LedgerError> {
        let shortage = self.space.shortage();
        let full = shortage.is_some();
        self.space.full.store(full, Ordering::Relaxed);
        let reported = *self
            .space
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if reported == Some(full) {
            return Ok(shortage);
        }
        let detail = shortage.clone();
        let was_full = self
            .ledger
            .call(move |l| match &detail {
                Some(detail) => {
                    l.set_condition(DISK_FULL, detail, Millis::now())?;
                    Ok(false)
                }
                None => l.clear_condition(DISK_FULL),
            })
            .await?;
        *self
            .space
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(full);
        match &shortage {
            Some(why) => tracing::error!(reason = %why, "pausing downloads"),
            None if was_full => {
                tracing::info!("the archive's disk has room again; downloads resume");
            }
            None => {}
        }
        Ok(shortage)
    }

    /// Whether the last look found the archive's disk too full (a gauge).
    pub fn is_disk_full(&self) -> bool {
        self.space.full.load(Ordering::Relaxed)
    }

    /// A write failed for lack of space: claims wait for more room than
    /// there is now.
    pub(super) fn note_out_of_space(&self) {
        let free = fs4::available_space(&self.space.dir).unwrap_or(0);
        let needed = free.saturating_add(SPACE_MARGIN).max(self.space.min_free);
        self.space.needed.store(needed, Ordering::Relaxed);
    }

    /// Removes partial files of files that will not be resumed (archived,
    /// failed for good, or unknown to this ledger).
    async fn remove_dead_partials(&self) -> Result<(), EngineError> {
        let on_disk = self
            .archive
            .partial_ids()
            .map_err(|source| EngineError::Partial {
                path: self.archive.root().join(crate::archive::PARTIAL_DIR),
                source,
            })?;
        if on_disk.is_empty() {
            return Ok(());
        }
        let keep = self.ledger.call(|l| l.resumable_partials()).await?;
        for id in on_disk.into_iter().filter(|id| !keep.contains(id)) {
            if let Err(e) = self.archive.remove_partial(id) {
                tracing::warn!(file = %id, error = %e, "cannot remove a partial file");
            }
        }
        Ok(())
    }

    /// Rewrites the manifests whose last write failed.
    pub async fn rewrite_stale_manifests(&self) {
        let stale = match self.ledger.call(|l| l.stale_manifests()).await {
            Ok(stale) => stale,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list manifests to rewrite");
                return;
            }
        };
        for conf in stale {
            self.refresh_manifest(&conf).await;
        }
    }
}

/// How long a paused worker waits before looking at the disk again.
pub const DISK_RECHECK: Duration = Duration::from_secs(10);

/// `1536` → `1.5 KiB`: sizes for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes((457 << 30) + (307 << 20)), "457.3 GiB");
    }

    #[test]
    fn a_disk_below_the_minimum_is_short_and_a_failed_write_raises_the_bar() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roomy = Space::new(dir.path(), 0);
        assert_eq!(roomy.shortage(), None);
        let greedy = Space::new(dir.path(), u64::MAX);
        let why = greedy.shortage().expect("short");
        assert!(why.contains(&dir.path().display().to_string()), "{why}");
        assert!(why.contains("download.min_free_space"), "{why}");
        let after_failure = Space::new(dir.path(), 0);
        after_failure.needed.store(u64::MAX, Ordering::Relaxed);
        assert!(after_failure.shortage().is_some());
    }
}

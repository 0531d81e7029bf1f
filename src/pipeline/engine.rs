//! The archiver's shared state: ledger, cloud client, archive, download
//! clients and settings, built once from the config and shared by the
//! poller and every worker.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::archive::Archive;
use crate::cloud::{Backoff, CloudClient, CloudError};
use crate::download::DownloadClients;
use crate::ledger::{FileId, LedgerError, LedgerHandle};

use super::upkeep::Space;
use crate::metrics::Metrics;

/// Errors of the pipeline; each says which part failed and leaves the
/// cause to `source()`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The cloud refused or failed a call.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Writing a meeting's manifest into the archive folder failed (full
    /// disk, permissions).
    #[error("cannot write the manifest {}", path.display())]
    WriteManifest {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A meeting's manifest could not be turned into JSON (a bug).
    #[error("cannot serialise the manifest of meeting {conf_uuid}")]
    SerialiseManifest {
        /// The meeting.
        conf_uuid: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// The partial area (`download.dir/.partial`) could not be read.
    #[error("cannot read the partial file {}", path.display())]
    Partial {
        /// The partial file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ledger refused, for all of `ledger.retry_for`, to record how a
    /// claimed file's step ended: the file stays `downloading` until the
    /// ledger takes writes again and it is requeued.
    #[error("the ledger refused to record the outcome of {rel_path} for ledger.retry_for")]
    Unrecorded {
        /// The file, under the archive folder.
        rel_path: String,
        /// The last refusal.
        source: Box<EngineError>,
    },
    /// The ledger's layout template does not parse (edited by hand?).
    #[error("the ledger's layout template {template:?} is not valid")]
    Layout {
        /// The template.
        template: String,
        /// Why.
        source: crate::archive::LayoutError,
    },
    /// Every folder offered for a meeting was taken (a fresh UUID
    /// included: the ledger is inconsistent).
    #[error("no free folder in the archive for meeting {0}")]
    NoFolder(String),
    /// A download worker panicked or was cancelled (a bug): its file is
    /// requeued by the next start.
    #[error("a download worker stopped unexpectedly")]
    WorkerDied(#[source] tokio::task::JoinError),
}

/// Settings of the pipeline, from `[download]` and `[poll]`.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Only these file types (case-insensitive); empty = all.
    pub file_types: Vec<String>,
    /// Counted failures before a file is marked failed.
    pub max_attempts: u32,
    /// Stored download tokens older than this are not used.
    pub token_max_age: Duration,
    /// Backoff between failed downloads of one file.
    pub download_backoff: Backoff,
    /// How often a transfer checkpoints its partial file.
    pub checkpoint_interval: Duration,
    /// How long a ledger that refuses a write is retried before the work
    /// in hand is given up (it stays `downloading`, requeued later).
    pub ledger_patience: Duration,
    /// Free bytes the archive's disk must keep before a claim.
    pub min_free_space: u64,
    /// `download.layout` when set: the template for new meetings (unset:
    /// the one the ledger records, or the default for a new archive).
    pub layout: Option<crate::archive::Layout>,
    /// `download.timezone`: the zone of the dates in new names.
    pub zone: crate::archive::Zone,
}

/// Live counters of this process's work, for the progress display
/// (attempts by outcome are counted in [`Metrics`]).
#[derive(Debug, Default)]
pub struct Progress {
    /// Files archived.
    pub files_done: AtomicU64,
    /// Files that failed for good.
    pub files_failed: AtomicU64,
    /// Bytes received (resumed bytes included once).
    pub bytes: AtomicU64,
}

/// The pipeline's shared state. Its fields stay inside `pipeline`: other
/// parts get the narrow handle they need ([`Engine::ledger`],
/// [`Engine::metrics`], [`Engine::progress`]).
pub struct Engine {
    pub(super) ledger: LedgerHandle,
    pub(super) cloud: Arc<CloudClient>,
    pub(super) archive: Archive,
    pub(super) downloads: DownloadClients,
    pub(super) settings: EngineSettings,
    pub(super) progress: Arc<Progress>,
    // Shared with the cloud client, which counts API calls into it.
    pub(super) metrics: Arc<Metrics>,
    /// Wakes idle workers: after a poll (new files, or a `retry` run by
    /// another process) and after any step, since a step can make another
    /// file due or end the queue.
    pub(super) wake: Notify,
    /// One async lock per meeting with work in flight. A meeting's URL
    /// refresh and its manifest write must not interleave: two workers
    /// whose tokens ran out at once would otherwise list the meeting twice
    /// (each listing spends the other's fresh tokens' value), and two
    /// manifest writes could race on the same temporary file. Entries no
    /// one holds are pruned on the next lookup, so the map stays as small
    /// as the work in flight.
    meeting_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Files this process has claimed and not yet put back. The ledger is
    /// locked to one downloading process, so any `downloading` row not in
    /// here is orphaned (a put-back the ledger refused) and is requeued;
    /// `sync` ends when this is empty, not when the rows say so.
    pub(super) claims: Mutex<HashSet<FileId>>,
    /// Claiming (the ledger's `claim_next`, then the entry in `claims`)
    /// takes it shared; requeueing orphans takes it exclusive, so that a
    /// row claimed a moment ago is never mistaken for an orphan.
    pub(super) claim_gate: tokio::sync::RwLock<()>,
    pub(super) space: Space,
    /// The layout for meetings whose folder is not fixed yet, settled with
    /// the ledger on first use ([`Engine::layout`]).
    pub(super) layout: tokio::sync::OnceCell<crate::archive::Layout>,
    /// Files a `record.finish` event found waiting, with when the event
    /// arrived: archiving one observes the event-to-archive latency.
    pub(super) event_waits: Mutex<HashMap<FileId, crate::clock::Millis>>,
    /// Uploads the store refused or failed in a row: their backoff (a
    /// store outage is not counted against any file).
    pub(super) store_failures: std::sync::atomic::AtomicU32,
    /// Whether the `store_refused` condition may be set.
    pub(super) store_refused: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// Assembles an engine.
    pub fn new(
        ledger: LedgerHandle,
        cloud: Arc<CloudClient>,
        archive: Archive,
        downloads: DownloadClients,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> Engine {
        let space = Space::new(archive.root(), settings.min_free_space);
        Engine {
            ledger,
            cloud,
            archive,
            downloads,
            settings,
            progress: Arc::default(),
            metrics,
            wake: Notify::new(),
            meeting_locks: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashSet::new()),
            claim_gate: tokio::sync::RwLock::new(()),
            space,
            layout: tokio::sync::OnceCell::new(),
            event_waits: Mutex::new(HashMap::new()),
            store_failures: std::sync::atomic::AtomicU32::new(0),
            // Unknown at start (an earlier run may have left the
            // condition): the first upload the store takes clears it.
            store_refused: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The ledger, for commands that read it beside the pipeline.
    pub fn ledger(&self) -> &LedgerHandle {
        &self.ledger
    }

    /// The metrics, for the daemon's `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// This process's counters, for the progress display.
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// The lock serialising URL refreshes and manifest writes of one meeting.
    pub(crate) fn meeting_lock(&self, conf_uuid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.meeting_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(locks.entry(conf_uuid.to_owned()).or_default())
    }

    /// Whether a file type passes `download.file_types`.
    pub fn wants_type(&self, file_type: &str) -> bool {
        self.settings.file_types.is_empty()
            || self
                .settings
                .file_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(file_type))
    }
}

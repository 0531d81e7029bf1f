//! The archive pipeline: what `sync`, `run` and `demo` share.
//!
//! [`build_engine`] wires a config into one [`Engine`] (ledger, cloud client,
//! archive, download clients). A poll ([`Engine::poll`]) lists meetings and
//! stores their files and fresh tokens in the ledger; the worker pool
//! ([`run_pool`], [`WorkerSet`]) loops over [`Engine::process_next`], the
//! single step that claims one file, spends a token, transfers, places and
//! records it. `refresh` is the single-flight re-listing both use when
//! tokens run out; `manifest` writes each meeting's `meeting.json` and
//! `SHA256SUMS`, `facts` fixes its folder, `describe` the root's README.txt.

mod describe;
mod discovery;
mod engine;
mod events;
mod facts;
mod manifest;
mod poll;
mod pool;
mod refresh;
mod retention;
mod settle;
mod startup;
mod upkeep;
mod upload;
mod worker;

pub use describe::{README_NAME, SCHEMA_NAME, readme_text};
pub use engine::{Engine, EngineError, EngineSettings, Progress};
pub use events::{EventPlan, EventReport};
pub use manifest::{MANIFEST_NAME, SCHEMA_VERSION, SUMS_NAME, describe_type, iso, sums_text};
pub use poll::{PollError, PollPlan, PollReport};
pub use pool::{StopWhen, WorkerSet, run_pool};
pub use retention::{Hold, RetentionReport};
pub use startup::{archive_reader, build_engine, cloud_client, open_ledger, tls_options};
pub use upkeep::{DISK_FULL, DISK_RECHECK, human_bytes};
pub use upload::STORE_REFUSED;
pub use worker::Outcome;

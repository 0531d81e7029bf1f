//! The commands of the binary, as library functions that tests call
//! in-process: each returns the process exit status it stands for.

mod bucket_check;
mod check;
pub mod cli;
mod demo;
mod health;
mod inspect;
mod preflight;
pub mod progress;
mod shown;
mod status_view;
mod sync;

pub use check::check_config;
pub use demo::{DemoOptions, demo, simulator};
pub use health::healthcheck;
pub use inspect::{StatusOptions, retry, status, verify, verify_ledger, verify_with};
pub use preflight::preflight;
pub use sync::{SyncOptions, SyncOutcome, print_sync, sync, sync_with_options};

/// Exit statuses of docs/interface.md.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Some file failed for good, or verification found a problem.
    pub const FAILED: u8 = 1;
    /// A config or usage error.
    pub const CONFIG: u8 = 2;
}

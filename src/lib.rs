//! meeting-archiver: keeps Huawei Cloud Meeting recordings in a verified local archive.
//!
//! Data flows: `schedule` (or one `sync`) → `cloud` (the Huawei REST API: access
//! token, download URLs with single-use tokens) → `ledger` (SQLite: meetings,
//! files, tokens, attempts) → `worker` (the download pool, one claimed file at a
//! time) → `download` (one HTTP transfer into a partial file) → `archive`
//! (sanitised paths, atomic placement). `config` reads the TOML file, `simulator`
//! plays the cloud for tests and `demo`, and `clock` is the one reader of the
//! wall clock.

pub mod archive;
pub mod clock;
pub mod cloud;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod download;
pub mod ledger;
pub mod metrics;
pub mod pipeline;
pub mod simulator;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod webhook;

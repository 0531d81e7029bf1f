//! `run`: the long-running daemon around the pipeline.
//!
//! One `select!` loop in `run` owns everything that changes while the
//! daemon lives: the running poll, the workers, reloads and shutdown.
//! `schedule` only sends ticks into that loop; `server` answers `/healthz`
//! and `/metrics`, through `listener`'s bounded connections; `systemd` speaks `sd_notify`; `signals` turns SIGTERM,
//! SIGINT and SIGHUP into a cancellation token and reload requests;
//! `reload` works out what a changed config may change in place; `events`
//! serves the webhook (`[webhook]`) and handles the events it queues.

mod events;
pub mod listener;
mod reload;
mod run;
pub mod schedule;
pub mod server;
pub mod signals;
pub mod systemd;

pub use run::run;

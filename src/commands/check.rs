//! `check-config`: everything that would stop `sync` or `run` at start-up,
//! found without creating or changing anything. Folders that are missing are
//! reported as `sync` would treat them, an existing ledger is opened
//! read-only, and the schedule's next poll times are printed as the
//! daemon's scheduler computes them.

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::exit;
use crate::clock::Millis;
use crate::config::{Config, schedule};
use crate::download::DownloadClients;
use crate::ledger::Ledger;
use crate::pipeline::{archive_reader, tls_options};

/// How many upcoming polls `check-config` shows.
const NEXT_RUNS: usize = 3;

/// `check-config`: what was understood (secrets masked), the next poll
/// times, what `sync` would find at each folder and the ledger, and
/// warnings. An error is anything that would stop `run` at start-up.
pub fn check_config(config: &Config) -> anyhow::Result<u8> {
    let dirs = config.inspect_dirs()?;
    let ledger = inspect_ledger(config)?;
    DownloadClients::new(&tls_options(config))?;
    let bucket = archive_reader(config)?.bucket().map(|b| {
        format!(
            "archive.s3 {}: client configured; check-config --online checks the bucket",
            b.describe("")
        )
    });
    print!("{}", config.settings());
    print!(
        "{}",
        next_runs(&config.poll.schedule, Millis::now().to_utc())
    );
    println!("\nchecks:");
    for dir in dirs {
        println!("  {dir}");
    }
    println!("  {ledger}");
    if let Some(bucket) = bucket {
        println!("  {bucket}");
    }
    let warnings = config.warnings();
    if !warnings.is_empty() {
        println!("\nwarnings:");
        for warning in warnings {
            println!("  - {warning}");
        }
    }
    println!("config OK");
    Ok(exit::OK)
}

/// What `sync` would find at `ledger.path`; an existing ledger must open.
fn inspect_ledger(config: &Config) -> anyhow::Result<String> {
    let path = &config.ledger.path;
    let shown = path.display();
    if let Ok(false) = path.try_exists() {
        return Ok(format!(
            "ledger.path {shown}: does not exist; sync/run would create it"
        ));
    }
    let ledger = Ledger::open_read_only(path).context("while opening ledger.path")?;
    Ok(match ledger.pending_migrations()? {
        0 => format!("ledger.path {shown}: opens"),
        n => format!(
            "ledger.path {shown}: opens; written by an older version, sync/run would \
             upgrade it ({n} migration(s))"
        ),
    })
}

/// The next poll times of `expr` after `now`, one per line.
fn next_runs(expr: &str, now: DateTime<Utc>) -> String {
    let mut out = String::from("\nnext polls (UTC):\n");
    for run in schedule::next_runs(expr, now, NEXT_RUNS) {
        out.push_str(&format!("  {}\n", run.format("%Y-%m-%d %H:%M:%S %a")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_runs_are_listed_with_their_weekday() {
        let now = DateTime::from_timestamp(1_774_008_000, 0).expect("2026-03-20 12:00 UTC");
        let text = next_runs("0 */5 * 27 * MON", now);
        assert_eq!(
            text,
            "\nnext polls (UTC):\n  2026-04-27 00:00:00 Mon\n  2026-04-27 00:05:00 Mon\n  \
             2026-04-27 00:10:00 Mon\n"
        );
    }
}

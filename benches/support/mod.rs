//! What the benches share: sizes from the environment, the peak resident
//! memory, and a config pointing at the simulator.

// Each bench uses part of it.
#![allow(dead_code)]

use std::path::Path;

use meeting_archiver::config::Config;
use meeting_archiver::simulator::{Scenario, SimMeeting, Simulator};

/// The number in environment variable `name`, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's peak resident memory (VmHWM) in MiB; NaN off Linux.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A config archiving `meetings` from the simulator at `api_base` into
/// `dir/archive` (ledger `dir/ledger.sqlite3`) with `workers` workers, no
/// free-space floor and no HTTP server; `extra` is appended (more tables).
pub fn config_text(
    api_base: &str,
    dir: &Path,
    meetings: &[impl AsRef<str>],
    workers: usize,
    extra: &str,
) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let list: Vec<String> = meetings.iter().map(|m| q(m.as_ref())).collect();
    format!(
        "[cloud]\napi_base = {}\n[cloud.auth]\napp_id = \"sim-app-id\"\napp_key = \"sim-app-key-0123456789abcdef\"\n\
         [poll]\nmeetings = [{}]\n[download]\ndir = {}\nworkers = {workers}\nmin_free_space = \"0\"\n\
         [ledger]\npath = {}\n[server]\nlisten = \"\"\n{extra}",
        q(api_base),
        list.join(", "),
        q(&dir.join("archive").to_string_lossy()),
        q(&dir.join("ledger.sqlite3").to_string_lossy()),
    )
}

/// [`config_text`], parsed.
pub fn config(
    api_base: &str,
    dir: &Path,
    meetings: &[impl AsRef<str>],
    workers: usize,
    extra: &str,
) -> Config {
    let text = config_text(api_base, dir, meetings, workers, extra);
    Config::from_toml(&text, &|_| None).expect("bench config")
}

/// A simulator whose cloud holds one meeting, `conf`, with one `Hd` file
/// of `size` bytes.
pub async fn one_file_simulator(conf: &str, size: usize) -> Simulator {
    let scenario = Scenario {
        meetings: vec![SimMeeting::standard(conf, "Bench", 1, &["Hd"], size)],
        ..Scenario::default()
    };
    Simulator::start(scenario).await.expect("simulator")
}

/// Runs `sync` with `cfg`, checks that it archived its one file, and
/// returns the seconds it took.
pub async fn sync_one_file(cfg: &Config) -> f64 {
    let start = std::time::Instant::now();
    let outcome = meeting_archiver::commands::sync(cfg, tokio_util::sync::CancellationToken::new())
        .await
        .expect("sync");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(outcome.status.files.done, 1, "{outcome:?}");
    secs
}

/// CPU seconds (user + system, all threads) this process has used so far,
/// from `/proc/self/stat` in clock ticks (USER_HZ, 100 on Linux); NaN off
/// Linux.
pub fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after it.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

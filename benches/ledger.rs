//! The ledger at enterprise scale (issue 12): builds a ledger of
//! BENCH_FILES files (default 1,000,000) over BENCH_MEETINGS meetings
//! (default 20,000) through the ledger's own API (poll, claim, token,
//! attempt, archive: the calls the daemon makes), then times what people and
//! Prometheus ask of it: `status` and `status --json` (the real binary),
//! a `/metrics` render, a claim of the next file among a million done ones,
//! and a poll of BENCH_POLL_MEETINGS (default 10,000) configured, settled
//! meetings against the simulator (CPU time and API calls).
//!
//! Run: `cargo bench --bench ledger` (about three minutes on 2 cores; e.g.
//! `BENCH_FILES=100000 BENCH_MEETINGS=2000` for a quick look). BENCH_DIR
//! chooses where the ledger is built (default: the system's temp folder);
//! BENCH_KEEP=DIR builds it there once and reuses it on later runs.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meeting_archiver::clock::Millis;
use meeting_archiver::config::Config;
use meeting_archiver::ledger::{
    AttemptEnd, AttemptOutcome, DoneMark, Ledger, MeetingOrigin, MeetingStage, RetryPlan, UrlEntry,
};
use meeting_archiver::metrics::Metrics;
use meeting_archiver::pipeline::{PollPlan, build_engine};
use meeting_archiver::simulator::{Scenario, Simulator};
use secrecy::SecretString;
use support::{config_text, env_or};

fn conf_uuid(i: usize) -> String {
    format!("{i:032x}")
}

fn entries(conf: &str, files: usize, round: usize) -> Vec<UrlEntry> {
    (0..files)
        .map(|j| UrlEntry {
            file_type: "Hd".to_owned(),
            url: format!("https://127.0.0.2/d/{conf}/{j}.mp4?r={round}"),
            url_path: format!("/d/{conf}/{j}.mp4"),
            file_key: format!("{j}.mp4"),
            rel_path: format!("{conf}/Hd/{j}.mp4"),
            rel_path_alt: format!("{conf}/Hd/{j}-alt.mp4"),
            token: SecretString::from(format!("token-{conf}-{j}-{round}")),
        })
        .collect()
}

/// Every meeting polled, every file downloaded and archived (a few fail
/// for good, a few meetings fail to list): a month-old archive.
fn build(path: &Path, meetings: usize, files: usize) {
    let mut ledger = Ledger::open(path, true).expect("ledger");
    ledger.relax_durability_for_bulk_load().expect("bulk mode");
    let base = Millis::now().saturating_sub(Duration::from_secs(30 * 24 * 3600));
    let per_meeting = files.div_ceil(meetings);
    let started = Instant::now();
    for i in 0..meetings {
        let conf = conf_uuid(i);
        let seen = base + Duration::from_millis(i as u64);
        ledger
            .upsert_meeting(&conf, MeetingOrigin::Config, None, seen)
            .expect("meeting");
        ledger
            .store_urls(&conf, &entries(&conf, per_meeting, 0), seen)
            .expect("urls");
    }
    let later = base + Duration::from_secs(3600);
    let mut archived = 0usize;
    let mut op = [Duration::ZERO; 4];
    let mut t = Instant::now();
    while let Some(file) = ledger.claim_next(later).expect("claim") {
        op[0] += t.elapsed();
        t = Instant::now();
        let spent = ledger.take_token(file.id, Millis::EPOCH, 0, later);
        op[1] += t.elapsed();
        t = Instant::now();
        let spent = spent.expect("token").expect("a token");
        let fails = file.rel_path.ends_with("/0.mp4") && archived.is_multiple_of(997);
        let end = AttemptEnd {
            outcome: if fails {
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Done
            },
            bytes: 480_000,
            http_status: Some(if fails { 500 } else { 200 }),
            error: fails.then_some("HTTP 500 from the download host"),
        };
        ledger
            .finish_attempt(spent.attempt_id, &end, later)
            .expect("attempt");
        op[2] += t.elapsed();
        t = Instant::now();
        if fails {
            let plan = RetryPlan {
                error: "HTTP 500 from the download host",
                next_attempt_at: later,
                max_attempts: 1,
                partial_bytes: 0,
            };
            ledger.schedule_retry(file.id, &plan, later).expect("fail");
        } else {
            let done = DoneMark {
                size: 480_000 + (archived % 1000) as u64,
                sha256: "0f343b0931126a20f133d67c2b018a3b5a7d8a1f3e5e4e1c8b9d2a6f7c3e0d1a",
                length_confirmed: true,
            };
            ledger.mark_done(file.id, &done, later).expect("done");
        }
        op[3] += t.elapsed();
        t = Instant::now();
        archived += 1;
        if archived.is_multiple_of(100_000) {
            println!(
                "  built {archived} files in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / archived.max(1) as f64;
    println!(
        "per file while building (µs, no fsync): claim {:.0}, token {:.0}, attempt {:.0}, archive {:.0}",
        per(op[0]),
        per(op[1]),
        per(op[2]),
        per(op[3])
    );
    for i in (0..meetings).step_by(700) {
        ledger
            .record_poll_error(&conf_uuid(i), "HTTP 500 from the API", later)
            .expect("poll error");
    }
    // One file waits in the queue: the claim measured below.
    let conf = conf_uuid(meetings);
    ledger
        .upsert_meeting(&conf, MeetingOrigin::Config, None, later)
        .expect("meeting");
    ledger
        .store_urls(&conf, &entries(&conf, 1, 0), later)
        .expect("urls");
    println!(
        "built {archived} files over {meetings} meetings in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The config (TOML) of the bench: the simulator, `meetings` configured.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One figure with its target and the ratio to it.
fn report(what: &str, value: f64, unit: &str, target: f64, before: Option<&str>) {
    let before = before.map_or(String::new(), |b| format!("; before this issue: {b}"));
    println!(
        "{what:<44} {value:>10.3} {unit}  target < {target} {unit}  ratio {:.3}{before}",
        value / target
    );
}

/// Median wall time of the binary with `args` over `rounds`, and the
/// bytes it printed.
fn time_command(config: &Path, args: &[&str], rounds: usize) -> (Duration, usize) {
    let bin = env!("CARGO_BIN_EXE_meeting-archiver");
    let mut samples = Vec::new();
    let mut printed = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let out = Command::new(bin)
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .expect("binary runs");
        samples.push(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed = out.stdout.len();
    }
    (median(samples), printed)
}

/// Median time of 50 claims of the one queued file (released after each).
fn time_claims(mut writer: Ledger) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..50 {
        let now = Millis::now();
        let start = Instant::now();
        let file = writer
            .claim_next(now)
            .expect("claim")
            .expect("the queued file");
        samples.push(start.elapsed());
        writer.release(file.id, 0, now).expect("release");
    }
    median(samples)
}

/// CPU seconds (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the name), in
    // clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let files = env_or("BENCH_FILES", 1_000_000);
    let meetings = env_or("BENCH_MEETINGS", 20_000).max(1);
    let poll_meetings = env_or("BENCH_POLL_MEETINGS", 10_000).min(meetings);
    // BENCH_KEEP=DIR builds the ledger there once and reuses it on later
    // runs (the figures then come without the build's wait).
    let (dir_path, _temp) = match std::env::var_os("BENCH_KEEP") {
        Some(kept) => (std::path::PathBuf::from(kept), None),
        None => {
            let temp = match std::env::var_os("BENCH_DIR") {
                Some(d) => tempfile::tempdir_in(d),
                None => tempfile::tempdir(),
            }
            .expect("tempdir");
            (temp.path().to_owned(), Some(temp))
        }
    };
    std::fs::create_dir_all(&dir_path).expect("bench folder");
    let path = dir_path.join("ledger.sqlite3");
    if path.exists() {
        println!("reusing the ledger in {}", dir_path.display());
    } else {
        println!(
            "building a ledger of {files} files over {meetings} meetings in {}",
            dir_path.display()
        );
        build(&path, meetings, files);
    }
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!("ledger file: {:.0} MiB\n", size as f64 / 1048576.0);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let sim = Simulator::start(Scenario::default())
            .await
            .expect("simulator");
        let settled: Vec<String> = Ledger::open_read_only(&path)
            .and_then(|l| l.meetings())
            .expect("meetings")
            .into_iter()
            .filter(|m| m.stage == MeetingStage::Complete)
            .map(|m| m.conf_uuid)
            .take(poll_meetings)
            .collect();
        let text = config_text(&sim.api_base(), dir_path.as_path(), &settled, 4, "");
        let cfg = Config::from_toml(&text, &|_| None).expect("bench config");
        let cfg_path = dir_path.as_path().join("config.toml");
        std::fs::write(&cfg_path, text).expect("config");

        let (status, printed) = time_command(&cfg_path, &["status"], 5);
        report(
            "status (binary, wall, median of 5)",
            ms(status),
            "ms",
            100.0,
            Some("1900 ms"),
        );
        println!("{:<44} {printed:>10} bytes printed", "");
        let (json, printed) = time_command(&cfg_path, &["status", "--json"], 5);
        report(
            "status --json (binary, wall, median of 5)",
            ms(json),
            "ms",
            100.0,
            Some("1400 ms, 6.6 MB"),
        );
        println!("{:<44} {printed:>10} bytes printed", "");
        let (all, printed) = time_command(
            &cfg_path,
            &["status", "--json", "--meetings", "--per-page", "100000"],
            3,
        );
        println!(
            "{:<44} {:>10.3} ms  (every meeting: {printed} bytes)",
            "status --json --meetings (all on one page)",
            ms(all)
        );

        let reader = Ledger::open_read_only(&path).expect("reader");
        let metrics = Metrics::new();
        let mut samples = Vec::new();
        let mut text_len = 0;
        for _ in 0..50 {
            let start = Instant::now();
            let status = reader.status(0).expect("status");
            let due = reader.due_count(Millis::now()).expect("due");
            metrics.set_meeting_stages(&reader.counters().expect("counters"));
            text_len = metrics.render(&status, due).len();
            samples.push(start.elapsed());
        }
        drop(reader);
        report(
            "/metrics render (ledger reads + text, median of 50)",
            ms(median(samples)),
            "ms",
            10.0,
            None,
        );
        println!("{:<44} {text_len:>10} bytes", "");

        let writer = Ledger::open(&path, false).expect("writer");
        let durable = time_claims(writer);
        let writer = Ledger::open(&path, false).expect("writer");
        writer.relax_durability_for_bulk_load().expect("no fsync");
        let query = time_claims(writer);
        report(
            "claim among the done rows (query + commit)",
            ms(query),
            "ms",
            1.0,
            None,
        );
        println!(
            "{:<44} {:>10.3} ms  with the commit's fsync (synchronous=FULL, this disk)",
            "",
            ms(durable)
        );

        let engine = build_engine(&cfg).expect("engine");
        let plan = PollPlan::from(&cfg.poll);
        let before = sim.stats();
        let (cpu, start) = (cpu_seconds(), Instant::now());
        let polled = engine.poll(&plan).await;
        let (cpu, wall) = (cpu_seconds() - cpu, start.elapsed());
        let after = sim.stats();
        let calls = (after.appauth_ok + after.downloadurls_calls + after.record_files_calls)
            - (before.appauth_ok + before.downloadurls_calls + before.record_files_calls);
        assert_eq!(polled.settled, settled.len(), "{polled:?}");
        report(
            &format!("poll of {poll_meetings} settled meetings (CPU)"),
            cpu,
            "s",
            2.0,
            None,
        );
        println!(
            "{:<44} {:>10.3} s wall, {calls} API calls (target 0)",
            "",
            wall.as_secs_f64()
        );
        drop(engine);
        sim.shutdown().await;
    });
}

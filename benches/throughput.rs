//! Throughput and memory against the tools an admin would script instead:
//! `curl` followed by an fsync of the file (`sync FILE`), one big file, and
//! many small files through `xargs -P 8`; for the big file also curl +
//! fsync + `sha256sum` (a script that verifies, as the archiver does). All
//! download from the same simulator in alternating rounds (archiver first
//! in even rounds, last in odd ones), each run as its own process under
//! `/usr/bin/time` for wall time, peak RSS and CPU time (children
//! included). The archiver does more (SHA-256, checkpoints, ledger, atomic
//! rename); the figure is its wall time over curl's.
//!
//! Run: `cargo bench --bench throughput`. BIG_MB (default 2048), MID_MB
//! (default 100, the RSS comparison), SMALL_FILES (default 1000), SMALL_KB
//! (default 256), ROUNDS (default 3), BENCH_DIR (default: the temp folder),
//! ARCHIVER_BIN (another build of the binary to measure instead).
//! Needs `curl`, `sync`, `sha256sum` and `/usr/bin/time` (GNU).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use meeting_archiver::config::Config;
use meeting_archiver::simulator::{Scenario, SimMeeting, Simulator};
use secrecy::ExposeSecret;
use support::{config_text, env_or, own_cpu_seconds};

const BIG: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
const MID: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const SMALL: &str = "b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3";

/// One measured process.
#[derive(Clone, Copy)]
struct Run {
    /// Wall seconds.
    wall: f64,
    /// Peak RSS, MiB.
    rss: f64,
    /// User + system CPU seconds (for curl + fsync, of every process).
    cpu: f64,
    /// CPU seconds the simulator (this process) spent meanwhile.
    server_cpu: f64,
}

/// Wall time, peak RSS and CPU time of `cmd` run under GNU time.
fn timed(cmd: Command) -> Run {
    let report = tempfile::NamedTempFile::new().expect("report file");
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%e %M %U %S")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let status = wrapped.status().expect("runs");
    assert!(status.success(), "{:?} failed", cmd.get_program());
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(f64::NAN))
        .collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or(f64::NAN);
    Run {
        wall: field(0),
        rss: field(1) / 1024.0,
        cpu: field(2) + field(3),
        server_cpu: f64::NAN,
    }
}

/// One `sync` of `conf` by the binary into a fresh folder under `root`.
fn archiver(root: &Path, api_base: &str, conf: &str, workers: usize) -> Run {
    let dir = tempfile::tempdir_in(root).expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(api_base, dir.path(), &[conf], workers, ""),
    )
    .expect("config");
    // ARCHIVER_BIN: another build to compare (e.g. the one before a change).
    let bin = std::env::var_os("ARCHIVER_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_meeting-archiver").into());
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&config).arg("sync");
    timed(cmd)
}

/// curl + `sync FILE` of every file of `conf` (fresh tokens), `parallel`
/// at once through xargs; with `check`, then `sha256sum FILE` too (what a
/// script that verifies its downloads, as the archiver does, adds).
async fn curl(root: &Path, cfg: &Config, conf: &str, parallel: usize, check: bool) -> Run {
    let client = meeting_archiver::pipeline::cloud_client(cfg).expect("client");
    let urls = client.download_urls(conf).await.expect("urls");
    let dir = tempfile::tempdir_in(root).expect("tempdir");
    let list: PathBuf = dir.path().join("list");
    let lines: Vec<String> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let out = dir.path().join(format!("{i}.mp4"));
            format!("{} {} {}", out.display(), u.token.expose_secret(), u.url)
        })
        .collect();
    std::fs::write(&list, lines.join("\n") + "\n").expect("list");
    let mut cmd = Command::new("xargs");
    cmd.arg("-a")
        .arg(&list)
        .arg("-P")
        .arg(parallel.to_string())
        .arg("-n")
        .arg("3")
        .arg("sh")
        .arg("-c")
        .arg(if check {
            r#"curl -sSf -o "$0" -H "Authorization: $1" "$2" && sync "$0" && sha256sum "$0""#
        } else {
            r#"curl -sSf -o "$0" -H "Authorization: $1" "$2" && sync "$0""#
        });
    timed(cmd)
}

fn main() {
    let big_mb = env_or("BIG_MB", 2048);
    let mid_mb = env_or("MID_MB", 100);
    let small_files = env_or("SMALL_FILES", 1000).max(2);
    let small_kb = env_or("SMALL_KB", 256);
    let rounds = env_or("ROUNDS", 3).max(1);
    let root = match std::env::var_os("BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let scenario = Scenario {
            meetings: vec![
                SimMeeting::standard(BIG, "Big", 1, &["Hd"], big_mb << 20),
                SimMeeting::standard(MID, "Mid", 1, &["Hd"], mid_mb << 20),
                SimMeeting::standard(SMALL, "Small", small_files / 2, &["Hd", "Sd"], small_kb << 10),
            ],
            ..Scenario::default()
        };
        let sim = Simulator::start(scenario).await.expect("simulator");
        let api = sim.api_base();
        let cfg = support::config(&api, root.path(), &[BIG], 1, "");
        let r = root.path();
        println!("one {big_mb} MiB file, {rounds} alternating rounds (wall s, peak RSS MiB):");
        let (mut a_big, mut c_big, mut v_big) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Blocking children run on the blocking pool: the simulator
            // in this process keeps serving.
            let run_archiver = || {
                let (r, api) = (r.to_owned(), api.clone());
                tokio::task::spawn_blocking(move || archiver(&r, &api, BIG, 1))
            };
            // What serving each costs this process (the simulator): it
            // shares the machine's cores with the client.
            let served = |run: Run, since: f64| Run {
                server_cpu: own_cpu_seconds() - since,
                ..run
            };
            let archiver_run = || async {
                let since = own_cpu_seconds();
                served(run_archiver().await.expect("archiver"), since)
            };
            let cfg = &cfg;
            let curl_run = |check| async move {
                let since = own_cpu_seconds();
                served(curl(r, cfg, BIG, 1, check).await, since)
            };
            if round % 2 == 0 {
                a_big.push(archiver_run().await);
                c_big.push(curl_run(false).await);
                v_big.push(curl_run(true).await);
            } else {
                v_big.push(curl_run(true).await);
                c_big.push(curl_run(false).await);
                a_big.push(archiver_run().await);
            }
            let (a, c, v) = (a_big[round], c_big[round], v_big[round]);
            println!(
                "  round {round}: archiver {:.2} s ({:.2} s CPU, {:.1} MiB; simulator {:.2} s CPU), curl + fsync {:.2} s ({:.2} s CPU, {:.1} MiB; simulator {:.2} s CPU), ratio {:.2}; curl + fsync + sha256sum {:.2} s ({:.2} s CPU), ratio {:.2}",
                a.wall, a.cpu, a.rss, a.server_cpu, c.wall, c.cpu, c.rss, c.server_cpu, a.wall / c.wall, v.wall, v.cpu, a.wall / v.wall
            );
        }
        let mid = {
            let (r, api) = (r.to_owned(), api.clone());
            tokio::task::spawn_blocking(move || archiver(&r, &api, MID, 1))
                .await
                .expect("archiver")
        };
        println!("{small_files} files of {small_kb} KiB, {rounds} alternating rounds (archiver 8 workers, xargs -P 8):");
        let (mut a_small, mut c_small) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let run_archiver = || {
                let (r, api) = (r.to_owned(), api.clone());
                tokio::task::spawn_blocking(move || archiver(&r, &api, SMALL, 8))
            };
            if round % 2 == 1 {
                a_small.push(run_archiver().await.expect("archiver"));
                c_small.push(curl(r, &cfg, SMALL, 8, false).await);
            } else {
                c_small.push(curl(r, &cfg, SMALL, 8, false).await);
                a_small.push(run_archiver().await.expect("archiver"));
            }
            let (a, c) = (a_small[round], c_small[round]);
            println!(
                "  round {round}: archiver {:.2} s, xargs -P 8 curl + fsync {:.2} s, ratio {:.2}",
                a.wall, c.wall, a.wall / c.wall
            );
        }
        let median = |v: &[Run], f: fn(&Run) -> f64| {
            let mut x: Vec<f64> = v.iter().map(f).collect();
            x.sort_by(f64::total_cmp);
            x[x.len() / 2]
        };
        let (ab, cb) = (median(&a_big, |x| x.wall), median(&c_big, |x| x.wall));
        let (abc, cbc) = (median(&a_big, |x| x.cpu), median(&c_big, |x| x.cpu));
        let (vb, vbc) = (median(&v_big, |x| x.wall), median(&v_big, |x| x.cpu));
        let (as_, cs) = (median(&a_small, |x| x.wall), median(&c_small, |x| x.wall));
        let big_rss = median(&a_big, |x| x.rss);
        println!("\nsummary (medians):");
        println!(
            "  {big_mb} MiB file: archiver {ab:.2} s vs curl + fsync {cb:.2} s: ratio {:.2} (target <= 1.0)",
            ab / cb
        );
        println!(
            "  {big_mb} MiB file: archiver {ab:.2} s vs curl + fsync + sha256sum {vb:.2} s: ratio {:.2}",
            ab / vb
        );
        println!(
            "  {big_mb} MiB file, CPU: archiver {abc:.2} s, curl + fsync {cbc:.2} s, curl + fsync + sha256sum {vbc:.2} s"
        );
        println!(
            "  {small_files} small files: archiver {as_:.2} s vs xargs -P 8 {cs:.2} s: ratio {:.2}",
            as_ / cs
        );
        println!(
            "  peak RSS: {big_mb} MiB file {big_rss:.1} MiB vs {mid_mb} MiB file {:.1} MiB: ratio {:.3} (target within 10 %, <= 48 MiB)",
            mid.rss,
            big_rss / mid.rss
        );
        sim.shutdown().await;
    });
}

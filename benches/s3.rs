//! Memory while archiving to an S3-compatible bucket: one `sync` of a large
//! file from the simulator into `moto_server` (multipart upload), in one
//! process. Prints the throughput and the peak resident memory, compared
//! with the 64 MiB the issue allows whatever the file size (the upload
//! holds at most `(PARTS_IN_FLIGHT + 1) * part_size` bytes of the file).
//!
//! Run: `cargo bench --bench s3` (SIZE_MB=... to change the file size,
//! default 2048; MEETING_ARCHIVER_MOTO_SERVER=... where moto_server is not
//! in target/moto-venv). Needs about three times the file size in free disk
//! (the partial file, and moto's parts and object).

mod support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meeting_archiver::archive::{PARTS_IN_FLIGHT, part_size};
use meeting_archiver::config::Config;
use support::{env_or, one_file_simulator, peak_rss_mib};

/// The bound on peak RSS while archiving a 2 GiB file to S3.
const LIMIT_MIB: f64 = 64.0;

fn config(api_base: &str, dir: &std::path::Path, conf: &str, s3: &str) -> Config {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let archive = format!(
        "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"bench\"\nendpoint = {}\n\
         access_key_id = \"AKIDBENCH\"\nsecret_access_key = \"bench-secret\"\npath_style = true\n",
        q(s3),
    );
    support::config(api_base, dir, &[conf], 1, &archive)
}

/// Starts moto_server on a free port and creates the bucket `bench`.
async fn moto() -> (std::process::Child, String) {
    let program = std::env::var("MEETING_ARCHIVER_MOTO_SERVER")
        .unwrap_or_else(|_| "target/moto-venv/bin/moto_server".to_owned());
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let started = Instant::now();
    while http.get(&endpoint).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let made = http
        .put(format!("{endpoint}/bench"))
        .send()
        .await
        .expect("bucket");
    assert!(made.status().is_success());
    (child, endpoint)
}

fn main() {
    let size_mb = env_or("SIZE_MB", 2048);
    let size = size_mb * 1024 * 1024;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let conf = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
        let sim = one_file_simulator(conf, size).await;
        let (mut moto, endpoint) = moto().await;
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let cfg = config(&sim.api_base(), dir.path(), conf, &endpoint);
        println!(
            "file: {size_mb} MiB; parts of {} MiB, {PARTS_IN_FLIGHT} in flight; peak RSS before: {:.1} MiB",
            part_size(size as u64) >> 20,
            peak_rss_mib()
        );
        let secs = support::sync_one_file(&cfg).await;
        let peak = peak_rss_mib();
        println!(
            "archiver sync to S3 (download, hash, multipart upload, HEAD check): {:.0} MB/s end to end, {secs:.1} s",
            size as f64 / 1e6 / secs,
        );
        println!(
            "peak RSS {peak:.1} MiB vs limit {LIMIT_MIB:.0} MiB: {}",
            if peak < LIMIT_MIB { "PASS" } else { "FAIL" }
        );
        let _ = moto.kill();
        let _ = moto.wait();
        sim.shutdown().await;
    });
}

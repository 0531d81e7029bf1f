//! Download throughput and memory: the archiver's pipeline (token from the
//! ledger, streaming into the partial file with SHA-256, fsync, atomic
//! placement, ledger update) against a bare reqwest stream into a sink,
//! from the same simulator in the same process. Prints MB/s for both and
//! the peak resident memory after each, to show that memory does not grow
//! with the file size.
//!
//! Run: `cargo bench --bench download` (SIZE_MB=... to change the file size).

mod support;

use std::time::Instant;

use meeting_archiver::config::Config;
use meeting_archiver::simulator::Simulator;
use support::{config, env_or, one_file_simulator, peak_rss_mib};

/// Streams the file with a plain client into nothing; returns bytes.
async fn baseline(sim: &Simulator, cfg: &Config, conf: &str) -> u64 {
    let client = meeting_archiver::pipeline::cloud_client(cfg).expect("client");
    let urls = client.download_urls(conf).await.expect("urls");
    let url = urls.first().expect("one url");
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let token = secrecy::ExposeSecret::expose_secret(&url.token).to_owned();
    let mut response = http
        .get(&url.url)
        .header("Authorization", token)
        .send()
        .await
        .expect("get");
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        bytes += chunk.len() as u64;
    }
    let _ = sim;
    bytes
}

fn main() {
    let size_mb = env_or("SIZE_MB", 512);
    let size = size_mb * 1024 * 1024;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let conf = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
        let sim = one_file_simulator(conf, size).await;
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let cfg = config(&sim.api_base(), dir.path(), &[conf], 1, "");
        println!(
            "file: {size_mb} MiB; peak RSS before: {:.1} MiB",
            peak_rss_mib()
        );

        let start = Instant::now();
        let bytes = baseline(&sim, &cfg, conf).await;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "baseline (reqwest stream to a sink): {:.0} MB/s, peak RSS {:.1} MiB",
            bytes as f64 / 1e6 / secs,
            peak_rss_mib()
        );

        let secs = support::sync_one_file(&cfg).await;
        println!(
            "archiver sync (hash, fsync, rename, ledger): {:.0} MB/s, peak RSS {:.1} MiB",
            size as f64 / 1e6 / secs,
            peak_rss_mib()
        );
        sim.shutdown().await;
    });
}

//! `demo`: the whole pipeline against the built-in simulator of the meeting
//! cloud, into a local folder, with no credentials: a newcomer sees three
//! meetings archived, verified and summarised in a few seconds. The
//! simulator injects a few faults (a 10 % share of failed downloads) so
//! that retries with fresh tokens show up in the log too.

use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::cli::SimulatorWebhook;
use super::{exit, status, sync, verify};
use crate::config::Config;
use crate::simulator::{Faults, Scenario, SimWebhook, Simulator};

/// Options of `demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Folder for the archive and the ledger.
    pub dir: PathBuf,
    /// Download workers.
    pub workers: usize,
}

impl DemoOptions {
    /// The demo's defaults, in `dir`.
    pub fn new(dir: &std::path::Path) -> DemoOptions {
        DemoOptions {
            dir: dir.to_owned(),
            workers: 4,
        }
    }
}

/// Runs the demo; returns the exit status.
pub async fn demo(options: DemoOptions, cancel: CancellationToken) -> anyhow::Result<u8> {
    let faults = Faults {
        download_500: 0.1,
        ..Faults::default()
    };
    let (sim, meetings, auth) = start_demo_cloud(faults).await?;
    let config = demo_config(&options, &sim.api_base(), &auth, &meetings)?;
    println!(
        "demo: simulated meeting cloud at {} (downloads from {})",
        sim.api_base(),
        sim.download_base()
    );
    println!(
        "demo: archiving {} meetings into {}\n",
        meetings.len(),
        config.download.dir.display()
    );
    let outcome = sync(&config, cancel).await?;
    println!("\n== verify");
    let verified = verify(&config, false).await?;
    println!("\n== status");
    status(&config, &super::StatusOptions::default()).await?;
    let stats = sim.stats();
    println!(
        "\nsimulator served {} download requests ({} faults injected, {} spent tokens presented again), {} API calls, {} access token(s) issued",
        stats.download_requests,
        stats.download_faults_injected,
        stats.spent_token_reuses,
        stats.downloadurls_calls + stats.record_files_calls,
        stats.appauth_ok
    );
    println!(
        "the archive is in {}; the ledger in {}. Run the demo again: nothing is downloaded twice.",
        config.download.dir.display(),
        config.ledger.path.display()
    );
    sim.shutdown().await;
    Ok(if outcome.exit_code() == exit::OK && verified == exit::OK {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// The demo's simulated cloud with `faults`: the simulator, its meetings
/// and its App ID and key.
async fn start_demo_cloud(
    faults: Faults,
) -> anyhow::Result<(Simulator, Vec<String>, (String, String))> {
    let scenario = Scenario {
        faults,
        ..Scenario::demo()
    };
    let meetings = scenario
        .meetings
        .iter()
        .map(|m| m.conf_uuid.clone())
        .collect();
    let auth = (scenario.app_id.clone(), scenario.app_key.clone());
    let sim = Simulator::start(scenario)
        .await
        .context("while starting the built-in simulator on 127.0.0.1 and 127.0.0.2")?;
    Ok((sim, meetings, auth))
}

/// The config the demo runs with, pointing at the simulator.
fn demo_config(
    options: &DemoOptions,
    api_base: &str,
    auth: &(String, String),
    meetings: &[String],
) -> anyhow::Result<Config> {
    let text = demo_config_text(options, api_base, auth, meetings, "", None)?;
    Config::from_toml(&text, &|_| None).context("while building the demo config")
}

/// Config text pointing at the simulator; `listen` for `server.listen`;
/// `webhook` turns `[webhook]` on for the events pushed to that URL.
fn demo_config_text(
    options: &DemoOptions,
    api_base: &str,
    (app_id, app_key): &(String, String),
    meetings: &[String],
    listen: &str,
    webhook: Option<&url::Url>,
) -> anyhow::Result<String> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let dir = std::path::absolute(&options.dir)
        .with_context(|| format!("while resolving {}", options.dir.display()))?;
    let archive = dir.join("archive");
    let ledger = dir.join("ledger.sqlite3");
    let meetings: Vec<String> = meetings.iter().map(|m| q(m)).collect();
    let text = format!(
        "[cloud]\napi_base = {}\nretry_base = \"50ms\"\nretry_max = \"1s\"\n\
         [cloud.auth]\napp_id = {}\napp_key = {}\n\
         [poll]\nmeetings = [{}]\n\
         [download]\ndir = {}\nworkers = {}\nretry_base = \"100ms\"\nretry_max = \"1s\"\n\
         [ledger]\npath = {}\n[server]\nlisten = {}\n",
        q(api_base),
        q(app_id),
        q(app_key),
        meetings.join(", "),
        q(&archive.to_string_lossy()),
        options.workers.max(1),
        q(&ledger.to_string_lossy()),
        q(listen),
    );
    Ok(match webhook {
        Some(url) => text + &webhook_section(url),
        None => text,
    })
}

/// `[webhook]` taking the events pushed to `url`: on its address when the
/// URL names one (else the default, behind a proxy), on its path, for
/// meetings no config names (the simulator's new recordings).
fn webhook_section(url: &url::Url) -> String {
    let listen = url
        .socket_addrs(|| None)
        .ok()
        .and_then(|addrs| addrs.into_iter().find(|a| a.ip().is_loopback()))
        .map_or_else(
            || crate::config::defaults::WEBHOOK_LISTEN.to_string(),
            |a| a.to_string(),
        );
    format!(
        "[webhook]\nenabled = true\nlisten = \"{listen}\"\npath = {}\naccept_unlisted = true\n",
        serde_json::to_string(url.path()).unwrap_or_default()
    )
}

/// Makes a new simulated recording ready every `every`, each pushing its
/// `record.finish`, until `cancel`.
async fn finish_recordings(
    sim: &Simulator,
    every: std::time::Duration,
    cancel: &CancellationToken,
) {
    for n in 1u32.. {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let conf = format!("{:032x}", 0xe7e7_0000_u128 + u128::from(n));
        let meeting = crate::simulator::SimMeeting::standard(
            &conf,
            &format!("Recording {n} (pushed)"),
            1,
            &["Hd", "Aux"],
            256 * 1024,
        );
        let statuses = sim.finish_recording(meeting).await;
        eprintln!("simulator: recording {conf} is ready; record.finish answered {statuses:?}");
    }
}

/// `simulator`: serves the demo's simulated cloud until `cancel`, after
/// writing a config that points at it (to `config_out`, or standard
/// output), so that `run`, `sync`, `status` and the rest can be tried
/// without credentials.
pub async fn simulator(
    options: DemoOptions,
    config_out: Option<std::path::PathBuf>,
    push: SimulatorWebhook,
    cancel: CancellationToken,
) -> anyhow::Result<u8> {
    let (sim, meetings, auth) = start_demo_cloud(Faults::default()).await?;
    let text = demo_config_text(
        &options,
        &sim.api_base(),
        &auth,
        &meetings,
        "127.0.0.1:9187",
        push.webhook.as_ref(),
    )?;
    match &config_out {
        Some(path) => {
            // Whole or not at all: whoever waits for the file reads it complete.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .with_context(|| format!("while writing {}", path.display()))?;
            eprintln!("simulator: config for it written to {}", path.display());
        }
        None => print!("{text}"),
    }
    eprintln!(
        "simulator: meeting cloud at {} (downloads from {}); Ctrl-C stops it",
        sim.api_base(),
        sim.download_base()
    );
    match &push.webhook {
        Some(url) => {
            sim.set_webhook(Some(SimWebhook {
                url: url.to_string(),
                twice: push.webhook_twice,
                late: push.webhook_late.unwrap_or_default(),
                bad_signature: push.webhook_bad_signature,
                replay_nonce: push.webhook_replay,
                ..SimWebhook::default()
            }));
            eprintln!(
                "simulator: a new recording becomes ready every {}, its record.finish pushed to {url}",
                humantime::format_duration(push.webhook_every)
            );
            finish_recordings(&sim, push.webhook_every, &cancel).await;
        }
        None => cancel.cancelled().await,
    }
    sim.shutdown().await;
    Ok(exit::OK)
}

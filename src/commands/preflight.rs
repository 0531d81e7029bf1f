//! `check-config --online`: the preflight an admin runs before trusting the
//! daemon with a real account. Each step says ok or what failed and how to
//! fix it: the bucket (`bucket_check`, for an S3 target), authentication,
//! one page of the recording list, the download URLs of one configured
//! meeting, and a TLS handshake with each download
//! host those URLs name. No download token is spent: the handshake is made
//! by an unauthenticated `HEAD` (no token is presented), through the same
//! client, trust store and `tls.insecure_download_hosts` rule as downloads.

use std::time::Duration;

use super::exit;
use crate::clock::Millis;
use crate::cloud::{CloudClient, transport};
use crate::config::Config;
use crate::download::DownloadClients;
use crate::pipeline::{cloud_client, tls_options};
use crate::telemetry::error_chain;

/// One preflight step's result, printed as it comes.
pub(super) fn report(step: &str, result: Result<String, String>) -> bool {
    match result {
        Ok(detail) => {
            println!("ok      {step}: {detail}");
            true
        }
        Err(why) => {
            println!("FAILED  {step}: {why}");
            false
        }
    }
}

/// Runs the preflight (the bucket's steps first, when `archive.target =
/// "s3"`, then the cloud's); exit 0 when every step passed, 1 otherwise.
pub async fn preflight(config: &Config) -> anyhow::Result<u8> {
    let bucket = super::bucket_check::check_bucket(config).await;
    let cloud = cloud_steps(config).await?;
    Ok(if bucket { cloud } else { exit::FAILED })
}

/// The cloud's steps.
async fn cloud_steps(config: &Config) -> anyhow::Result<u8> {
    let cloud = cloud_client(config)?;
    let downloads = DownloadClients::new(&tls_options(config))?;
    let authenticated = report(
        "authentication",
        cloud
            .check_authentication()
            .await
            .map(|()| "an access token was issued".to_owned())
            .map_err(|e| error_chain(&e)),
    );
    if !authenticated {
        println!("the remaining steps need a working authentication");
        return Ok(exit::FAILED);
    }
    let mut passed = report("recording list", recording_list(&cloud).await);
    let Some(meeting) = config.poll.meetings.first() else {
        println!("skipped download URLs: poll.meetings is empty");
        return Ok(if passed { exit::OK } else { exit::FAILED });
    };
    match cloud.download_urls(meeting).await {
        Ok(urls) => {
            passed &= report(
                &format!("download URLs of meeting {meeting}"),
                Ok(format!("{} file(s) listed", urls.len())),
            );
            let mut hosts: Vec<url::Url> = Vec::new();
            for url in urls.iter().filter_map(|u| url::Url::parse(&u.url).ok()) {
                if !hosts.iter().any(|h| h.host_str() == url.host_str()) {
                    hosts.push(url);
                }
            }
            for url in hosts {
                let host = url.host_str().unwrap_or("?").to_owned();
                let reached = handshake(&downloads, &url, &host).await;
                passed &= report(&format!("download host {host}"), reached);
            }
        }
        Err(e) => {
            passed &= report(
                &format!("download URLs of meeting {meeting}"),
                Err(error_chain(&e)),
            );
        }
    }
    Ok(if passed { exit::OK } else { exit::FAILED })
}

async fn recording_list(cloud: &CloudClient) -> Result<String, String> {
    let end = Millis::now();
    let start = end.saturating_sub(Duration::from_secs(24 * 3600));
    cloud
        .recordings(start, end)
        .await
        .map(|found| format!("{} recording(s) in the last day", found.len()))
        .map_err(|e| error_chain(&e))
}

/// Connects to a download host as a download would, without a token.
async fn handshake(
    downloads: &DownloadClients,
    url: &url::Url,
    host: &str,
) -> Result<String, String> {
    let mut probe = url.clone();
    probe.set_query(None);
    let client = downloads.for_url(&probe);
    match client.head(probe.as_str()).send().await {
        Ok(answer) => Ok(format!(
            "reachable, certificate accepted (answered HTTP {} without a token)",
            answer.status().as_u16()
        )),
        Err(e) => {
            let chain = error_chain(&e);
            let failure = transport::classify(&chain);
            Err(transport::explain(failure, host, &chain, true))
        }
    }
}

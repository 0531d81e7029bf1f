//! Building the pipeline from a validated config: ledger, cloud client,
//! archive and download clients, wired into one [`Engine`].

use std::sync::Arc;

use anyhow::Context;

use crate::archive::{Archive, Bucket};
use crate::clock::Millis;
use crate::cloud::{
    AppCredentials, Backoff, CloudClient, CloudSettings, Credentials, Pending, StoredToken,
    TokenStore,
};
use crate::config::{Auth, Config};
use crate::download::{DownloadClients, TlsOptions, api_client};
use crate::ledger::{Ledger, LedgerHandle};
use crate::metrics::Metrics;
use crate::pipeline::{Engine, EngineSettings};
use crate::telemetry::error_chain;
use secrecy::SecretString;

/// The TLS and timeout options of a config.
pub fn tls_options(config: &Config) -> TlsOptions {
    TlsOptions {
        ca_file: config.tls.ca_file.clone(),
        insecure_download_hosts: config.tls.insecure_download_hosts.clone(),
        connect_timeout: config.download.connect_timeout,
        read_timeout: config.download.read_timeout,
    }
}

/// The API client of a config.
pub fn cloud_client(config: &Config) -> anyhow::Result<CloudClient> {
    let cloud = &config.cloud;
    let http = api_client(&tls_options(config), cloud.request_timeout)
        .context("while building the API client")?;
    let credentials = match &cloud.auth {
        Auth::AppId {
            app_id,
            app_key,
            user_id,
            corp_id,
        } => Credentials::App(AppCredentials {
            app_id: app_id.clone(),
            app_key: app_key.clone(),
            user_id: user_id.clone(),
            corp_id: corp_id.clone(),
        }),
        Auth::AccessToken(token) => Credentials::Static(token.clone()),
    };
    Ok(CloudClient::new(
        http,
        CloudSettings {
            api_base: cloud.api_base.clone(),
            credentials,
            max_retries: cloud.max_retries,
            give_up_after: cloud.give_up_after,
            max_requests_per_minute: cloud.max_requests_per_minute,
            backoff: Backoff {
                base: cloud.retry_base,
                max: cloud.retry_max,
            },
        },
    ))
}

/// Opens the ledger of a config; `exclusive` for processes that download.
pub fn open_ledger(config: &Config, exclusive: bool) -> anyhow::Result<LedgerHandle> {
    let path = &config.ledger.path;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "while creating the folder of ledger.path {}",
                parent.display()
            )
        })?;
    }
    let ledger = Ledger::open(path, exclusive).context("while opening ledger.path")?;
    ledger
        .limit_busy_wait(config.ledger.retry_for)
        .context("while configuring ledger.path")?;
    Ok(LedgerHandle::new(ledger))
}

/// The archive of a config for reading (`verify`): the local folder, with
/// the bucket when it is the target. Creates nothing, takes no lock.
pub fn archive_reader(config: &Config) -> anyhow::Result<Archive> {
    with_target(config, Archive::read_only(&config.download.dir))
}

/// `archive` with the config's bucket as its target, if there is one.
fn with_target(config: &Config, archive: Archive) -> anyhow::Result<Archive> {
    let Some(s3) = config.archive.s3() else {
        return Ok(archive);
    };
    if s3.secret_source == crate::config::SecretSource::NotLoaded {
        anyhow::bail!(
            "archive.s3.secret_access_key_file cannot be read now, and the bucket needs it \
             (or set AWS_SECRET_ACCESS_KEY)"
        );
    }
    let bucket =
        Bucket::new(s3, config.tls.ca_file.as_deref()).context("while setting up archive.s3")?;
    Ok(archive.with_bucket(bucket))
}

impl Engine {
    /// Fails fast, with the store's answer, when the bucket refuses the
    /// credentials or does not exist, before any download is spent on a
    /// file that could not be uploaded. Nothing to check for a local target.
    pub async fn check_target(&self) -> anyhow::Result<()> {
        if let Some(bucket) = self.archive.bucket() {
            bucket
                .check_access()
                .await
                .with_context(|| format!("while checking archive.s3 ({})", bucket.describe("")))?;
        }
        Ok(())
    }
}

/// The whole pipeline of a config, holding the ledger's process lock.
pub fn build_engine(config: &Config) -> anyhow::Result<Arc<Engine>> {
    config.check_dirs()?;
    let ledger = open_ledger(config, true)?;
    let owner = format!("ledger {}", config.ledger.path.display());
    let archive = with_target(config, Archive::open(&config.download.dir, &owner)?)?;
    let downloads = DownloadClients::new(&tls_options(config))
        .context("while building the download clients")?;
    let settings = EngineSettings {
        file_types: config.download.file_types.clone(),
        max_attempts: config.download.max_attempts,
        token_max_age: config.download.token_max_age,
        download_backoff: Backoff {
            base: config.download.retry_base,
            max: config.download.retry_max,
        },
        checkpoint_interval: config.download.checkpoint_interval,
        ledger_patience: config.ledger.retry_for,
        min_free_space: config.download.min_free_space,
        layout: config.download.layout.clone(),
        zone: config.download.timezone,
    };
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(LedgerTokens(ledger.clone()));
    let cloud = cloud_client(config)?
        .with_metrics(Arc::clone(&metrics))
        .with_token_store(store);
    Ok(Arc::new(Engine::new(
        ledger,
        Arc::new(cloud),
        archive,
        downloads,
        settings,
        metrics,
    )))
}

/// The ledger as the cloud client's [`TokenStore`]: the access token
/// outlives the process, so a `sync` from cron does not abandon one token
/// per run. Failures are logged; the client then authenticates anew.
struct LedgerTokens(LedgerHandle);

impl TokenStore for LedgerTokens {
    fn load<'a>(&'a self, credentials: &'a str) -> Pending<'a, Option<StoredToken>> {
        let key = credentials.to_owned();
        Box::pin(async move {
            let found = self
                .0
                .call(move |l| l.access_token(&key, Millis::now()))
                .await;
            match found {
                Ok(found) => found.map(|(value, use_until)| StoredToken { value, use_until }),
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot read the kept access token");
                    None
                }
            }
        })
    }

    fn save<'a>(&'a self, credentials: &'a str, token: &'a StoredToken) -> Pending<'a, ()> {
        let (key, value, until) = (credentials.to_owned(), token.value.clone(), token.use_until);
        Box::pin(async move {
            let saved = self
                .0
                .call(move |l| l.save_access_token(&key, &value, until))
                .await;
            if let Err(e) = saved {
                tracing::warn!(error = %error_chain(&e), "cannot keep the access token for the next run");
            }
        })
    }

    fn erase<'a>(&'a self, credentials: &'a str, token: &'a SecretString) -> Pending<'a, ()> {
        let (key, value) = (credentials.to_owned(), token.clone());
        Box::pin(async move {
            let erased = self
                .0
                .call(move |l| l.erase_access_token(&key, &value))
                .await;
            if let Err(e) = erased {
                tracing::warn!(error = %error_chain(&e), "cannot forget a refused access token");
            }
        })
    }
}

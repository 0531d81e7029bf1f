//! Re-listing a meeting's download URLs, which issues fresh single-use
//! tokens for all its files. A poll does it for every meeting; a worker
//! does it when its file's token is missing, too old or refused. Workers
//! that need fresh tokens for one meeting at once share one call: the
//! meeting's URL generation tells a waiter that someone else already
//! re-listed while it waited for the meeting's lock.

use crate::archive;
use crate::clock::Millis;
use crate::ledger::UrlEntry;

use super::{Engine, EngineError};

impl Engine {
    /// Lists a meeting's URLs and stores them with their fresh tokens.
    /// Returns the number of new files, or `None` if the cloud lists none.
    /// Callers hold the meeting's lock.
    pub(crate) async fn refresh_urls(&self, conf: &str) -> Result<Option<usize>, EngineError> {
        let urls = self.cloud.download_urls(conf).await?;
        if urls.is_empty() {
            tracing::info!("no recording files listed yet (still recording or transcoding?)");
            let c = conf.to_owned();
            self.ledger
                .call(move |l| l.store_urls(&c, &[], Millis::now()))
                .await?;
            return Ok(None);
        }
        let listed = urls.len();
        let mut entries = Vec::with_capacity(listed);
        for item in urls {
            if !self.wants_type(&item.file_type) {
                continue;
            }
            let parsed = match url::Url::parse(&item.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => u,
                _ => {
                    tracing::warn!(file_type = %item.file_type, "ignoring a download URL that is not http(s)");
                    continue;
                }
            };
            let (rel_path, rel_path_alt) = archive::rel_paths(conf, &item.file_type, &parsed);
            entries.push(UrlEntry {
                url_path: archive::url_path(&parsed),
                file_type: item.file_type,
                url: item.url,
                rel_path,
                rel_path_alt,
                token: item.token,
            });
        }
        let c = conf.to_owned();
        let new = self
            .ledger
            .call(move |l| l.store_urls(&c, &entries, Millis::now()))
            .await?;
        tracing::info!(listed, new, "listed the meeting's recording files");
        Ok(Some(new))
    }

    /// Refreshes a meeting's tokens unless someone else did since the
    /// caller saw `seen_generation` (single flight for concurrent workers).
    pub(crate) async fn refresh_if_stale(
        &self,
        conf: &str,
        seen_generation: i64,
    ) -> Result<(), EngineError> {
        let lock = self.meeting_lock(conf);
        let _guard = lock.lock().await;
        let c = conf.to_owned();
        let current = self.ledger.call(move |l| l.url_generation(&c)).await?;
        if current == seen_generation {
            self.refresh_urls(conf).await?;
        }
        Ok(())
    }
}

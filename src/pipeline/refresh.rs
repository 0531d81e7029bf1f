//! Re-listing a meeting's download URLs, which issues fresh single-use
//! tokens for all its files. A poll does it for every meeting; a worker
//! does it when its file's token is missing, too old or refused. Workers
//! that need fresh tokens for one meeting at once share one call: the
//! meeting's URL generation tells a waiter that someone else already
//! re-listed while it waited for the meeting's lock.

use std::collections::HashMap;

use crate::archive::MeetingFile;
use crate::clock::Millis;
use crate::cloud::file_name_of;
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
        let (layout, folder, facts) = self.meeting_folder(conf).await?;
        let mut entries = Vec::with_capacity(listed);
        let mut names: HashMap<(String, String), usize> = HashMap::new();
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
            let name = item.name.unwrap_or_else(|| file_name_of(&parsed));
            let file_key = identity_key(&mut names, &item.file_type, &name);
            let (rel_path, rel_path_alt) = layout.file_paths(
                &folder,
                &MeetingFile {
                    conf_uuid: conf,
                    facts: &facts,
                    file_type: &item.file_type,
                    raw_name: &name,
                    file_key: &file_key,
                },
            );
            entries.push(UrlEntry {
                url_path: parsed.path().to_owned(),
                file_key,
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

/// A file's identity within its meeting: its name, and for the 2nd, 3rd,
/// ... file of one type with that name in this listing, `#2`, `#3`, ...
/// (the listing's order breaks the tie). Equal names are logged: the rule
/// holds only while the cloud lists them in a stable order.
pub(super) fn identity_key(
    seen: &mut HashMap<(String, String), usize>,
    file_type: &str,
    name: &str,
) -> String {
    let name = name.to_owned();
    let count = seen
        .entry((file_type.to_owned(), name.clone()))
        .or_insert(0);
    *count += 1;
    if *count == 1 {
        name
    } else {
        tracing::warn!(
            %file_type,
            %name,
            nth = *count,
            "two listed files share a type and a name; told apart by their order in the listing"
        );
        format!("{name}#{count}")
    }
}

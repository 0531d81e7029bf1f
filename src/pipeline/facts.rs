//! Meeting facts and folders. Discovered meetings bring their facts from
//! the recording list; a configured meeting is looked up there (a bounded
//! window before now, newest week first) when its first files are listed,
//! and again at most every [`LOOKUP_AGAIN`] while it has none. The
//! meeting's folder is then fixed from the layout in force, with whatever
//! is known: a meeting the list does not show still archives.

use std::time::Duration;

use chrono::{Datelike, NaiveDateTime};

use super::{Engine, EngineError};
use crate::archive::{DEFAULT_LAYOUT, FALLBACK_DIR, Layout, recorded, split_recorded};
use crate::clock::Millis;
use crate::cloud::Recording;
use crate::ledger::{MeetingFacts, MeetingPlace};
use crate::telemetry::error_chain;

/// How far back a configured meeting is looked for in the recording list.
pub const LOOKUP_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);
/// The window is walked in slices of this length, newest first.
const LOOKUP_SLICE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A meeting not found is looked up again no sooner than this.
pub const LOOKUP_AGAIN: Duration = Duration::from_secs(6 * 3600);

/// The facts a recording-list entry tells.
pub fn recording_facts(rec: &Recording) -> MeetingFacts {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    MeetingFacts {
        subject: rec.subject.clone().filter(|s| !s.trim().is_empty()),
        conf_id: rec.conf_id.as_ref().and_then(text),
        start_time: rec.start_time.as_deref().and_then(parse_start_time),
        duration_s: rec
            .rcd_time
            .as_ref()
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
            .filter(|d| *d >= 0),
        scheduler: rec.scheduler.clone().filter(|s| !s.trim().is_empty()),
    }
}

/// `2019-12-19 02:07` (or with seconds) as UTC, which the list seems to use.
fn parse_start_time(text: &str) -> Option<Millis> {
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
        // Four-digit years only: RFC 3339 (the manifest's times) has no other.
        .filter(|t| (1..=9999).contains(&t.year()))
        .map(|t| Millis::from(t.and_utc()))
}

impl Engine {
    /// The layout for meetings whose folder is not fixed yet: the one the
    /// ledger records, or `download.layout` when set (a changed template is
    /// recorded and applies to new meetings only).
    pub(crate) async fn layout(&self) -> Result<&Layout, EngineError> {
        self.layout
            .get_or_try_init(|| async {
                let wanted = self.settings.layout.as_ref().map(|l| l.template().to_owned());
                let zone = self.settings.zone;
                // The template wanted (else the one in force) with the
                // zone of the config: a changed zone, like a changed
                // template, is recorded and applies to new meetings.
                let (template, changed) = self
                    .ledger
                    .call(move |l| {
                        let in_force = l.layouts()?.pop().map(|r| split_recorded(&r.template).0.to_owned());
                        let template = wanted.or(in_force).unwrap_or_else(|| DEFAULT_LAYOUT.to_owned());
                        l.settle_layout(Some(&recorded(&template, zone)), DEFAULT_LAYOUT, Millis::now())
                    })
                    .await?;
                if changed {
                    let (layout, zone) = split_recorded(&template);
                    tracing::info!(%layout, zone = zone.unwrap_or("UTC"), "download.layout or download.timezone changed: new meetings use it, archived files stay where they are");
                }
                // Only a hand-edited ledger holds a bad template.
                Layout::from_recorded(&template).map_err(|source| EngineError::Layout { template, source })
            })
            .await
    }

    /// A meeting's folder and the layout its files follow, fixing both now
    /// if its files are listed for the first time (after looking its facts
    /// up if it has none).
    pub(crate) async fn meeting_folder(
        &self,
        conf: &str,
    ) -> Result<(Layout, String, MeetingFacts), EngineError> {
        let mut place = self.place_of(conf).await?;
        if place.folder.is_none() && !place.facts.found() && place.facts_checked_at.is_none() {
            self.look_up(conf).await;
            place = self.place_of(conf).await?;
        }
        if let (Some(folder), Some(template)) = (&place.folder, &place.layout)
            && let Ok(layout) = Layout::from_recorded(template)
        {
            return Ok((layout, folder.clone(), place.facts));
        }
        let layout = self.layout().await?.clone();
        let mut candidates = layout.folder_candidates(conf, &place.facts);
        // `_meetings/<uuid>` is free unless a hostile UUID sanitises like
        // another or a meeting's folder is `_meetings` itself; this one
        // cannot be taken: no folder starts with a fresh random component.
        let last = candidates.last().cloned().unwrap_or_default();
        let name = last.rsplit('/').next().unwrap_or_default();
        candidates.push(format!(
            "{FALLBACK_DIR}-{}/{name}",
            uuid::Uuid::new_v4().simple()
        ));
        let (c, template) = (conf.to_owned(), layout.recorded());
        let fixed = self
            .ledger
            .call(move |l| l.fix_folder(&c, &template, &candidates))
            .await?;
        let Some((folder, template)) = fixed else {
            return Err(EngineError::NoFolder(conf.to_owned()));
        };
        let layout = match Layout::from_recorded(&template) {
            Ok(recorded) => recorded,
            // Only a hand-edited ledger, or one from a build whose zone
            // database knew a zone this one does not, gets here.
            Err(e) => {
                tracing::warn!(error = %e, "the meeting's recorded layout cannot be read; its new files follow the layout in force");
                layout
            }
        };
        tracing::info!(%folder, "the meeting's folder in the archive");
        Ok((layout, folder, place.facts))
    }

    /// Looks a configured meeting up again if it still has no facts and
    /// the last lookup is older than [`LOOKUP_AGAIN`]; true if found now.
    pub(crate) async fn look_up_if_due(&self, conf: &str) -> Result<bool, EngineError> {
        let place = self.place_of(conf).await?;
        let due = place
            .facts_checked_at
            .is_none_or(|at| Millis::now().duration_since(at) >= LOOKUP_AGAIN);
        Ok(!place.facts.found() && place.folder.is_some() && due && self.look_up(conf).await)
    }

    async fn place_of(&self, conf: &str) -> Result<MeetingPlace, EngineError> {
        let c = conf.to_owned();
        let place = self.ledger.call(move |l| l.meeting_place(&c)).await?;
        Ok(place.unwrap_or_default())
    }

    /// Looks for a meeting in the recording list and records what it
    /// found and when. A failed lookup is logged, not fatal: the meeting
    /// archives with what is known. True if found.
    async fn look_up(&self, conf: &str) -> bool {
        let found = match self.search_recordings(conf).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "could not look the meeting up in the recording list");
                None
            }
        };
        if found.is_none() {
            tracing::info!(
                "the recording list does not show this meeting; archived with what is known"
            );
        }
        let (c, was_found) = (conf.to_owned(), found.is_some());
        let recorded = self
            .ledger
            .call(move |l| l.record_lookup(&c, found.as_ref(), Millis::now()))
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %error_chain(&e), "could not record the meeting's facts");
            return false;
        }
        was_found
    }

    /// Walks the lookup window newest slice first until `conf` turns up.
    async fn search_recordings(&self, conf: &str) -> Result<Option<MeetingFacts>, EngineError> {
        let now = Millis::now();
        let oldest = now.saturating_sub(LOOKUP_WINDOW);
        let mut to = now;
        while to > oldest {
            let from = to.saturating_sub(LOOKUP_SLICE).max(oldest);
            let listed = self.cloud.recordings(from, to).await?;
            if let Some(rec) = listed.iter().find(|r| r.conf_uuid == conf) {
                return Ok(Some(recording_facts(rec)));
            }
            to = from.saturating_sub(Duration::from_millis(1));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_list_entries_give_their_facts() {
        let rec: Recording = serde_json::from_value(serde_json::json!({
            "confUUID": "u", "confID": 912049654, "subject": "Weekly sync",
            "startTime": "2019-12-19 02:07", "rcdTime": 3600, "scheduserName": "Ann"
        }))
        .expect("record");
        let facts = recording_facts(&rec);
        assert_eq!(facts.conf_id.as_deref(), Some("912049654"));
        assert_eq!(
            facts.start_time,
            Some(Millis::from_unix_ms(1_576_721_220_000))
        );
        assert_eq!(facts.duration_s, Some(3600));
        assert_eq!(facts.scheduler.as_deref(), Some("Ann"));
        let bare: Recording =
            serde_json::from_value(serde_json::json!({"confUUID": "u", "startTime": "soon"}))
                .expect("record");
        assert_eq!(recording_facts(&bare), MeetingFacts::default());
        let odd: Recording = serde_json::from_value(serde_json::json!({
            "confUUID": "u", "startTime": "12345-01-01 00:00", "rcdTime": -3
        }))
        .expect("record");
        assert_eq!(recording_facts(&odd), MeetingFacts::default());
        assert_eq!(
            parse_start_time("2019-12-19 02:07:30"),
            Some(Millis::from_unix_ms(1_576_721_250_000))
        );
    }
}

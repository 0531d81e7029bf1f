//! Discovery (`poll.discover_days > 0`): every recording the recording list
//! shows since the last successful discovery (and at least the last N
//! days) is recorded in the ledger at once, transcoding or not. Polls then
//! take the discovered meetings from the ledger, not from the window, so a
//! recording still transcoding when the window moves past it, or one
//! found before an outage, is still archived. A discovered meeting that
//! lists no file for `poll.give_up_after` is given up (shown by `status`).

use std::time::Duration;

use super::poll::{PollError, PollPlan, PollReport};
use super::{Engine, EngineError};
use crate::clock::Millis;
use crate::ledger::Discovered;
use crate::telemetry::error_chain;

/// Discovery walks its window in slices of this length.
const DISCOVERY_SLICE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A new discovery starts this long before the last one ended: a recording
/// listed late (transcoding finished after the last look) is not missed.
const WATERMARK_OVERLAP: Duration = Duration::from_secs(3600);

impl Engine {
    /// Discovers, then returns the discovered meetings to poll. Failures
    /// go into `report`; the poll goes on with what the ledger knows.
    pub(super) async fn discovered_targets(
        &self,
        plan: &PollPlan,
        report: &mut PollReport,
    ) -> Vec<String> {
        if plan.discover_days == 0 {
            return Vec::new();
        }
        if let Err(e) = self.discover(plan.discover_days).await {
            let error = PollError::Discovery(e);
            tracing::error!(error = %error_chain(&error), "polling only the configured and known meetings");
            report.errors.push(error);
        }
        let give_up_before = Millis::now().saturating_sub(plan.give_up_after);
        let listed = self
            .ledger
            .call(move |l| l.discovered_to_poll(give_up_before, Millis::now()))
            .await;
        match listed {
            Ok((meetings, given_up)) => {
                if given_up > 0 {
                    tracing::warn!(
                        given_up,
                        "stopped polling discovered meetings that listed no file for poll.give_up_after"
                    );
                }
                meetings
            }
            Err(e) => {
                let error = PollError::Discovered(e);
                tracing::error!(error = %error_chain(&error), "polling only the configured meetings");
                report.errors.push(error);
                Vec::new()
            }
        }
    }

    /// Lists the recordings since the watermark (at least `days` back) and
    /// records them; moves the watermark on success. Returns how many.
    async fn discover(&self, days: u32) -> Result<usize, EngineError> {
        let end = Millis::now();
        let window = end.saturating_sub(Duration::from_secs(u64::from(days) * 24 * 3600));
        let mark = self.ledger.call(|l| l.discovery_watermark()).await?;
        let start = match mark.map(|m| m.saturating_sub(WATERMARK_OVERLAP)) {
            Some(since) if since < window => {
                tracing::info!(since = %since.to_utc(), "discovering everything since the last successful discovery");
                since
            }
            _ => window,
        };
        let mut found: Vec<Discovered> = Vec::new();
        let mut from = start;
        while from < end {
            let to = (from + DISCOVERY_SLICE).min(end);
            for rec in self.cloud.recordings(from, to).await? {
                if found.iter().any(|d| d.conf_uuid == rec.conf_uuid) {
                    continue;
                }
                if !rec.is_decode_finish {
                    tracing::info!(meeting = %rec.conf_uuid, "recording still transcoding; polled until ready");
                }
                found.push(Discovered {
                    facts: super::facts::recording_facts(&rec),
                    conf_uuid: rec.conf_uuid,
                    transcoding: !rec.is_decode_finish,
                });
            }
            from = to + Duration::from_millis(1);
        }
        let count = found.len();
        self.ledger
            .call(move |l| {
                l.record_discovered(&found, Millis::now())?;
                l.set_discovery_watermark(end)
            })
            .await?;
        tracing::info!(found = count, days, "discovery done");
        Ok(count)
    }
}

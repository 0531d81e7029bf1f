//! The archive's root explains itself to someone who never saw this tool:
//! `README.txt` (the layout, the manifest, how to check files with
//! `sha256sum -c`, which tool and version wrote it) and
//! `meeting.schema.json` (the manifest's JSON Schema). Both are written at
//! start-up through the archive's atomic metadata writes, and only when
//! their content changed (a new layout, a new version).

use std::fmt::Write as _;

use super::manifest::{MANIFEST_NAME, SUMS_NAME, TOOL, VERSION};
use super::{Engine, EngineError};
use crate::archive::{LEGACY_LAYOUT, split_recorded};
use crate::ledger::LayoutRecord;

pub use crate::archive::{README_NAME, SCHEMA_NAME};
/// The schema shipped in `docs/`.
const SCHEMA: &str = include_str!("../../docs/meeting.schema.json");

/// The text of `README.txt` for an archive that used `layouts`.
pub fn readme_text(layouts: &[LayoutRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Recordings of Huawei Cloud Meeting meetings, archived by {TOOL} {VERSION}.\n\
         Nothing here needs that tool: every file is plain, and this note says\n\
         how the folders are named and how to check the files.\n\n\
         FOLDERS\n\
         Each meeting has a folder; its files lie below it as the layout says:"
    );
    for (i, layout) in layouts.iter().enumerate() {
        let since = layout.since.to_utc().format("%Y-%m-%d");
        let when = match layouts.get(i + 1) {
            Some(next) => format!(
                "meetings first archived {since} to {}",
                next.since.to_utc().format("%Y-%m-%d")
            ),
            None if i == 0 => "every meeting".to_owned(),
            None => format!("meetings first archived since {since}"),
        };
        let (template, zone) = split_recorded(&layout.template);
        let when = match zone {
            Some(zone) => format!("{when}; times in {zone}"),
            None => when,
        };
        let _ = writeln!(out, "  {template:<52} ({when})");
    }
    let templates = || layouts.iter().map(|l| split_recorded(&l.template));
    let legacy = templates().any(|(template, _)| template == LEGACY_LAYOUT);
    let zone = if templates().any(|(_, zone)| zone.is_some()) {
        "in UTC, or in the zone named beside\n  the layout (download.timezone; meeting.json has the exact time in UTC)"
    } else {
        "in UTC"
    };
    let _ = writeln!(
        out,
        "  {{year}}, {{date}} ({{year}}-MM-DD), {{time}} (HH-MM): when the recording started, {zone}.\n  \
         {{subject}}: the meeting's title, with characters no file system takes replaced.\n  \
         {{conf_id}}: the conference ID people dial; {{conf_uuid}}: the cloud's unique ID.\n  \
         {{type}}: the kind of recording (below); {{name}}: the file's name in the cloud.\n  \
         A meeting the cloud told nothing about is filed as \"undated\" / \"Untitled\".\n  \
         Two meetings that would share a folder (even only in letter case) get\n  \
         the conference ID (or the conference UUID) added to the second one's\n  \
         name; one that still finds no free folder lies in _meetings/<UUID>.\n  \
         A name the archive uses itself (README.txt, meeting.json, ...) gets a\n  \
         leading _; a Windows device name (CON, NUL, COM1, ...) a trailing _."
    );
    if legacy {
        let _ = writeln!(
            out,
            "  Folders named by a bare conference UUID were written before layouts\n  \
             existed; their meeting.json says the meeting's subject and time."
        );
    }
    let _ = writeln!(
        out,
        "\nIN EACH MEETING FOLDER\n  \
         {MANIFEST_NAME}  the manifest: subject, conference ID and UUID, start time\n               \
         (ISO 8601, UTC), duration, scheduler, and for every file its type,\n               \
         part, size, SHA-256, when it was archived and where it came from.\n               \
         Its format: {SCHEMA_NAME} beside this note (see schema_version).\n  \
         {SUMS_NAME}   the SHA-256 of every archived file of the meeting (a file\n               \
         the manifest marks checksum_missing has none on record).\n  \
         Hd/          HD video: the meeting at its own resolution.\n  \
         Sd/          SD video: video and shared screen composited in one picture.\n  \
         Aux_/        auxiliary stream: the shared screen (slides, desktop) alone\n               \
         (Aux/ in folders of the legacy layout; Windows reserves the name).\n  \
         0_0.mp4, 0_1.mp4, ...  the parts of one recording, in order: the cloud\n               \
         splits recordings longer than 3 hours (older ones every 1 GB);\n               \
         0_0 is part 1, 0_1 part 2.\n\n\
         CHECKING THE FILES WITHOUT THE TOOL\n  \
         cd \"<meeting folder>\" && sha256sum -c {SUMS_NAME}\n  \
         (macOS: shasum -a 256 -c {SUMS_NAME}). Every line must end in OK.\n\n\
         .partial/ holds downloads in progress and is not part of the archive."
    );
    out
}

impl Engine {
    /// Writes `README.txt` and `meeting.schema.json` at the archive's root
    /// if missing or out of date (settling the layout in force first).
    pub async fn describe_archive(&self) -> Result<(), EngineError> {
        self.layout().await?;
        let layouts = self.ledger.call(|l| l.layouts()).await?;
        let wanted = [
            (README_NAME, readme_text(&layouts)),
            (SCHEMA_NAME, SCHEMA.to_owned()),
        ];
        for (name, text) in wanted {
            // Unreadable counts as outdated: the write then says why.
            let current = self.archive.read_metadata(name).await.ok().flatten();
            if current.is_some_and(|c| c == text.as_bytes()) {
                continue;
            }
            self.write_meta(name, text.into_bytes()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{DEFAULT_LAYOUT, Zone, recorded};
    use crate::clock::Millis;

    #[test]
    fn the_readme_names_every_layout_the_archive_used() {
        let layouts = [
            LayoutRecord {
                template: LEGACY_LAYOUT.to_owned(),
                since: Millis::from_unix_ms(0),
            },
            LayoutRecord {
                template: DEFAULT_LAYOUT.to_owned(),
                since: Millis::from_unix_ms(1_576_721_220_000),
            },
        ];
        let text = readme_text(&layouts);
        assert!(
            text.contains("meetings first archived 1970-01-01 to 2019-12-19"),
            "{text}"
        );
        assert!(
            text.contains("meetings first archived since 2019-12-19"),
            "{text}"
        );
        assert!(text.contains("sha256sum -c SHA256SUMS"), "{text}");
        assert!(text.contains(VERSION), "{text}");
        assert!(text.contains("started, in UTC."), "{text}");
        let single = readme_text(&layouts[1..]);
        assert!(single.contains("(every meeting)"), "{single}");
        assert!(!single.contains("bare conference UUID"), "{single}");
        let zoned = [
            layouts[1].clone(),
            LayoutRecord {
                template: recorded(DEFAULT_LAYOUT, Zone::parse("Asia/Shanghai").expect("zone")),
                since: Millis::from_unix_ms(1_795_165_500_000),
            },
        ];
        let text = readme_text(&zoned);
        assert!(
            text.contains("(meetings first archived since 2026-11-20; times in Asia/Shanghai)"),
            "{text}"
        );
        assert!(
            text.contains("started, in UTC, or in the zone named beside"),
            "{text}"
        );
        assert!(
            !text.contains("\nAsia/Shanghai"),
            "the zone is not printed as a template line: {text}"
        );
    }
}

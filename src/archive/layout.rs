//! `download.layout`: the template that names a meeting's folder and its
//! files, e.g. `{year}/{date} {subject} ({conf_id})/{type}/{name}`. The
//! leading components that name no file are the meeting's folder (fixed
//! once per meeting, made unique by the conference ID or UUID); the rest
//! name a file inside it. Every rendered component is sanitised, so
//! neither a subject nor a URL can climb out of the archive or hide a file.

use chrono::NaiveDateTime;

use super::Zone;
use super::paths::{
    MAX_COMPONENT, alternative_name, clean_component, portable_component, sanitize_component,
    unreserved,
};
use crate::ledger::MeetingFacts;

/// The layout of archives written before templates existed (kept by them).
pub const LEGACY_LAYOUT: &str = "{conf_uuid}/{type}/{name}";
/// The layout of a new archive when `download.layout` is not set.
pub const DEFAULT_LAYOUT: &str = "{year}/{date} {subject} ({conf_id})/{type}/{name}";
/// The manifest's name inside a meeting's folder.
pub const MANIFEST_NAME: &str = "meeting.json";
/// The checksum list's name inside a meeting's folder.
pub const SUMS_NAME: &str = "SHA256SUMS";
/// The archive's explanation, at its root.
pub const README_NAME: &str = "README.txt";
/// The manifest's JSON Schema, at the archive's root.
pub const SCHEMA_NAME: &str = "meeting.schema.json";
/// What the archive writes at its root: no meeting folder may take these
/// names (in any case); one that would is prefixed with `_`.
const ROOT_FILES: [&str; 2] = [README_NAME, SCHEMA_NAME];
/// What the archive writes in each meeting's folder: no file or folder of
/// the meeting may take these names (in any case).
const MEETING_FILES: [&str; 2] = [MANIFEST_NAME, SUMS_NAME];
/// Where a meeting goes when every folder its template offers is taken or
/// lies inside or around another meeting's: `_meetings/<conf_uuid>`.
pub const FALLBACK_DIR: &str = "_meetings";
/// Longest subject kept in a folder name, in bytes.
const MAX_SUBJECT: usize = 80;
/// What date placeholders say when the recording's start is unknown.
const UNDATED: &str = "undated";
/// What `{subject}` says when the subject is unknown.
const UNTITLED: &str = "Untitled";

/// A placeholder of the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Date,
    Time,
    Subject,
    ConfId,
    ConfUuid,
    Type,
    Part,
    Name,
    Ext,
}

const FIELDS: [(&str, Field); 11] = [
    ("year", Field::Year),
    ("month", Field::Month),
    ("date", Field::Date),
    ("time", Field::Time),
    ("subject", Field::Subject),
    ("conf_id", Field::ConfId),
    ("conf_uuid", Field::ConfUuid),
    ("type", Field::Type),
    ("part", Field::Part),
    ("name", Field::Name),
    ("ext", Field::Ext),
];

impl Field {
    fn per_file(self) -> bool {
        matches!(self, Field::Type | Field::Part | Field::Name | Field::Ext)
    }

    fn names_a_meeting(self) -> bool {
        matches!(
            self,
            Field::Date | Field::Time | Field::Subject | Field::ConfId | Field::ConfUuid
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

type Component = Vec<Piece>;

/// Why a `download.layout` template is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// `{something}` the template language does not know.
    #[error(
        "unknown placeholder {{{0}}}; known: {{year}} {{month}} {{date}} {{time}} {{subject}} \
         {{conf_id}} {{conf_uuid}} {{type}} {{part}} {{name}} {{ext}}"
    )]
    Unknown(String),
    /// A brace that opens or closes no placeholder.
    #[error("a '{{' or '}}' that is not part of a placeholder")]
    Brace,
    /// A leading, trailing or doubled `/`.
    #[error("an empty path component (a leading, trailing or doubled '/')")]
    Empty,
    /// A literal that would hide a file or climb out, or a character
    /// that has no place in a path.
    #[error("the component {0:?} starts with '.' or holds a backslash or control character")]
    Unsafe(String),
    /// No folder per meeting before the file part.
    #[error(
        "the template must start with the meeting's folder: components before any \
         {{type}}, {{part}}, {{name}} or {{ext}} that name the meeting with {{date}}, {{time}}, \
         {{subject}}, {{conf_id}} or {{conf_uuid}}"
    )]
    NoMeetingFolder,
    /// The ledger names a time zone this build does not know.
    #[error("unknown time zone \"{0}\" recorded with the layout")]
    Zone(String),
    /// The file's name would lose its extension.
    #[error("the last component must hold {{name}} or {{ext}}, so that files keep their extension")]
    NoFileName,
}

/// What the ledger records for `template` rendered in `zone`: see
/// [`Layout::recorded`].
pub fn recorded(template: &str, zone: Zone) -> String {
    match zone {
        Zone::Utc => template.to_owned(),
        zone => format!("{template}\n{zone}"),
    }
}

/// A recorded layout's template and zone name (`None`: UTC).
pub fn split_recorded(text: &str) -> (&str, Option<&str>) {
    match text.split_once('\n') {
        Some((template, zone)) => (template, Some(zone)),
        None => (text, None),
    }
}

/// A parsed, valid layout template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    template: String,
    /// Components made portable (every layout but the legacy one, whose
    /// archives keep their paths exactly).
    portable: bool,
    meeting: Vec<Component>,
    file: Vec<Component>,
    /// The zone of the dates and times it renders.
    zone: Zone,
}

impl Layout {
    /// Parses and checks a template.
    pub fn parse(template: &str) -> Result<Layout, LayoutError> {
        let mut components = Vec::new();
        for raw in template.split('/') {
            if raw.is_empty() {
                return Err(LayoutError::Empty);
            }
            if raw.starts_with('.') || raw.chars().any(|c| c == '\\' || c.is_control()) {
                return Err(LayoutError::Unsafe(raw.to_owned()));
            }
            components.push(parse_component(raw)?);
        }
        let has = |c: &Component, test: fn(Field) -> bool| {
            c.iter().any(|p| matches!(p, Piece::Field(f) if test(*f)))
        };
        let split = components
            .iter()
            .position(|c| has(c, Field::per_file))
            .unwrap_or(components.len());
        let file = components.split_off(split);
        let last_names_file = file
            .last()
            .is_some_and(|c| has(c, |f| matches!(f, Field::Name | Field::Ext)));
        if !last_names_file {
            return Err(LayoutError::NoFileName);
        }
        if !components.iter().any(|c| has(c, Field::names_a_meeting)) {
            return Err(LayoutError::NoMeetingFolder);
        }
        Ok(Layout {
            template: template.to_owned(),
            portable: template != LEGACY_LAYOUT,
            meeting: components,
            file,
            zone: Zone::Utc,
        })
    }

    /// The same layout, rendering dates and times in `zone`.
    pub fn in_zone(self, zone: Zone) -> Layout {
        Layout { zone, ..self }
    }

    /// What the ledger records for it (per meeting, and in the archive's
    /// history of layouts): the template, then a line naming the zone
    /// unless it is UTC. A template holds no control character, so the
    /// line cannot be part of it; a ledger written before zones existed
    /// holds bare templates, which are UTC.
    pub fn recorded(&self) -> String {
        recorded(&self.template, self.zone)
    }

    /// Reads what [`Layout::recorded`] wrote.
    pub fn from_recorded(text: &str) -> Result<Layout, LayoutError> {
        let (template, zone) = split_recorded(text);
        let zone = match zone {
            None => Zone::Utc,
            Some(name) => Zone::parse(name).map_err(|e| LayoutError::Zone(e.0))?,
        };
        Ok(Layout::parse(template)?.in_zone(zone))
    }

    /// The template as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// A rendered component made safe: sanitised, and portable for all
    /// but the legacy layout.
    fn clean(&self, raw: &str) -> String {
        if self.portable {
            portable_component(raw)
        } else {
            clean_component(raw)
        }
    }

    /// The folders a meeting may get, best first: the template's, then
    /// made unique by the conference ID, then by the conference UUID (which
    /// is unique), then `_meetings/<conf_uuid>` (for when another meeting's
    /// folder lies around all of them). The ledger takes the first no
    /// other meeting holds.
    pub fn folder_candidates(&self, conf_uuid: &str, facts: &MeetingFacts) -> Vec<String> {
        let values = Values::of_meeting(conf_uuid, facts, self.zone);
        let mut parts: Vec<String> = self
            .meeting
            .iter()
            .map(|c| self.clean(&values.render(c)))
            .collect();
        let mut out = vec![folder_path(parts.clone())];
        let last = parts.pop().unwrap_or_default();
        let mut suffixes = Vec::new();
        if let Some(id) = facts.conf_id.as_deref().filter(|id| !last.contains(*id)) {
            suffixes.push(id.to_owned());
        }
        let uuid = self.clean(&sanitize_component(conf_uuid));
        suffixes.push(uuid.clone());
        for suffix in suffixes {
            let suffix = format!(" ({suffix})");
            let mut cut = MAX_COMPONENT.saturating_sub(suffix.len()).min(last.len());
            while !last.is_char_boundary(cut) {
                cut -= 1;
            }
            let unique = self.clean(&format!("{}{suffix}", &last[..cut]));
            out.push(folder_path(parts.iter().cloned().chain([unique]).collect()));
        }
        out.push(format!("{FALLBACK_DIR}/{uuid}"));
        out.dedup();
        out
    }

    /// Where a file of a meeting lies under the archive, inside the
    /// meeting's fixed `folder`, and an alternative (with a short hash of
    /// the file's identity) for when two files would share that path. No
    /// file or folder directly in the meeting's folder takes the name of
    /// its manifest or checksum list.
    pub fn file_paths(&self, folder: &str, meeting: &MeetingFile<'_>) -> (String, String) {
        let mut values = Values::of_meeting(meeting.conf_uuid, meeting.facts, self.zone);
        let name = sanitize_component(meeting.raw_name);
        values.file_type = sanitize_component(meeting.file_type);
        values.ext = match name.rfind('.') {
            Some(dot) if dot > 0 && name.len() - dot <= 16 => name[dot + 1..].to_owned(),
            _ => String::new(),
        };
        values.part = part_number(&name).unwrap_or(1).to_string();
        values.name = name;
        let mut parts: Vec<String> = vec![folder.to_owned()];
        parts.extend(self.file.iter().map(|c| self.clean(&values.render(c))));
        if let Some(first) = parts.get_mut(1) {
            *first = unreserved(std::mem::take(first), &MEETING_FILES);
        }
        let primary = parts.join("/");
        let last = parts.pop().unwrap_or_default();
        let identity = format!(
            "{}/{}/{}",
            meeting.conf_uuid, meeting.file_type, meeting.file_key
        );
        let alternative = alternative_name(&last, &identity);
        parts.push(if self.portable {
            portable_component(&alternative)
        } else {
            alternative
        });
        (primary, parts.join("/"))
    }
}

/// A meeting's folder from its components; the first never takes the name
/// of a file the archive writes at its root.
fn folder_path(mut parts: Vec<String>) -> String {
    if let Some(first) = parts.first_mut() {
        *first = unreserved(std::mem::take(first), &ROOT_FILES);
    }
    parts.join("/")
}

/// What the layout needs to know of one file.
pub struct MeetingFile<'a> {
    /// The meeting's conference UUID.
    pub conf_uuid: &'a str,
    /// What is known about the meeting.
    pub facts: &'a MeetingFacts,
    /// `Hd`, `Sd`, `Aux`, ...
    pub file_type: &'a str,
    /// The name the cloud gave the file (unsanitised).
    pub raw_name: &'a str,
    /// The file's identity key within its meeting and type.
    pub file_key: &'a str,
}

fn parse_component(raw: &str) -> Result<Component, LayoutError> {
    let mut pieces = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Text(rest.to_owned()));
                rest = "";
            }
            Some(at) => {
                if at > 0 {
                    pieces.push(Piece::Text(rest[..at].to_owned()));
                }
                let tail = &rest[at..];
                let close = tail.find('}').filter(|_| tail.starts_with('{'));
                let Some(close) = close else {
                    return Err(LayoutError::Brace);
                };
                let name = &tail[1..close];
                if name.contains('{') {
                    return Err(LayoutError::Brace);
                }
                let field = FIELDS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| LayoutError::Unknown(name.to_owned()))?;
                pieces.push(Piece::Field(field));
                rest = &tail[close + 1..];
            }
        }
    }
    Ok(pieces)
}

/// The placeholders' values for one meeting (and file).
#[derive(Default)]
struct Values {
    /// When the recording started, on the wall clock of the layout's zone.
    start: Option<NaiveDateTime>,
    subject: String,
    conf_id: String,
    conf_uuid: String,
    file_type: String,
    part: String,
    name: String,
    ext: String,
}

impl Values {
    fn of_meeting(conf_uuid: &str, facts: &MeetingFacts, zone: Zone) -> Values {
        let conf_uuid = sanitize_component(conf_uuid);
        Values {
            start: facts.start_time.map(|t| zone.local(t.to_utc())),
            subject: facts
                .subject
                .as_deref()
                .map(readable_subject)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| UNTITLED.to_owned()),
            conf_id: facts.conf_id.clone().unwrap_or_else(|| conf_uuid.clone()),
            conf_uuid,
            ..Values::default()
        }
    }

    fn render(&self, component: &Component) -> String {
        let date = |format: &str| {
            self.start
                .map_or_else(|| UNDATED.to_owned(), |t| t.format(format).to_string())
        };
        let mut out = String::new();
        for piece in component {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(field) => out.push_str(&match field {
                    Field::Year => date("%Y"),
                    Field::Month => date("%m"),
                    Field::Date => date("%Y-%m-%d"),
                    Field::Time => date("%H-%M"),
                    Field::Subject => self.subject.clone(),
                    Field::ConfId => self.conf_id.clone(),
                    Field::ConfUuid => self.conf_uuid.clone(),
                    Field::Type => self.file_type.clone(),
                    Field::Part => self.part.clone(),
                    Field::Name => self.name.clone(),
                    Field::Ext => self.ext.clone(),
                }),
            }
        }
        out
    }
}

/// A subject made fit for a folder name on any file system, still
/// readable: Unicode kept; separators and `:` become `-` (`a: b` becomes
/// `a - b`), quotes `'`; `* ? < >` and control characters go; blanks
/// collapse; at most [`MAX_SUBJECT`] bytes, cut on a character boundary.
pub fn readable_subject(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut chars = subject.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' if chars.peek().is_some_and(|n| n.is_whitespace()) => out.push_str(" -"),
            '/' | '\\' | '|' | ':' => out.push('-'),
            '"' => out.push('\''),
            '*' | '?' | '<' | '>' => {}
            c if c.is_control() || c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    let mut collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.len() > MAX_SUBJECT {
        let mut cut = MAX_SUBJECT;
        while !collapsed.is_char_boundary(cut) {
            cut -= 1;
        }
        collapsed.truncate(cut);
    }
    // Windows drops trailing dots and blanks; a leading dot would hide.
    collapsed
        .trim_end_matches(['.', ' '])
        .trim_start_matches(['.', ' '])
        .to_owned()
}

/// The part number (1 for `0_0`, 2 for `0_1`, ...) of a split recording's
/// file name; `None` for names not of that form.
pub fn part_number(name: &str) -> Option<u32> {
    let stem = name.split('.').next()?;
    let (_, index) = stem.rsplit_once('_')?;
    index.parse::<u32>().ok()?.checked_add(1)
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;

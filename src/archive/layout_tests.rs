use super::*;
use crate::archive::rel_paths;
use crate::clock::Millis;

/// 2026-11-20 09:05 UTC.
const NOV_20: i64 = 1_795_165_500_000;

fn facts(subject: Option<&str>, conf_id: Option<&str>) -> MeetingFacts {
    MeetingFacts {
        subject: subject.map(str::to_owned),
        conf_id: conf_id.map(str::to_owned),
        start_time: Some(Millis::from_unix_ms(NOV_20)),
        duration_s: Some(3600),
        scheduler: None,
    }
}

fn file<'a>(facts: &'a MeetingFacts, file_type: &'a str, name: &'a str) -> MeetingFile<'a> {
    MeetingFile {
        conf_uuid: "51adf610220411eaaae03f22d33cc26b",
        facts,
        file_type,
        raw_name: name,
        file_key: name,
    }
}

#[test]
fn the_default_layout_puts_date_and_title_in_the_folder() {
    let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
    let facts = facts(Some("Weekly sync"), Some("912049654"));
    let folders = layout.folder_candidates("51adf610220411eaaae03f22d33cc26b", &facts);
    assert_eq!(folders[0], "2026/2026-11-20 Weekly sync (912049654)");
    let (path, alt) = layout.file_paths(&folders[0], &file(&facts, "Hd", "0_0.mp4"));
    assert_eq!(path, "2026/2026-11-20 Weekly sync (912049654)/Hd/0_0.mp4");
    assert!(alt.starts_with("2026/2026-11-20 Weekly sync (912049654)/Hd/0_0-"));
    assert!(alt.ends_with(".mp4"));
}

#[test]
fn dates_and_times_render_in_the_layouts_zone() {
    let facts = facts(Some("Weekly sync"), Some("912049654"));
    let layout =
        Layout::parse("{year}/{date} {time} {subject}/{type}/{date}_{name}").expect("layout");
    let utc = layout.folder_candidates("c", &facts);
    assert_eq!(utc[0], "2026/2026-11-20 09-05 Weekly sync");
    let pacific = layout.in_zone(crate::archive::Zone::parse("America/Los_Angeles").expect("zone"));
    let folder = &pacific.folder_candidates("c", &facts)[0];
    assert_eq!(folder, "2026/2026-11-20 01-05 Weekly sync");
    let (path, _) = pacific.file_paths(folder, &file(&facts, "Hd", "0_0.mp4"));
    assert_eq!(
        path,
        "2026/2026-11-20 01-05 Weekly sync/Hd/2026-11-20_0_0.mp4"
    );
    let kiritimati = Layout::parse(DEFAULT_LAYOUT)
        .expect("default")
        .in_zone(crate::archive::Zone::parse("+14:00").expect("zone"));
    assert_eq!(
        kiritimati.folder_candidates("c", &facts)[0],
        "2026/2026-11-20 Weekly sync (912049654)",
        "23:05 the same day"
    );
}

#[test]
fn the_recorded_form_keeps_the_zone_and_bare_templates_are_utc() {
    let shanghai = crate::archive::Zone::parse("Asia/Shanghai").expect("zone");
    let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
    assert_eq!(layout.recorded(), DEFAULT_LAYOUT, "UTC adds nothing");
    let zoned = layout.clone().in_zone(shanghai);
    assert_eq!(zoned.recorded(), format!("{DEFAULT_LAYOUT}\nAsia/Shanghai"));
    assert_eq!(Layout::from_recorded(&zoned.recorded()), Ok(zoned));
    assert_eq!(Layout::from_recorded(DEFAULT_LAYOUT), Ok(layout));
    assert_eq!(
        Layout::from_recorded(&format!("{DEFAULT_LAYOUT}\nMars/Olympus")),
        Err(LayoutError::Zone("Mars/Olympus".into()))
    );
    // A template cannot hold the line break that starts the zone.
    assert!(Layout::parse("{conf_uuid}/{name}\nx").is_err());
}

#[test]
fn a_hostile_subject_gives_a_readable_single_component() {
    let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
    let facts = facts(Some("Q3 review / budget: \"final\"?"), Some("912"));
    let folder = &layout.folder_candidates("c", &facts)[0];
    assert_eq!(folder, "2026/2026-11-20 Q3 review - budget - 'final' (912)");
    for hostile in [
        "../../etc",
        ".hidden",
        "a\u{0}b\nc",
        "/",
        "..",
        "  ",
        "\\\\srv\\x",
    ] {
        let facts = facts_with_subject(hostile);
        let folder = &layout.folder_candidates("c", &facts)[0];
        let parts: Vec<&str> = folder.split('/').collect();
        assert_eq!(parts.len(), 2, "{hostile:?} -> {folder}");
        for part in parts {
            assert!(!part.starts_with('.') && !part.is_empty(), "{folder}");
            assert!(
                !part.chars().any(|c| c.is_control() || c == '\\'),
                "{folder}"
            );
        }
    }
}

fn facts_with_subject(subject: &str) -> MeetingFacts {
    facts(Some(subject), Some("1"))
}

#[test]
fn long_subjects_are_cut_on_a_character_boundary_and_unicode_is_kept() {
    let long = "会议".repeat(100);
    let subject = readable_subject(&long);
    assert!(subject.len() <= MAX_SUBJECT && subject.starts_with("会议"));
    let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
    let facts = facts(Some(&long), Some("912049654"));
    for folder in layout.folder_candidates("51adf610220411eaaae03f22d33cc26b", &facts) {
        if folder.starts_with(FALLBACK_DIR) {
            continue;
        }
        for part in folder.split('/') {
            assert!(part.len() <= MAX_COMPONENT, "{part}");
        }
        assert!(folder.contains("会议"), "{folder}");
    }
    assert_eq!(
        readable_subject("Réunion  d'équipe\t…"),
        "Réunion d'équipe …"
    );
    assert_eq!(
        readable_subject("All-hands: 10:30 | a\\b"),
        "All-hands - 10-30 - a-b"
    );
}

#[test]
fn collisions_are_made_unique_by_conference_id_then_uuid() {
    let layout = Layout::parse("{year}/{date} {subject}/{type}/{name}").expect("layout");
    let facts = facts(Some("Standup"), Some("912"));
    assert_eq!(
        layout.folder_candidates("abc", &facts),
        [
            "2026/2026-11-20 Standup",
            "2026/2026-11-20 Standup (912)",
            "2026/2026-11-20 Standup (abc)",
            "_meetings/abc"
        ]
    );
    // The default names the conference ID already: the UUID is the tie-breaker.
    let default = Layout::parse(DEFAULT_LAYOUT).expect("default");
    assert_eq!(
        default.folder_candidates("abc", &facts),
        [
            "2026/2026-11-20 Standup (912)",
            "2026/2026-11-20 Standup (912) (abc)",
            "_meetings/abc"
        ]
    );
}

#[test]
fn unknown_facts_still_give_a_folder() {
    let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
    let folder = &layout.folder_candidates("abc", &MeetingFacts::default())[0];
    assert_eq!(folder, "undated/undated Untitled (abc)");
}

#[test]
fn every_placeholder_renders() {
    let layout = Layout::parse(
        "{year}-{month}/{date}T{time} {conf_uuid} {conf_id} {subject}/{type}-{part}-{name}.{ext}",
    )
    .expect("layout");
    let facts = facts(Some("S"), Some("9"));
    let folder = &layout.folder_candidates("u", &facts)[0];
    assert_eq!(folder, "2026-11/2026-11-20T09-05 u 9 S");
    let (path, _) = layout.file_paths(folder, &file(&facts, "Aux", "0_1.mp4"));
    assert_eq!(path, "2026-11/2026-11-20T09-05 u 9 S/Aux-2-0_1.mp4.mp4");
}

#[test]
fn the_legacy_layout_renders_exactly_as_before() {
    let layout = Layout::parse(LEGACY_LAYOUT).expect("legacy");
    for (conf, kind, name) in [
        ("51adf610220411eaaae03f22d33cc26b", "Hd", "0_1.mp4"),
        ("../..", "%2E%2E", "..%2F..%2Fetc%2Fpasswd"),
        ("a:b", "Sd", "x%3Ay.mp4"),
    ] {
        let folder = &layout.folder_candidates(conf, &MeetingFacts::default())[0];
        let facts = MeetingFacts::default();
        let got = layout.file_paths(
            folder,
            &MeetingFile {
                conf_uuid: conf,
                facts: &facts,
                file_type: kind,
                raw_name: name,
                file_key: name,
            },
        );
        assert_eq!(
            got,
            rel_paths(conf, kind, name, name),
            "{conf} {kind} {name}"
        );
    }
}

#[test]
fn bad_templates_are_refused_with_the_reason() {
    let cases = [
        ("{year}/{type}/{name}", LayoutError::NoMeetingFolder),
        ("{type}/{name}", LayoutError::NoMeetingFolder),
        ("{conf_uuid}/{type}", LayoutError::NoFileName),
        ("{conf_uuid}/{name}/{type}", LayoutError::NoFileName),
        ("{conf_uuid}/{nme}", LayoutError::Unknown("nme".to_owned())),
        ("{conf_uuid}/{name", LayoutError::Brace),
        ("{conf_uuid}/name}", LayoutError::Brace),
        ("/{conf_uuid}/{name}", LayoutError::Empty),
        ("{conf_uuid}//{name}", LayoutError::Empty),
        (
            "../{conf_uuid}/{name}",
            LayoutError::Unsafe("..".to_owned()),
        ),
        (
            ".x/{conf_uuid}/{name}",
            LayoutError::Unsafe(".x".to_owned()),
        ),
    ];
    for (template, error) in cases {
        assert_eq!(Layout::parse(template), Err(error), "{template}");
    }
    assert!(Layout::parse("{conf_id}/{part}.{ext}").is_ok());
}

#[test]
fn part_numbers_count_from_one() {
    assert_eq!(part_number("0_0.mp4"), Some(1));
    assert_eq!(part_number("0_1.mp4"), Some(2));
    assert_eq!(part_number("video.mp4"), None);
}

/// A file of meeting `conf_uuid` whose identity key is its name.
fn named<'a>(
    conf_uuid: &'a str,
    facts: &'a MeetingFacts,
    file_type: &'a str,
    raw_name: &'a str,
) -> MeetingFile<'a> {
    MeetingFile {
        conf_uuid,
        facts,
        file_type,
        raw_name,
        file_key: raw_name,
    }
}

#[test]
fn no_meeting_folder_or_file_takes_a_name_the_archive_writes() {
    let layout = Layout::parse("{subject} ({conf_id})/{name}").expect("layout");
    let by_subject = Layout::parse("{subject}/{type}/{name}").expect("layout");
    for (subject, want) in [
        ("README.txt", "_README.txt"),
        ("readme.TXT", "_readme.TXT"),
        ("Meeting.Schema.json", "_Meeting.Schema.json"),
        ("README", "README"),
    ] {
        let folders = by_subject.folder_candidates("abc", &facts(Some(subject), None));
        assert_eq!(folders[0], want, "{subject}");
    }
    let facts = facts(Some("Weekly"), Some("912"));
    for (raw, want) in [
        ("meeting.json", "_meeting.json"),
        ("MEETING.JSON", "_MEETING.JSON"),
        ("sha256sums", "_sha256sums"),
        ("SHA256SUMS", "_SHA256SUMS"),
        ("0_0.mp4", "0_0.mp4"),
    ] {
        let file = named("abc", &facts, "Hd", raw);
        let (primary, alternative) = layout.file_paths("Weekly (912)", &file);
        assert_eq!(primary, format!("Weekly (912)/{want}"));
        let alt_name = alternative.rsplit('/').next().expect("name");
        assert!(
            !["meeting.json", "sha256sums"].contains(&alt_name.to_lowercase().as_str()),
            "{alternative}"
        );
    }
    // A type named like one is a folder that would clash just the same.
    let file = named("abc", &facts, "SHA256SUMS", "0_0.mp4");
    let (primary, _) = by_subject.file_paths("Weekly", &file);
    assert_eq!(primary, "Weekly/_SHA256SUMS/0_0.mp4");
}

#[test]
fn new_layouts_give_portable_names_and_the_legacy_one_keeps_its_paths() {
    let layout = Layout::parse("{subject} {conf_id}/{type}/{name}").expect("layout");
    let by_subject = Layout::parse("{subject}/{type}/{name}").expect("layout");
    for (subject, want) in [("aux", "aux_"), ("nul", "nul_"), ("Com1", "Com1_")] {
        let folders = by_subject.folder_candidates("u", &facts(Some(subject), None));
        assert_eq!(folders[0], want, "{subject}");
    }
    let facts = facts(Some("CON"), Some("9*1?2"));
    let folder = &layout.folder_candidates("u:1", &facts)[0];
    assert_eq!(folder, "CON 9_1_2");
    let file = named("u", &facts, "H|d", "a<b>\"c\".mp4.");
    let (primary, alternative) = layout.file_paths("CON 9_1_2", &file);
    assert_eq!(primary, "CON 9_1_2/H_d/a_b__c_.mp4");
    for path in [&primary, &alternative] {
        for part in path.split('/') {
            assert!(
                !part.ends_with(['.', ' ']) && !part.contains(['*', '?', '<', '>', '|', '"', ':']),
                "{path}"
            );
        }
    }
    // The legacy layout renders exactly as before, odd characters and all.
    let legacy = Layout::parse(LEGACY_LAYOUT).expect("legacy");
    let facts = MeetingFacts::default();
    let file = named("CON", &facts, "H|d", "a<b>\"c\".mp4.");
    let (primary, alternative) = legacy.file_paths("CON", &file);
    assert_eq!(
        (primary, alternative),
        rel_paths("CON", "H|d", "a<b>\"c\".mp4.", "a<b>\"c\".mp4.")
    );
    assert_eq!(legacy.folder_candidates("CON", &facts)[0], "CON");
}

#[test]
fn a_folder_around_every_candidate_leaves_the_fallback() {
    // An older `{subject}/...` layout gave a meeting titled "2026" the
    // folder "2026": every default candidate of a 2026 meeting lies in it.
    let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
    let candidates = layout.folder_candidates("abc", &facts(Some("Standup"), Some("912")));
    let (fallback, inside) = candidates.split_last().expect("candidates");
    assert!(
        inside.iter().all(|c| c.starts_with("2026/")),
        "{candidates:?}"
    );
    assert_eq!(fallback, "_meetings/abc");
}

//! File contents and the demo scenario.

use crate::simulator::{Scenario, SimFile, SimMeeting};

#[test]
fn content_is_deterministic_and_starts_like_mp4() {
    let file = SimFile {
        file_type: "Hd".into(),
        path: "/a".into(),
        size: 100_003,
        seed: 7,
    };
    let bytes = file.content();
    assert_eq!(bytes.len(), 100_003);
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(bytes, file.content());
    for (start, end) in [
        (0, 10),
        (3, 45),
        (39, 41),
        (1001, 99_999),
        (100_000, 200_000),
    ] {
        assert_eq!(
            file.content_range(start, end),
            bytes[start..end.min(bytes.len())],
            "{start}..{end}"
        );
    }
    let other = SimFile {
        seed: 8,
        ..file.clone()
    };
    assert_ne!(other.content()[40..], bytes[40..]);
}

#[test]
fn standard_meetings_have_split_files() {
    let m = SimMeeting::standard("abc", "S", 3, &["Hd", "Sd", "Aux"], 10);
    assert_eq!(m.files.len(), 9);
    assert_eq!(m.files[0].path, "/download/abc/videoHD/0_0.mp4");
    assert_eq!(m.files[5].path, "/download/abc/videoSD/0_2.mp4");
    assert_eq!(m.files[8].path, "/download/abc/videoAUX/0_2.mp4");
}

#[test]
fn demo_is_small_and_varied() {
    let demo = Scenario::demo();
    assert_eq!(demo.meetings.len(), 3);
    let counts: Vec<_> = demo.meetings.iter().map(|m| m.files.len()).collect();
    assert_eq!(counts, vec![3, 9, 2]);
    for file in demo.meetings.iter().flat_map(|m| &m.files) {
        assert!((64 * 1024..=2 * 1024 * 1024).contains(&file.size));
    }
}

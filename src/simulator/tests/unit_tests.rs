//! File contents and the demo scenario.

use crate::simulator::meeting::{WORD_TABLE, block_key, word_table};
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

/// Word `index` of a file's content, as [`SimFile::content_range`] defines it.
fn content_word(seed: u64, index: usize) -> u64 {
    word_table()[index % WORD_TABLE] ^ block_key(seed, index / WORD_TABLE)
}

/// The content byte by byte, from its definition (`content_word`, the
/// header, the text mapping): what the block-at-a-time
/// [`SimFile::content_range`] must produce for any range.
fn reference_range(file: &SimFile, start: usize, end: usize) -> Vec<u8> {
    let end = end.min(file.size);
    let start = start.min(end);
    let (header, text): (Vec<u8>, bool) = if file.path.ends_with(".txt") {
        (b"00:00:01 alice: hello\n".to_vec(), true)
    } else if file.path.ends_with(".json") {
        (br#"{"code": "zh-CN", "msg": ["#.to_vec(), true)
    } else {
        let mut h = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
        let mdat = u32::try_from(file.size.saturating_sub(32)).unwrap_or(0);
        h.extend_from_slice(&mdat.to_be_bytes());
        h.extend_from_slice(b"mdat");
        (h, false)
    };
    (start..end)
        .map(|i| match header.get(i) {
            Some(byte) => *byte,
            None => {
                let byte = content_word(file.seed, i / 8).to_le_bytes()[i % 8];
                if text { b'a' + byte % 26 } else { byte }
            }
        })
        .collect()
}

#[test]
fn content_ranges_match_the_byte_by_byte_definition() {
    for path in ["/v/0_0.mp4", "/c/chat.txt", "/s/zh.json"] {
        let file = SimFile {
            file_type: "Hd".into(),
            path: path.into(),
            size: 70_001,
            seed: 11,
        };
        for (start, end) in [
            (0, 70_001),
            (0, 1),
            (5, 13),
            (7, 9),
            (8, 16),
            (21, 45),
            (39, 41),
            (40, 48),
            (4090, 4100),
            (4096 * 3 - 5, 4096 * 5 + 3),
            (65_536, 70_001),
            (69_999, 80_000),
            (70_001, 70_001),
        ] {
            assert_eq!(
                file.content_range(start, end),
                reference_range(&file, start, end),
                "{path} {start}..{end}"
            );
        }
    }
}

#[test]
fn no_two_blocks_of_content_are_alike() {
    // Bytes landed a whole table (or several) off must not hash the same.
    let file = SimFile {
        file_type: "Hd".into(),
        path: "/v/0_0.mp4".into(),
        size: 64 * WORD_TABLE * 8,
        seed: 3,
    };
    let bytes = file.content();
    let blocks: std::collections::HashSet<&[u8]> =
        bytes[WORD_TABLE * 8..].chunks(WORD_TABLE * 8).collect();
    assert_eq!(blocks.len(), 63, "every block differs from every other");
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

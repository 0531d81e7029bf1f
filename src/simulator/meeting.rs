//! Simulated recordings: a [`SimMeeting`] holds split [`SimFile`]s whose bytes
//! are generated from a seed on demand, so big files cost no memory and every
//! request for a file is served exactly the same bytes.

use std::time::Duration;

use crate::clock::Millis;

/// One recorded meeting as the cloud knows it.
#[derive(Clone, Debug)]
pub struct SimMeeting {
    /// Conference UUID (32 hex characters normally).
    pub conf_uuid: String,
    /// Conference ID (the number people dial).
    pub conf_id: String,
    /// Meeting subject.
    pub subject: String,
    /// When the recording started (the wire carries Unix milliseconds).
    pub start: Millis,
    /// downloadurls answers with no URLs for this many first calls (still transcoding).
    pub not_ready_calls: u32,
    /// The recording files, in the order downloadurls lists them.
    pub files: Vec<SimFile>,
    /// Parts appear while the meeting is transcoded: part `0_N` of each
    /// type is listed from the meeting's (N + 1)-th ready listing call on.
    pub parts_appear_over_time: bool,
}

impl SimMeeting {
    /// A meeting with `parts` split files (`0_0`, `0_1`, …) for each of `types`,
    /// each `size` bytes, at paths like `/download/<conf>/videoHD/0_0.mp4`.
    /// It started two hours ago (to the minute), so default date windows find it.
    pub fn standard(
        conf_uuid: &str,
        subject: &str,
        parts: usize,
        types: &[&str],
        size: usize,
    ) -> SimMeeting {
        let base_seed = fnv1a(conf_uuid.as_bytes());
        let mut files = Vec::with_capacity(parts * types.len());
        for file_type in types {
            for part in 0..parts {
                let index = files.len() as u64;
                files.push(SimFile {
                    file_type: (*file_type).to_string(),
                    path: format!(
                        "/download/{conf_uuid}/video{}/0_{part}.mp4",
                        file_type.to_ascii_uppercase()
                    ),
                    size,
                    seed: splitmix64(base_seed.wrapping_add(index)),
                });
            }
        }
        let two_hours_ago = (Millis::now() - Duration::from_secs(2 * 3600)).as_unix_ms();
        SimMeeting {
            conf_uuid: conf_uuid.to_string(),
            conf_id: format!("9{:09}", base_seed % 1_000_000_000),
            subject: subject.to_string(),
            start: Millis::from_unix_ms(two_hours_ago / 60_000 * 60_000),
            not_ready_calls: 0,
            files,
            parts_appear_over_time: false,
        }
    }

    /// Whether `file` is listed at the meeting's `ready_call`-th ready call.
    pub fn lists(&self, file: &SimFile, ready_call: u32) -> bool {
        if !self.parts_appear_over_time {
            return true;
        }
        let stem = file.path.rsplit('/').next().unwrap_or("");
        let part = stem
            .split('.')
            .next()
            .and_then(|s| s.rsplit('_').next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        part < ready_call
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size as u64).sum()
    }
}

/// One downloadable file of a meeting.
#[derive(Clone, Debug)]
pub struct SimFile {
    /// `Hd`, `Sd`, `Aux` or anything else.
    pub file_type: String,
    /// Raw URL path on the download host (untrusted input for the archiver; may be hostile).
    pub path: String,
    /// Length in bytes.
    pub size: usize,
    /// Content seed.
    pub seed: u64,
}

impl SimFile {
    /// The whole file: an mp4 `ftyp` box, an `mdat` header, then seeded pseudo-random bytes.
    pub fn content(&self) -> Vec<u8> {
        self.content_range(0, self.size)
    }

    /// The `Content-Type` the download host sends, by the path's extension:
    /// recordings are `video/mp4`; a chat log `.txt` is text, a subtitle
    /// `.json` is JSON (whose keys may look like an error's: `code`, `msg`).
    pub fn content_type(&self) -> &'static str {
        match self.text_kind() {
            Some(TextKind::Plain) => "text/plain; charset=utf-8",
            Some(TextKind::Json) => "application/json",
            None => "video/mp4",
        }
    }

    fn text_kind(&self) -> Option<TextKind> {
        let path = self.path.to_ascii_lowercase();
        if path.ends_with(".txt") {
            Some(TextKind::Plain)
        } else if path.ends_with(".json") {
            Some(TextKind::Json)
        } else {
            None
        }
    }

    /// Bytes `start..end` of [`SimFile::content`] (clamped to the file):
    /// the header, then word `i` (bytes `8 * i ..`) is word `i % 512` of
    /// [`word_table`] XORed with the [`block_key`] of block `i / 512`
    /// (letters in a text file). Words are stored whole, a block at a
    /// time, so that serving a 2 GiB file costs the benchmarks' shared
    /// cores little CPU.
    pub fn content_range(&self, start: usize, end: usize) -> Vec<u8> {
        let end = end.min(self.size);
        let start = start.min(end);
        let header: Vec<u8> = match self.text_kind() {
            Some(TextKind::Plain) => b"00:00:01 alice: hello\n".to_vec(),
            Some(TextKind::Json) => br#"{"code": "zh-CN", "msg": ["#.to_vec(),
            None => self.header().to_vec(),
        };
        let text = self.text_kind().is_some();
        // Whole words from the one holding `start` to the one holding `end - 1`.
        let first_word = start / 8;
        let mut out = vec![0u8; end.div_ceil(8) * 8 - first_word * 8];
        // Block by block: one key each, then table words XORed with it.
        let (table, mut index, mut rest) = (word_table(), first_word, &mut out[..]);
        while !rest.is_empty() {
            let in_block = index % WORD_TABLE;
            let n = (WORD_TABLE - in_block).min(rest.len() / 8);
            let (now, later) = rest.split_at_mut(n * 8);
            let key = block_key(self.seed, index / WORD_TABLE);
            for (slot, word) in now.chunks_exact_mut(8).zip(&table[in_block..in_block + n]) {
                slot.copy_from_slice(&(word ^ key).to_le_bytes());
            }
            (index, rest) = (index + n, later);
        }
        if text {
            for byte in &mut out {
                *byte = b'a' + *byte % 26;
            }
        }
        let skip = start - first_word * 8;
        for (offset, byte) in header.iter().enumerate().skip(start) {
            if let Some(slot) = out.get_mut(offset - start + skip) {
                *slot = *byte;
            }
        }
        out.truncate(skip + (end - start));
        out.drain(..skip);
        out
    }

    /// The first 40 bytes: a 32-byte `ftyp` box and the header of an `mdat` box
    /// (size 0 = "to the end of the file" when it does not fit in 32 bits).
    fn header(&self) -> [u8; 40] {
        let mut h = [0u8; 40];
        h[..32].copy_from_slice(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41");
        let mdat = u32::try_from(self.size.saturating_sub(32)).unwrap_or(0);
        h[32..36].copy_from_slice(&mdat.to_be_bytes());
        h[36..40].copy_from_slice(b"mdat");
        h
    }
}

/// Files whose body is text, not media.
#[derive(Clone, Copy)]
enum TextKind {
    Plain,
    Json,
}

/// Words in [`word_table`]: content repeats its table every 4 KiB, each
/// block XORed with its own key.
pub(crate) const WORD_TABLE: usize = 512;

/// The pseudo-random words every file's content is made of (the same for
/// all files; computed once).
pub(crate) fn word_table() -> &'static [u64; WORD_TABLE] {
    static TABLE: std::sync::OnceLock<[u64; WORD_TABLE]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|i| splitmix64(0x5EED ^ i as u64)))
}

/// The key of the file's `block`-th 4 KiB: it makes every block of every
/// file differ from every other, so a transfer that lands bytes at the
/// wrong offset (even a whole block off) is caught by its hash.
pub(crate) fn block_key(seed: u64, block: usize) -> u64 {
    splitmix64(seed ^ (block as u64).wrapping_mul(0xA24B_AED4_963E_E407))
}

/// SplitMix64 finaliser: a fast, well-mixed 64-bit hash of `x`.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, to derive stable seeds and IDs from a conference UUID.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

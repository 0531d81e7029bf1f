//! Text from outside (a subject or an error the cloud sent, a webhook's
//! event name, a file name) as the human output prints it: control
//! characters and bidirectional overrides escaped, so that a hostile
//! subject cannot clear the operator's screen, move the cursor or hide a
//! line. Other Unicode is kept. JSON output needs none of this: serde
//! escapes control characters itself.

use std::fmt::{self, Write as _};

/// `text`, displayed with its control characters escaped (`\u{1b}`, `\n`).
pub struct Shown<'a>(&'a str);

/// Wraps outside text for printing to a terminal.
pub fn shown(text: &str) -> Shown<'_> {
    Shown(text)
}

/// Characters a terminal acts on rather than shows: C0, DEL and C1
/// controls (escape sequences, CSI), and the bidirectional embeddings,
/// overrides and isolates that reorder what follows them on the line.
fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if acts_on_terminal(c) {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_other_unicode_is_kept() {
        let hostile = "Board\x1b[2J\r\nfake line\u{9b}31m\u{202e}gnp.exe\t\u{7f}";
        let text = shown(hostile).to_string();
        assert_eq!(
            text,
            "Board\\u{1b}[2J\\r\\nfake line\\u{9b}31m\\u{202e}gnp.exe\\t\\u{7f}"
        );
        assert!(!text.chars().any(acts_on_terminal), "{text}");
        assert_eq!(
            shown("Réunion 会议 🎥 a\\b").to_string(),
            "Réunion 会议 🎥 a\\b"
        );
    }
}

//! Why a config was rejected. Every message names the key it is about and
//! none ever contains a secret value: TOML errors are reported by position
//! and message only, without the source snippet the `toml` crate would quote,
//! and a wrong type is said in words (`words`).
//! An I/O cause is kept out of the message and returned by `source()`, so
//! that a printed chain names it once.

use std::path::PathBuf;

/// A config file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML at all.
    #[error("{origin} is not valid TOML: {message}")]
    Syntax {
        /// "config file /path" or "config".
        origin: String,
        /// Position and parser message.
        message: String,
    },
    /// Valid TOML, but a key is unknown or has the wrong type.
    #[error("{origin}: {message}")]
    Schema {
        /// "config file /path" or "config".
        origin: String,
        /// Key, problem and position.
        message: String,
    },
    /// A key has a value of the right type that is not acceptable.
    #[error("{key} {reason}")]
    Invalid {
        /// The dotted key, such as `download.workers`.
        key: String,
        /// What is wrong, such as "must be at least 1, got 0".
        reason: String,
    },
    /// A duration key that humantime cannot read.
    #[error("{key}: invalid duration \"{value}\": {reason} (use e.g. \"30s\", \"10m\", \"1h\")")]
    Duration {
        /// The dotted key.
        key: String,
        /// The value as written.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// `poll.schedule` is not a cron expression.
    #[error("poll.schedule: invalid cron expression \"{expr}\": {reason}")]
    Cron {
        /// The expression as written.
        expr: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The authentication settings are missing or contradictory.
    #[error("{0}")]
    Auth(String),
    /// No secret for the chosen auth method could be found.
    #[error("{0}")]
    MissingSecret(String),
    /// A `*_file` secret could not be read (the message never holds its content).
    #[error("{key}: cannot read {}", path.display())]
    SecretFile {
        /// The dotted key, such as `cloud.auth.app_key_file`.
        key: String,
        /// The file named by the key.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A folder the archiver must write to is unusable.
    #[error("{key}: cannot {action} {}", path.display())]
    Dir {
        /// The dotted key, such as `download.dir`.
        key: String,
        /// The folder or file concerned.
        path: PathBuf,
        /// What failed, such as "create folder".
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A folder that does not exist and could not be created: a file is
    /// in the way.
    #[error("{key}: {}", not_a_folder(path, blocker))]
    NotAFolder {
        /// The dotted key, such as `download.dir`.
        key: String,
        /// The folder.
        path: PathBuf,
        /// The file where a folder should be.
        blocker: PathBuf,
    },
    /// A folder that could not be created or written: its nearest existing
    /// parent (or itself) refuses a new file.
    #[error("{key}: {}", unwritable(path, parent))]
    Unwritable {
        /// The dotted key, such as `download.dir`.
        key: String,
        /// The folder.
        path: PathBuf,
        /// The existing folder that refused the probe file.
        parent: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(super) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Turns a `toml` error into a message with the key path and position,
    /// without quoting the offending line (it might hold a secret).
    pub(super) fn from_toml(err: &toml::de::Error, text: &str, origin: &str, syntax: bool) -> Self {
        let origin = origin.to_string();
        let message = err.message().trim().replace('\n', "; ");
        let Some(span) = err.span() else {
            return if syntax {
                ConfigError::Syntax { origin, message }
            } else {
                ConfigError::Schema { origin, message }
            };
        };
        let (line, column) = line_column(text, span.start);
        let at = format!("line {line}, column {column}");
        if syntax {
            return ConfigError::Syntax {
                origin,
                message: format!("{at}: {message}"),
            };
        }
        let key = key_path_at(text, span.start);
        let message = match (key, message.strip_prefix("unknown field `")) {
            (Some(key), Some(rest)) => {
                let (field, rest) = rest.split_once('`').unwrap_or((rest, ""));
                format!("unknown key `{}`{rest} ({at})", cut_after(&key, field))
            }
            (Some(key), None) => {
                let in_list = inside_list(text, span.start);
                match super::words::type_error(&key, &message, in_list) {
                    Some(words) => format!("{words} ({at})"),
                    None => format!("{key}: {message} ({at})"),
                }
            }
            (None, _) => format!("{message} ({at})"),
        };
        ConfigError::Schema { origin, message }
    }
}

fn not_a_folder(path: &std::path::Path, blocker: &std::path::Path) -> String {
    let what = format!("{} is a file, not a folder", blocker.display());
    if path == blocker {
        what
    } else {
        format!("cannot create folder {}: {what}", path.display())
    }
}

fn unwritable(path: &std::path::Path, parent: &std::path::Path) -> String {
    if path == parent {
        format!("folder {} is not writable", path.display())
    } else {
        let (path, parent) = (path.display(), parent.display());
        format!("cannot create folder {path}: {parent} is not writable")
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Best-effort dotted key at `offset`: the `key = value` line holding it (or,
/// inside a multi-line array, the nearest one above), prefixed by the nearest
/// `[table]` header above it; or that header itself when the offset is in one.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let current = text[line_start..].lines().next().unwrap_or("");
    let lines = std::iter::once(current).chain(before[..line_start].lines().rev());
    let mut key = None;
    for line in lines {
        let trimmed = line.trim_start();
        if let Some(header) = trimmed.strip_prefix('[') {
            let header = clean_key(header.split(']').next().unwrap_or(""));
            return match key {
                Some(key) => Some(format!("{header}.{key}")),
                None => Some(header),
            };
        }
        if key.is_none()
            && !trimmed.starts_with('#')
            && let Some((k, _)) = line.split_once('=')
        {
            let k = clean_key(k);
            if k.is_empty() || k.contains(['[', '{', '"', '\'', ']', ',']) {
                return None;
            }
            key = Some(k);
        }
    }
    key
}

/// Whether `offset` is inside a `[...]` list value: an unmatched `[` comes
/// before it on the way back to the `=` of its key (best effort: brackets
/// inside strings are not told apart).
fn inside_list(text: &str, offset: usize) -> bool {
    let before = text.get(..offset).unwrap_or(text);
    let mut depth = 0usize;
    for c in before.chars().rev() {
        match c {
            ']' => depth += 1,
            '[' if depth == 0 => return true,
            '[' => depth -= 1,
            '=' if depth == 0 => return false,
            _ => {}
        }
    }
    false
}

/// `a.b.c` cut after its last segment named `field` (`a.b` for `b`): with a
/// dotted key such as `retry.base = 1`, serde complains about `retry`.
fn cut_after(path: &str, field: &str) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    match segments.iter().rposition(|s| *s == field) {
        Some(i) => segments[..=i].join("."),
        None => path.to_string(),
    }
}

/// `" download . workers "` -> `"download.workers"`.
fn clean_key(key: &str) -> String {
    key.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

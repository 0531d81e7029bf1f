//! Progress of a `sync` on a terminal: files and bytes, redrawn in place.
//! Nothing is drawn when standard error is not a terminal (a pipe, a log
//! file, journald). Log lines are written through [`LogWriter`], which
//! lifts the bar out of the way so the two never garble each other.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::pipeline::Progress;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// A progress bar bound to an engine's counters.
pub struct ProgressDisplay {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts a bar for `total` files fed by `progress`, if standard error
    /// is a terminal.
    pub fn start(total: u64, progress: Arc<Progress>) -> ProgressDisplay {
        if !std::io::stderr().is_terminal() {
            return ProgressDisplay {
                bar: None,
                ticker: None,
            };
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} files {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        let ticking = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                let p = &progress;
                let done =
                    p.files_done.load(Ordering::Relaxed) + p.files_failed.load(Ordering::Relaxed);
                ticking.set_position(done);
                let mib = p.bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
                ticking.set_message(format!("{mib:.1} MiB received"));
                ticking.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        ProgressDisplay {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    /// Stops and clears the bar.
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Standard error for log lines, drawn around the progress bar if one is up.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

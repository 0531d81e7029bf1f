//! The binary as a service manager runs it: `meeting-archiver run` as a
//! child process, its standard error collected as it comes, stopped by a
//! signal or killed outright.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::until;

/// The binary's `run`, its standard error collected as it comes; killed
/// on drop if still running.
pub struct DaemonProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl DaemonProcess {
    /// Starts `meeting-archiver --config <config> run` with `envs` added.
    pub fn spawn(config: &Path, envs: &[(&str, &str)]) -> DaemonProcess {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("meeting-archiver"));
        cmd.args(["--config", &config.to_string_lossy(), "run"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("daemon starts");
        let pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line);
                sink.lock().expect("stderr lock").push_str(&text);
                line.clear();
            }
        });
        DaemonProcess {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Sends the signal `name` (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// What the daemon wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Waits for the daemon to exit; returns its code and standard error.
    pub async fn exit(mut self) -> (Option<i32>, String) {
        until("the daemon to exit", async || {
            self.child.try_wait().expect("try_wait").is_some()
        })
        .await;
        let status = self.child.wait().expect("wait");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        (status.code(), self.stderr())
    }

    /// Kills the daemon with SIGKILL, giving it no chance to clean up (a
    /// power cut or the OOM killer), reaps it and returns its standard error.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("the killed daemon is reaped");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        self.stderr()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! A real S3 implementation for the object-storage tests: `moto_server`
//! started per test on a free port of 127.0.0.1 (killed on drop), with a
//! bucket created in it (a fault proxy for it is in `s3_proxy`). Objects
//! are read back
//! with plain unsigned HTTP, independently of the archiver's client.
//!
//! Where moto cannot start the tests skip with a message, unless
//! `MEETING_ARCHIVER_REQUIRE_S3=1` (set by `.ci/run`) makes them fail.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meeting_archiver::config::{ArchiveConfig, Config, S3Config, SecretSource};
use meeting_archiver::simulator::SimMeeting;
use secrecy::SecretString;

use super::{TestEnv, free_addr, until};

/// Set to 1 where the S3 tests must run (CI): they fail instead of skipping.
pub const REQUIRE_S3: &str = "MEETING_ARCHIVER_REQUIRE_S3";
/// Overrides where `moto_server` is found.
pub const MOTO_PATH: &str = "MEETING_ARCHIVER_MOTO_SERVER";
/// The bucket every test archives into.
pub const BUCKET: &str = "meeting-recordings";
/// The key prefix every test uses.
pub const PREFIX: &str = "huawei/";
/// How long moto gets to answer after it was started.
const MOTO_START: Duration = Duration::from_secs(30);

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
    http: reqwest::Client,
}

impl Moto {
    /// Starts moto with the bucket created, or `None` (after printing why)
    /// where it cannot run and S3 tests are not required.
    pub async fn start() -> Option<Moto> {
        Moto::start_with(&[]).await
    }

    /// Like [`Moto::start`], with `envs` for the server (e.g. real
    /// authentication with `INITIAL_NO_AUTH_ACTION_COUNT=0`); the bucket is
    /// created only without them.
    pub async fn start_with(envs: &[(&str, &str)]) -> Option<Moto> {
        let program = moto_program();
        let addr = free_addr();
        let spawned = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => return skip(&format!("cannot start {}: {e}", program.display())),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut moto = Moto { child, addr, http };
        let started = Instant::now();
        loop {
            if moto.http.get(moto.url("")).send().await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                return skip(&format!("{} exited at start: {status}", program.display()));
            }
            if started.elapsed() > MOTO_START {
                return skip(&format!(
                    "{} did not answer in {MOTO_START:?}",
                    program.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if envs.is_empty() {
            let made = moto
                .http
                .put(moto.url(BUCKET))
                .send()
                .await
                .expect("create bucket");
            assert!(
                made.status().is_success(),
                "create bucket: {}",
                made.status()
            );
        }
        Some(moto)
    }

    /// A request moto takes as the bucket owner's: it checks no signature,
    /// but treats requests without an `Authorization` header as anonymous.
    fn owner(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDTESTREADER/20260101/us-east-1/s3/aws4_request, \
                    SignedHeaders=host, Signature=00";
        self.http
            .request(method, self.url(path))
            .header("Authorization", auth)
    }

    /// `http://addr/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// The object at `<PREFIX><rel>`, read without credentials; `None` if absent.
    pub async fn object(&self, rel: &str) -> Option<Vec<u8>> {
        let answer = self
            .owner(reqwest::Method::GET, &format!("{BUCKET}/{PREFIX}{rel}"))
            .send()
            .await
            .expect("GET object");
        if answer.status() == 404 {
            return None;
        }
        assert!(
            answer.status().is_success(),
            "GET {rel}: {}",
            answer.status()
        );
        Some(answer.bytes().await.expect("object body").to_vec())
    }

    /// The `x-amz-meta-<name>` of the object at `<PREFIX><rel>`.
    pub async fn metadata(&self, rel: &str, name: &str) -> Option<String> {
        let answer = self
            .owner(reqwest::Method::HEAD, &format!("{BUCKET}/{PREFIX}{rel}"))
            .send()
            .await
            .expect("HEAD object");
        let value = answer.headers().get(format!("x-amz-meta-{name}"))?;
        Some(value.to_str().expect("ascii").to_owned())
    }

    /// Replaces the object at `<PREFIX><rel>` behind the archiver's back,
    /// keeping the SHA-256 metadata `sha256` if given (a silent corruption).
    pub async fn overwrite(&self, rel: &str, bytes: Vec<u8>, sha256: Option<&str>) {
        let mut request = self
            .owner(reqwest::Method::PUT, &format!("{BUCKET}/{PREFIX}{rel}"))
            .body(bytes);
        if let Some(sha) = sha256 {
            request = request.header("x-amz-meta-sha256", sha);
        }
        let answer = request.send().await.expect("PUT object");
        assert!(
            answer.status().is_success(),
            "PUT {rel}: {}",
            answer.status()
        );
    }

    /// Deletes the object at `<PREFIX><rel>` behind the archiver's back.
    pub async fn delete(&self, rel: &str) {
        let answer = self
            .owner(reqwest::Method::DELETE, &format!("{BUCKET}/{PREFIX}{rel}"))
            .send()
            .await
            .expect("DELETE object");
        assert!(
            answer.status().is_success(),
            "DELETE {rel}: {}",
            answer.status()
        );
    }

    /// Every key in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let text = self
            .owner(
                reqwest::Method::GET,
                &format!("{BUCKET}?list-type=2&max-keys=1000"),
            )
            .send()
            .await
            .expect("list")
            .text()
            .await
            .expect("list body");
        let mut keys: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// Multipart uploads started and not completed or aborted.
    pub async fn unfinished_uploads(&self) -> usize {
        let text = self
            .owner(reqwest::Method::GET, &format!("{BUCKET}?uploads"))
            .send()
            .await
            .expect("list uploads")
            .text()
            .await
            .expect("uploads body");
        text.matches("<UploadId>").count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_program() -> PathBuf {
    if let Some(path) = std::env::var_os(MOTO_PATH) {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var(REQUIRE_S3).is_ok_and(|v| v == "1") {
        panic!("{why}, and {REQUIRE_S3}=1 requires the S3 tests to run");
    }
    eprintln!(
        "SKIPPED: {why}. The S3 tests need moto_server: python3 -m venv target/moto-venv && \
         target/moto-venv/bin/pip install \"moto[server]\" (or set {MOTO_PATH})"
    );
    None
}

/// `env`'s config with the bucket behind `endpoint` as the archive target.
pub fn s3_config(env: &TestEnv, endpoint: SocketAddr) -> Config {
    let mut config = env.config();
    config.archive = ArchiveConfig::S3(Box::new(S3Config {
        bucket: BUCKET.to_owned(),
        prefix: PREFIX.to_owned(),
        endpoint: Some(url::Url::parse(&format!("http://{endpoint}")).expect("url")),
        region: "us-east-1".to_owned(),
        access_key_id: "AKIDTESTARCHIVER".to_owned(),
        secret_access_key: SecretString::from("test-secret-key-do-not-print"),
        secret_source: SecretSource::Inline,
        path_style: true,
    }));
    config
}

/// The archive-relative path (the object key under the prefix) of a
/// meeting's `i`-th file, as the ledger placed it (the layout decides).
pub fn object_rel(env: &TestEnv, meeting: &SimMeeting, i: usize) -> String {
    let file = &meeting.files[i];
    let name = file.path.rsplit('/').next().expect("name");
    let ledger = meeting_archiver::ledger::Ledger::open_read_only(&env.ledger_path())
        .expect("the ledger opens read-only");
    ledger
        .meeting_files(&meeting.conf_uuid)
        .expect("read")
        .into_iter()
        .find(|f| f.file_type == file.file_type && f.file_key == name)
        .map(|f| f.rel_path)
        .unwrap_or_else(|| panic!("{}: {name} is not listed", meeting.conf_uuid))
}

/// Asserts that every file of `meetings` lies in the bucket byte for byte
/// with its SHA-256 in the metadata, each meeting has its manifest object,
/// and nothing is left locally: no partial file, no media.
pub async fn assert_bucket_complete(env: &TestEnv, moto: &Moto, meetings: &[SimMeeting]) {
    let mut expected = Vec::new();
    for meeting in meetings {
        for (i, file) in meeting.files.iter().enumerate() {
            let rel = object_rel(env, meeting, i);
            let held = moto
                .object(&rel)
                .await
                .unwrap_or_else(|| panic!("{rel} missing"));
            let content = file.content();
            assert!(held == content, "{rel} differs from the cloud's file");
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
            assert_eq!(moto.metadata(&rel, "sha256").await, Some(sha), "{rel}");
            assert_eq!(
                moto.metadata(&rel, "meeting").await.as_deref(),
                Some(meeting.conf_uuid.as_str())
            );
            expected.push(format!("{PREFIX}{rel}"));
        }
        let folder = env.meeting_folder(&meeting.conf_uuid);
        let manifest = format!("{folder}/{}", meeting_archiver::pipeline::MANIFEST_NAME);
        let json = moto
            .object(&manifest)
            .await
            .unwrap_or_else(|| panic!("{manifest} missing"));
        let parsed: serde_json::Value = serde_json::from_slice(&json).expect("manifest is JSON");
        assert_eq!(
            parsed["files"].as_array().map(Vec::len),
            Some(meeting.files.len())
        );
        expected.push(format!("{PREFIX}{manifest}"));
        // SHA256SUMS travels with the files: one line per object, each
        // naming the SHA-256 the object's metadata holds.
        let sums_key = format!("{folder}/{}", meeting_archiver::pipeline::SUMS_NAME);
        let sums = moto
            .object(&sums_key)
            .await
            .unwrap_or_else(|| panic!("{sums_key} missing"));
        let sums = String::from_utf8(sums).expect("SHA256SUMS is text");
        assert_eq!(sums.lines().count(), meeting.files.len(), "{sums}");
        for (i, file) in meeting.files.iter().enumerate() {
            let rel = object_rel(env, meeting, i);
            let within = rel.strip_prefix(&format!("{folder}/")).expect("inside");
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(file.content()));
            assert!(
                sums.lines().any(|l| l == format!("{sha}  {within}")),
                "{sums_key} lacks {within}: {sums}"
            );
        }
        expected.push(format!("{PREFIX}{sums_key}"));
    }
    for root in [
        meeting_archiver::pipeline::README_NAME,
        meeting_archiver::pipeline::SCHEMA_NAME,
    ] {
        expected.push(format!("{PREFIX}{root}"));
    }
    expected.sort();
    assert_eq!(
        moto.keys().await,
        expected,
        "the bucket holds exactly the archive"
    );
    assert_eq!(
        moto.unfinished_uploads().await,
        0,
        "no multipart upload left open"
    );
    assert!(
        super::partial_files(&env.archive_dir()).is_empty(),
        "nothing left in .partial"
    );
    assert!(
        super::archived_media(&env.archive_dir()).is_empty(),
        "no media kept locally"
    );
}

/// Waits until the ledger says `n` files are done.
pub async fn until_done(env: &TestEnv, n: i64) {
    until("files archived to the bucket", async || {
        env.ledger_status().files.done >= n
    })
    .await;
}

//! Certificate checks over real TLS on loopback: a small TLS-terminating
//! proxy on 127.0.0.3 with a self-signed certificate (from rcgen) sits in
//! front of the simulator's plain download host or API, and the simulator
//! hands out download URLs on the proxy.
//!
//! The proxy's rustls config names its crypto provider explicitly, so no
//! process-wide default provider is installed: the archiver's clients must
//! work on their own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use meeting_archiver::commands::SyncOutcome;
use meeting_archiver::config::Config;
use meeting_archiver::ledger::FileState;
use meeting_archiver::simulator::SimMeeting;
use meeting_archiver::telemetry::error_chain;

use crate::helpers::{TestEnv, archived_media, file_count, scenario, three_meetings};

/// Where the proxies listen; their certificates name this IP.
const PROXY_IP: &str = "127.0.0.3";

/// A self-signed certificate for one IP address, and its key.
struct TestCert {
    der: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    pem: String,
}

impl TestCert {
    fn for_ip(ip: &str) -> TestCert {
        let certified = rcgen::generate_simple_self_signed(vec![ip.to_string()])
            .expect("rcgen makes a certificate");
        TestCert {
            der: certified.cert.der().clone(),
            key_pkcs8: certified.signing_key.serialize_der(),
            pem: certified.cert.pem(),
        }
    }

    /// Writes the PEM into `env`'s folder, for `tls.ca_file`.
    fn write_pem(&self, env: &TestEnv, name: &str) -> PathBuf {
        let path = env.dir.path().join(name);
        std::fs::write(&path, &self.pem).expect("write PEM");
        path
    }
}

/// A TLS-terminating TCP proxy: each connection's bytes are copied both ways
/// to a plain target. Stops (with every connection) on drop.
struct TlsProxy {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsProxy {
    async fn start(ip: &str, cert: &TestCert, target: SocketAddr) -> TlsProxy {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pkcs8.clone())),
            )
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((ip, 0)).await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counter = handshakes.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) ends every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                connections.spawn(async move {
                    // A client refusing our certificate ends here.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        TlsProxy {
            addr,
            handshakes,
            task,
        }
    }

    fn base(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// TLS handshakes that completed (the client accepted the certificate).
    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The socket address of a simulator base URL such as `http://127.0.0.2:4000`.
fn addr_of(base: &str) -> SocketAddr {
    base.strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a plain base URL: {base}"))
}

/// The config of download tests: the default ten attempts per file, so a
/// refused certificate failing a file at once shows it is not retried.
fn download_config(env: &TestEnv) -> Config {
    let mut config = env.config();
    config.download.max_attempts = 10;
    config
}

/// Two meetings, five small files.
fn meetings() -> Vec<SimMeeting> {
    vec![
        SimMeeting::standard(
            "7151a7151a7151a7151a7151a7151a71",
            "TLS one",
            2,
            &["Hd", "Aux"],
            40 * 1024,
        ),
        SimMeeting::standard(
            "7152a7152a7152a7152a7152a7152a72",
            "TLS two",
            1,
            &["Hd"],
            300 * 1024,
        ),
    ]
}

/// A simulator whose download URLs point at a TLS proxy (on [`PROXY_IP`]
/// with `cert`) in front of its plain download host.
async fn downloads_over_tls(cert: &TestCert) -> (TestEnv, TlsProxy) {
    let env = TestEnv::start(scenario(meetings())).await;
    let proxy = TlsProxy::start(PROXY_IP, cert, addr_of(&env.sim.download_base())).await;
    env.sim.set_advertised_download_base(proxy.base());
    (env, proxy)
}

/// Asserts that every file failed for good on its first attempt with an
/// error naming the certificate, and that nothing reached the download host.
fn assert_refused_certificate(env: &TestEnv, outcome: &SyncOutcome) {
    let total = file_count(&env.meetings) as i64;
    assert_eq!(outcome.exit_code(), 1, "{outcome:?}");
    assert!(outcome.poll_errors.is_empty(), "{outcome:?}");
    assert_eq!(outcome.status.files.failed, total, "{outcome:?}");
    assert_eq!(outcome.status.files.done, 0, "{outcome:?}");
    let errors = &outcome.status.last_errors;
    assert_eq!(errors.len() as i64, total, "{errors:?}");
    for line in errors {
        assert_eq!(line.state, FileState::Failed, "{line:?}");
        assert_eq!(line.attempts, 1, "not retried: {line:?}");
        for words in [
            "certificate of download host 127.0.0.3",
            "tls.insecure_download_hosts",
        ] {
            assert!(
                line.error.contains(words),
                "names the host and the fix: {line:?}"
            );
        }
    }
    assert_eq!(
        env.sim.stats().download_requests,
        0,
        "no request got past the handshake"
    );
    assert!(
        archived_media(&env.archive_dir()).is_empty(),
        "nothing archived"
    );
}

#[tokio::test]
async fn a_self_signed_download_host_is_refused_by_default() {
    let cert = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = downloads_over_tls(&cert).await;
    let outcome = env.sync(&download_config(&env)).await;
    assert_refused_certificate(&env, &outcome);
    assert!(
        outcome.status.last_errors[0]
            .error
            .contains("issued by an authority this system does not trust"),
        "{:?}",
        outcome.status.last_errors
    );
    assert_eq!(
        proxy.handshakes(),
        0,
        "the archiver refused every handshake"
    );
}

#[tokio::test]
async fn ca_file_makes_a_self_signed_download_host_trusted() {
    let cert = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = downloads_over_tls(&cert).await;
    let ca = cert.write_pem(&env, "ca.pem");
    let mut config = download_config(&env);
    config.tls.ca_file = Some(ca);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(proxy.handshakes() >= 1, "the files came over TLS");
    assert_eq!(
        env.sim.stats().downloads_completed,
        file_count(&env.meetings)
    );
}

#[tokio::test]
async fn ca_file_trusts_only_its_own_certificate() {
    // The CA file holds another self-signed certificate for the same IP.
    let served = TestCert::for_ip(PROXY_IP);
    let other = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = downloads_over_tls(&served).await;
    let ca = other.write_pem(&env, "other.pem");
    let mut config = download_config(&env);
    config.tls.ca_file = Some(ca);
    let outcome = env.sync(&config).await;
    assert_refused_certificate(&env, &outcome);
    assert_eq!(proxy.handshakes(), 0);
}

#[tokio::test]
async fn ca_file_does_not_turn_off_the_host_name_check() {
    // Trusted, but issued for 127.0.0.4 while served on 127.0.0.3.
    let cert = TestCert::for_ip("127.0.0.4");
    let (env, proxy) = downloads_over_tls(&cert).await;
    let ca = cert.write_pem(&env, "ca.pem");
    let mut config = download_config(&env);
    config.tls.ca_file = Some(ca);
    let outcome = env.sync(&config).await;
    assert_refused_certificate(&env, &outcome);
    assert!(
        outcome.status.last_errors[0]
            .error
            .contains("it names another host"),
        "{:?}",
        outcome.status.last_errors
    );
    assert_eq!(proxy.handshakes(), 0);
}

#[tokio::test]
async fn an_insecure_download_host_is_not_checked() {
    let cert = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = downloads_over_tls(&cert).await;
    let mut config = download_config(&env);
    config.tls.insecure_download_hosts = vec![PROXY_IP.to_owned()];
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(proxy.handshakes() >= 1, "the files came over TLS");
}

#[tokio::test]
async fn a_download_host_not_listed_as_insecure_stays_checked() {
    let cert = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = downloads_over_tls(&cert).await;
    let mut config = download_config(&env);
    config.tls.insecure_download_hosts =
        vec!["127.0.0.4".to_owned(), "files.example.com".to_owned()];
    let outcome = env.sync(&config).await;
    assert_refused_certificate(&env, &outcome);
    assert_eq!(proxy.handshakes(), 0);
}

/// A simulator with one small meeting whose API is behind a TLS proxy with
/// `cert` (downloads stay on the plain host).
async fn api_over_tls(cert: &TestCert) -> (TestEnv, TlsProxy) {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "7153a7153a7153a7153a7153a7153a73",
        "TLS API",
        1,
        &["Hd", "Sd"],
        20 * 1024,
    )]))
    .await;
    let proxy = TlsProxy::start(PROXY_IP, cert, addr_of(&env.sim.api_base())).await;
    (env, proxy)
}

#[tokio::test]
async fn ca_file_is_trusted_by_the_api_client_too() {
    let cert = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = api_over_tls(&cert).await;
    let ca = cert.write_pem(&env, "ca.pem");
    let mut config = env.config();
    config.cloud.api_base = proxy.base().parse().expect("proxy URL");
    config.tls.ca_file = Some(ca);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(proxy.handshakes() >= 1, "the API was called over TLS");
    assert_eq!(env.sim.stats().appauth_ok, 1);
}

#[tokio::test]
async fn insecure_download_hosts_do_not_cover_the_api() {
    // The API's host is listed as an insecure *download* host: the API
    // client still checks its certificate.
    let cert = TestCert::for_ip(PROXY_IP);
    let (env, proxy) = api_over_tls(&cert).await;
    let mut config = env.config();
    config.cloud.api_base = proxy.base().parse().expect("proxy URL");
    config.tls.insecure_download_hosts = vec![PROXY_IP.to_owned()];
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 1, "{outcome:?}");
    assert_eq!(outcome.poll_errors.len(), 1, "{outcome:?}");
    let error = error_chain(&outcome.poll_errors[0]);
    for words in ["certificate of 127.0.0.3 is not trusted", "tls.ca_file"] {
        assert!(error.contains(words), "{error}");
    }
    assert_eq!(proxy.handshakes(), 0);
    let stats = env.sim.stats();
    assert_eq!(
        (stats.appauth_ok, stats.appauth_rejected),
        (0, 0),
        "no API request got past the handshake"
    );
    assert_eq!(outcome.status.files.done, 0);
}

#[tokio::test]
async fn an_untrusted_api_certificate_fails_three_meetings_and_discovery_in_seconds() {
    let cert = TestCert::for_ip(PROXY_IP);
    let env = TestEnv::start(scenario(three_meetings())).await;
    let proxy = TlsProxy::start(PROXY_IP, &cert, addr_of(&env.sim.api_base())).await;
    // Default retries and give-up time: the refusal must not go through them.
    let mut config = env.config();
    config.cloud = meeting_archiver::config::CloudConfig::new(
        proxy.base().parse().expect("proxy URL"),
        config.cloud.auth.clone(),
    );
    config.poll.discover_days = 1;
    let started = std::time::Instant::now();
    let outcome = env.sync(&config).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(
        outcome.poll_errors.len(),
        4,
        "three meetings and discovery: {outcome:?}"
    );
    let first = error_chain(&outcome.poll_errors[0]);
    assert!(
        first.contains("not trusted") && first.contains("tls.ca_file"),
        "{first}"
    );
}

//! The first hour with a real account: a wrong setting at the API is
//! reported in seconds with the fix in the message, not after minutes of
//! retries. Permanent errors are not retried at all; an unreachable API is
//! retried only until `cloud.give_up_after`. (An untrusted certificate is
//! in `tls.rs`, beside its TLS helpers.)

use std::time::{Duration, Instant};

use meeting_archiver::config::Auth;
use meeting_archiver::telemetry::error_chain;
use secrecy::SecretString;

use crate::helpers::*;

#[tokio::test]
async fn a_wrong_app_key_fails_every_meeting_at_once_with_the_settings_to_check() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = env.config();
    config.cloud.auth = Auth::AppId {
        app_id: env.app_id.clone(),
        app_key: SecretString::from("not-the-key".to_owned()),
        user_id: None,
        corp_id: None,
    };
    let started = Instant::now();
    let outcome = env.sync(&config).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(outcome.poll_errors.len(), 3, "{outcome:?}");
    let error = error_chain(&outcome.poll_errors[0]);
    assert!(
        error.contains("App ID authentication refused: check cloud.auth.app_id and app_key"),
        "{error}"
    );
    let stats = env.sim.stats();
    assert_eq!(
        stats.appauth_rejected, 1,
        "one authentication per poll, not one per meeting"
    );
    assert!(!error.contains("not-the-key"), "no secret in messages");
}

/// A config whose API is at `base`, retried for at most `give_up` with
/// requests of at most `deadline`.
fn unreachable_config(
    env: &TestEnv,
    base: &str,
    give_up: Duration,
    deadline: Duration,
) -> meeting_archiver::config::Config {
    let mut config = env.config();
    config.cloud.api_base = base.parse().expect("URL");
    config.cloud.give_up_after = give_up;
    config.cloud.request_timeout = deadline;
    config.cloud.retry_base = Duration::from_millis(200);
    config.cloud.retry_max = Duration::from_secs(1);
    config
}

#[tokio::test]
async fn a_closed_port_is_retried_only_until_give_up_after() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let base = format!("http://{}", free_addr());
    let config = unreachable_config(&env, &base, Duration::from_secs(3), Duration::from_secs(2));
    let started = Instant::now();
    let outcome = env.sync(&config).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(outcome.poll_errors.len(), 3, "{outcome:?}");
    let error = error_chain(&outcome.poll_errors[0]);
    assert!(error.contains("Connection refused"), "{error}");
}

#[tokio::test]
async fn a_host_that_accepts_and_never_answers_costs_one_deadline_plus_retries() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let base = format!("http://{addr}");
    let config = unreachable_config(&env, &base, Duration::from_secs(3), Duration::from_secs(1));
    let started = Instant::now();
    let outcome = env.sync(&config).await;
    let took = started.elapsed();
    silent.abort();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(outcome.poll_errors.len(), 3, "{outcome:?}");
}

#[tokio::test]
async fn the_online_preflight_passes_against_the_simulator_and_spends_no_token() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let code = meeting_archiver::commands::preflight(&env.config())
        .await
        .expect("preflight runs");
    assert_eq!(code, 0);
    let stats = env.sim.stats();
    assert_eq!(stats.appauth_ok, 1);
    assert!(stats.downloadurls_calls >= 1);
    assert_eq!(stats.downloads_completed, 0, "no file downloaded");
    assert_eq!(stats.spent_token_reuses, 0);
}

#[tokio::test]
async fn the_online_preflight_stops_at_a_refused_app_key() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = env.config();
    config.cloud.auth = Auth::AppId {
        app_id: env.app_id.clone(),
        app_key: SecretString::from("wrong".to_owned()),
        user_id: None,
        corp_id: None,
    };
    let code = meeting_archiver::commands::preflight(&config)
        .await
        .expect("preflight runs");
    assert_eq!(code, 1);
    assert_eq!(
        env.sim.stats().downloadurls_calls,
        0,
        "stopped after authentication"
    );
}

#[tokio::test]
async fn check_config_online_reports_each_step_against_the_simulator() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let path = env.write_config(&env.config());
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("meeting-archiver")
            .expect("binary")
            .args([
                "--config",
                &path.to_string_lossy(),
                "check-config",
                "--online",
            ])
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for step in [
        "authentication",
        "recording list",
        "download URLs of meeting",
        "download host 127.0.0.2",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(step)),
            "{step} in\n{stdout}"
        );
    }
    assert_eq!(env.sim.stats().downloads_completed, 0);
}

//! The time check and the replay window at their edges, with the clock
//! given: one reading per request serves both.

use super::*;
use crate::ledger::Ledger;

const KEY: &str = "push password";
const APP: &str = "subscriber";
/// The sender's timestamp: far from the real clock, so that any check
/// that read the real clock instead of the request's would show.
const SENT: i64 = 1_000_000_000_000;

fn hook() -> (Webhook, LedgerHandle) {
    let ledger = LedgerHandle::new(Ledger::open_in_memory().expect("ledger"));
    let (wake, _) = mpsc::channel(1);
    let hook = Webhook::new(
        APP.to_owned(),
        SecretString::from(KEY),
        ledger.clone(),
        Arc::new(Metrics::new()),
        wake,
    );
    (hook, ledger)
}

fn body(nonce: &str) -> Bytes {
    let info = r#"{"event":"record.finish","payload":{"meetingInfo":{"meetingUUID":"abc"}}}"#;
    let signature = sign(KEY.as_bytes(), APP, SENT, nonce, info);
    Bytes::from(format!(
        r#"{{"appID":"{APP}","timestamp":{SENT},"nonce":"{nonce}","signature":"{signature}","eventInfo":{info}}}"#
    ))
}

async fn verdict(hook: &Webhook, nonce: &str, now: i64) -> Verdict {
    hook.judge(Ok(body(nonce)), Millis::from_unix_ms(now))
        .await
        .0
}

#[tokio::test]
async fn a_copy_inside_the_skew_either_side_is_a_replay_and_one_past_it_is_stale() {
    let (hook, ledger) = hook();
    let skew = i64::try_from(MAX_SKEW.as_millis()).expect("fits");
    // The first copy arrives exactly MAX_SKEW before its timestamp (taken).
    assert_eq!(verdict(&hook, "n1", SENT - skew).await, Verdict::Accepted);
    // Its record carries the request's own clock reading.
    let first = ledger.call(|l| l.last_event()).await.expect("read");
    assert_eq!(
        first.expect("stored").received_at,
        Millis::from_unix_ms(SENT - skew)
    );
    // A copy exactly MAX_SKEW after the timestamp, 2 × MAX_SKEW after the
    // first, still passes the time check: the nonce must refuse it.
    assert_eq!(verdict(&hook, "n1", SENT + skew).await, Verdict::Replay);
    // One millisecond later the time check refuses any copy.
    assert_eq!(verdict(&hook, "n1", SENT + skew + 1).await, Verdict::Stale);
    assert_eq!(verdict(&hook, "n2", SENT - skew - 1).await, Verdict::Stale);
    assert_eq!(ledger.call(|l| l.event_count()).await.expect("count"), 1);
}

#[test]
fn nonces_are_kept_a_margin_beyond_twice_the_skew() {
    assert!(NONCE_WINDOW >= 2 * MAX_SKEW + Duration::from_secs(5 * 60));
}

#[tokio::test]
async fn replaced_keys_take_the_next_request() {
    let (hook, _ledger) = hook();
    let keys = hook.keys();
    assert!(!keys.replace(APP, &SecretString::from(KEY)), "unchanged");
    assert!(keys.replace(APP, &SecretString::from("rotated")));
    assert_eq!(verdict(&hook, "n1", SENT).await, Verdict::BadSignature);
    assert!(keys.replace("another subscriber", &SecretString::from(KEY)));
    assert_eq!(verdict(&hook, "n2", SENT).await, Verdict::WrongAppId);
    assert!(keys.replace(APP, &SecretString::from(KEY)));
    assert_eq!(verdict(&hook, "n3", SENT).await, Verdict::Accepted);
}

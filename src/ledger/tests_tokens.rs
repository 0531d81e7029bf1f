//! In-memory tests of the token queries: single use, freshness, supersession.

use secrecy::ExposeSecret;

use super::tests::{CONF, at, entry, ledger_with};

#[test]
fn a_token_is_spent_before_it_is_handed_out_and_never_twice() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "secret-token")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    let spent = ledger
        .take_token(file.id, at(0), 0, at(100))
        .expect("take")
        .expect("token");
    assert_eq!(spent.token.expose_secret(), "secret-token");
    assert!(
        ledger
            .take_token(file.id, at(0), 0, at(100))
            .expect("take")
            .is_none()
    );
    // The same token listed again is recognised and not stored anew.
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "secret-token")], at(200))
        .expect("store");
    assert!(
        ledger
            .take_token(file.id, at(0), 0, at(200))
            .expect("take")
            .is_none()
    );
    assert!(ledger.token_known("secret-token").expect("known"));
    let stored: Option<String> = ledger
        .conn
        .query_row(
            "SELECT token FROM tokens WHERE id = ?1",
            [spent.token_id],
            |r| r.get(0),
        )
        .expect("row");
    assert_eq!(stored, None, "a spent token is erased");
}

#[test]
fn old_and_superseded_tokens_are_not_used() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "old")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    assert!(
        ledger
            .take_token(file.id, at(11), 0, at(100))
            .expect("take")
            .is_none(),
        "too old"
    );
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "new")], at(50))
        .expect("store");
    let spent = ledger
        .take_token(file.id, at(0), 0, at(100))
        .expect("take")
        .expect("token");
    assert_eq!(spent.token.expose_secret(), "new");
    assert!(
        ledger
            .take_token(file.id, at(0), 0, at(100))
            .expect("take")
            .is_none(),
        "old one superseded"
    );
}

#[test]
fn superseding_drops_only_older_unspent_tokens() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "first")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    assert_eq!(
        ledger
            .supersede_tokens(file.id, at(10), at(100))
            .expect("supersede"),
        0,
        "issued at 10, not before it"
    );
    assert_eq!(
        ledger
            .supersede_tokens(file.id, at(11), at(100))
            .expect("supersede"),
        1
    );
    assert!(
        ledger
            .take_token(file.id, at(0), 0, at(100))
            .expect("take")
            .is_none(),
        "a superseded token is never handed out"
    );
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "second")], at(200))
        .expect("store");
    let spent = ledger
        .take_token(file.id, at(0), 0, at(300))
        .expect("take")
        .expect("the newer token");
    assert_eq!(spent.token.expose_secret(), "second");
    assert_eq!(spent.issued_at, at(200));
}

#[test]
fn an_unspent_token_listed_again_stays_usable_and_a_spent_one_never_returns() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "same")]);
    // A re-listing hands out the very same, still unused token.
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "same")], at(50))
        .expect("store");
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    let spent = ledger
        .take_token(file.id, at(0), 0, at(100))
        .expect("take")
        .expect("the re-issued token is usable");
    assert_eq!(spent.token.expose_secret(), "same");
    assert_eq!(
        spent.issued_at,
        at(50),
        "its age counts from the re-listing"
    );
    // Superseded by another token, then listed again: usable again.
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "other")], at(200))
        .expect("store");
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "other")], at(210))
        .expect("store");
    let again = ledger
        .take_token(file.id, at(0), 0, at(300))
        .expect("take")
        .expect("token");
    assert_eq!(again.token.expose_secret(), "other");
    // The spent one comes back: never handed out again.
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "same")], at(400))
        .expect("store");
    assert!(
        ledger
            .take_token(file.id, at(0), 0, at(500))
            .expect("take")
            .is_none(),
        "a spent token is never presented again"
    );
}

//! The access token kept across runs, per credential set (see migration
//! 0005): read before authenticating, written after, erased on a 401.

use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use super::{Ledger, Result};
use crate::clock::Millis;

impl Ledger {
    /// The stored access token of `credentials` still usable at `now`.
    pub fn access_token(
        &self,
        credentials: &str,
        now: Millis,
    ) -> Result<Option<(SecretString, Millis)>> {
        let row: Option<(String, Millis)> = self
            .conn
            .query_row(
                "SELECT token, use_until FROM access_tokens
                 WHERE credentials = ?1 AND use_until > ?2",
                params![credentials, now],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(token, until)| (SecretString::from(token), until)))
    }

    /// Keeps the access token of `credentials` until `use_until`.
    pub fn save_access_token(
        &mut self,
        credentials: &str,
        token: &SecretString,
        use_until: Millis,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO access_tokens (credentials, token, use_until) VALUES (?1, ?2, ?3)
             ON CONFLICT (credentials) DO UPDATE SET token = ?2, use_until = ?3",
            params![credentials, token.expose_secret(), use_until],
        )?;
        Ok(())
    }

    /// Forgets the access token of `credentials` if it is still `token`
    /// (the API refused it; another process may have stored a newer one).
    pub fn erase_access_token(&mut self, credentials: &str, token: &SecretString) -> Result<()> {
        self.conn.execute(
            "DELETE FROM access_tokens WHERE credentials = ?1 AND token = ?2",
            params![credentials, token.expose_secret()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_until_it_expires_and_erased_only_if_unchanged() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let at = Millis::from_unix_ms;
        let first = SecretString::from("first".to_owned());
        assert!(ledger.access_token("k", at(0)).expect("read").is_none());
        ledger
            .save_access_token("k", &first, at(100))
            .expect("save");
        let (token, until) = ledger
            .access_token("k", at(50))
            .expect("read")
            .expect("kept");
        assert_eq!((token.expose_secret(), until), ("first", at(100)));
        assert!(
            ledger.access_token("k", at(100)).expect("read").is_none(),
            "expired"
        );
        assert!(
            ledger
                .access_token("other", at(50))
                .expect("read")
                .is_none()
        );
        let second = SecretString::from("second".to_owned());
        ledger
            .save_access_token("k", &second, at(200))
            .expect("save");
        ledger.erase_access_token("k", &first).expect("erase");
        assert!(
            ledger.access_token("k", at(50)).expect("read").is_some(),
            "newer kept"
        );
        ledger.erase_access_token("k", &second).expect("erase");
        assert!(ledger.access_token("k", at(50)).expect("read").is_none());
    }
}

//! The access token's life: cached in memory, kept across runs in a
//! [`TokenStore`] (the ledger), fetched behind one lock when neither has a
//! usable one, and forgotten when the API refuses it. A process
//! authenticates at most once at a time, and a `sync` started by cron reuses
//! the token of the previous run instead of abandoning one per run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::auth::CachedToken;
use super::paging::Learned;
use super::{CloudClient, CloudError, Credentials};
use crate::clock::Millis;

/// What each listing endpoint has shown of its paging rules.
#[derive(Debug, Default)]
pub(super) struct Paging {
    pub(super) urls: Learned,
    pub(super) records: Learned,
}

/// An access token as a store keeps it.
pub struct StoredToken {
    /// The token (secret).
    pub value: SecretString,
    /// When to stop using it.
    pub use_until: Millis,
}

/// A boxed future, for a trait that must stay object-safe.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where access tokens outlive the process. `credentials` names the
/// credential set (a hash: the API base, App ID, user and enterprise), so a
/// token is never used for credentials it was not issued to. A store that
/// fails is logged and otherwise ignored: the token is then fetched anew.
pub trait TokenStore: Send + Sync {
    /// The stored token of `credentials`, if still usable.
    fn load<'a>(&'a self, credentials: &'a str) -> Pending<'a, Option<StoredToken>>;
    /// Keeps a freshly fetched token.
    fn save<'a>(&'a self, credentials: &'a str, token: &'a StoredToken) -> Pending<'a, ()>;
    /// Forgets `token` (the API refused it).
    fn erase<'a>(&'a self, credentials: &'a str, token: &'a SecretString) -> Pending<'a, ()>;
}

impl CloudClient {
    /// The name of this client's credential set in a [`TokenStore`].
    fn credentials_key(&self) -> Option<String> {
        let Credentials::App(creds) = &self.settings.credentials else {
            return None;
        };
        let text = format!(
            "{}\n{}\n{}\n{}",
            self.settings.api_base,
            creds.app_id,
            creds.user_id.as_deref().unwrap_or(""),
            creds.corp_id.as_deref().unwrap_or("")
        );
        Some(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The current access token and its generation: the cached one, else
    /// the stored one, else a new one (and then stored).
    pub(super) async fn access_token(&self) -> Result<(SecretString, u64), CloudError> {
        let (token, generation, _) = self.token_in(false).await?;
        Ok((token, generation))
    }

    /// [`Self::access_token`]; with `slot_held`, the caller holds a request
    /// slot of the rate cap, which a first authentication uses instead of
    /// waiting for its own. Also tells whether the API was asked (the slot
    /// is then spent).
    pub(super) async fn token_in(
        &self,
        slot_held: bool,
    ) -> Result<(SecretString, u64, bool), CloudError> {
        let creds = match &self.settings.credentials {
            Credentials::Static(token) => return Ok((token.clone(), 0, false)),
            Credentials::App(creds) => creds,
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Millis::now() < t.use_until) {
            return Ok((token.value.clone(), token.generation, false));
        }
        if let Some(refused) = self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(refused);
        }
        let key = self.credentials_key().unwrap_or_default();
        let stored = match &self.store {
            Some(store) => store.load(&key).await,
            None => None,
        };
        let mut asked = false;
        let token = match stored.filter(|t| Millis::now() < t.use_until) {
            Some(stored) => {
                tracing::info!("reusing the access token kept by an earlier run");
                stored
            }
            None => {
                asked = true;
                let answer = match self.authenticate(creds, slot_held).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        // Kept for the rest of a running poll (one failed
                        // authentication, not one per meeting); between
                        // polls only a refusal retrying cannot fix is kept,
                        // so a worker's passing failure costs no one else.
                        if self.polling.load(Ordering::Relaxed) || !e.is_retryable() {
                            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(e.clone());
                        }
                        return Err(e);
                    }
                };
                let fresh = StoredToken {
                    use_until: answer.use_until(Millis::now()),
                    value: SecretString::from(answer.access_token),
                };
                if let Some(store) = &self.store {
                    store.save(&key, &fresh).await;
                }
                fresh
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let out = (token.value.clone(), generation, asked);
        *cached = Some(CachedToken {
            value: token.value,
            use_until: token.use_until,
            generation,
        });
        Ok(out)
    }

    /// Authenticates now (or confirms a kept token is still valid by the
    /// clock), for `check-config --online`.
    pub async fn check_authentication(&self) -> Result<(), CloudError> {
        self.access_token().await.map(|_| ())
    }

    /// A new poll begins: an authentication that failed during the last
    /// one may be tried again (once, however many meetings ask).
    pub fn begin_poll(&self) {
        self.polling.store(true, Ordering::Relaxed);
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A poll ended: a passing authentication failure (5xx, throttled,
    /// unreachable) is forgotten, so that workers refreshing tokens before
    /// the next poll try again; a refusal retrying cannot fix (a wrong key,
    /// a certificate) is kept until then.
    pub fn end_poll(&self) {
        self.polling.store(false, Ordering::Relaxed);
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.as_ref().is_some_and(CloudError::is_retryable) {
            *refused = None;
        }
    }

    /// Forgets the token of `generation` (the API refused it), here and in
    /// the store, unless a newer one replaced it already.
    pub(super) async fn invalidate(&self, generation: u64) {
        let mut cached = self.token.lock().await;
        let Some(token) = cached.take_if(|t| t.generation == generation) else {
            return;
        };
        if let (Some(store), Some(key)) = (&self.store, self.credentials_key()) {
            store.erase(&key, &token.value).await;
        }
    }
}

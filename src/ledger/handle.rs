//! An async handle on the ledger: rusqlite blocks, so every call runs on
//! tokio's blocking pool, never on the async workers. One mutex serialises
//! the calls of this process; SQLite's own locking covers other processes.

use std::sync::{Arc, Mutex};

use super::{Ledger, LedgerError, Result};

/// A cloneable, `Send` handle on one [`Ledger`].
#[derive(Clone)]
pub struct LedgerHandle {
    inner: Arc<Mutex<Ledger>>,
}

impl LedgerHandle {
    /// Wraps an open ledger.
    pub fn new(ledger: Ledger) -> LedgerHandle {
        LedgerHandle {
            inner: Arc::new(Mutex::new(ledger)),
        }
    }

    /// Runs `f` with the ledger on the blocking pool and returns its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic in another call poisons the mutex; the connection is
            // still sound (SQLite rolled back), so keep using it.
            let mut ledger = inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut ledger)
        })
        .await
        .map_err(|e| LedgerError::Task(e.to_string()))?
    }
}

//! The session store, written ahead: every batch of the session's store ops is made durable
//! before the session may transmit or hand out events. The file work runs on tokio's
//! blocking pool, never on the runtime's threads.

use std::io;
use std::mem;

use super::{Driver, blocking};
use crate::store::{SessionStore, StoreError};

/// The driver's session store ([`ConnectOptions::session_store`](crate::ConnectOptions),
/// clean session off), opened and restored from at the first `connect`.
#[derive(Default)]
pub(super) enum Store {
    /// None configured (or clean session).
    #[default]
    Off,
    /// Open; boxed, as most clients have none.
    Open(Box<SessionStore>),
    /// A write never came back (its blocking task was cancelled or panicked): nothing
    /// protected by the store may be sent or delivered any more.
    Lost,
}

impl Driver {
    /// Opens the session store at the first `connect` and restores the session from it
    /// (clean session: empties it instead, and keeps nothing).
    pub(super) async fn open_store(&mut self) -> Result<(), StoreError> {
        let Some(dir) = self.options.session_store.clone() else {
            return Ok(());
        };
        if matches!(self.store, Store::Open(_)) {
            return Ok(());
        }
        let client_id = self.session.config().client_id.as_str().to_owned();
        let clean = self.options.clean_session;
        let hook = self.options.store_sync_hook.clone();
        let path = dir.clone();
        let opened = blocking(move || {
            let mut store = SessionStore::open(&dir, &client_id)?;
            if clean {
                store
                    .clear()
                    .map_err(|source| StoreError::Io { path: dir, source })?;
                return Ok(None);
            }
            store.set_sync_hook(hook);
            Ok(Some(store))
        })
        .await
        .map_err(|source| StoreError::Io { path, source })??;
        let Some(store) = opened else {
            return Ok(());
        };
        // The session is fresh (never connected, nothing in flight) before the first
        // connect, so restoring cannot fail; if it did, connecting without the stored
        // state would break its guarantees, so say so instead.
        if let Err(e) = self.session.restore(store.snapshot()) {
            return Err(StoreError::Corrupt {
                path: store.dir().to_path_buf(),
                offset: 0,
                reason: e.to_string(),
            });
        }
        self.store = Store::Open(Box::new(store));
        Ok(())
    }

    /// Makes the session's pending store ops durable (one write and one fsync per batch,
    /// on tokio's blocking pool: a slow disk must not stall the runtime's thread, and so
    /// every other client and timer on it). Until this succeeds the caller polls the
    /// session for neither packets nor events.
    pub(super) async fn persist(&mut self) -> io::Result<()> {
        // Lost until the write comes back: a cancelled write leaves it so.
        let mut store = match mem::replace(&mut self.store, Store::Lost) {
            Store::Open(store) => store,
            Store::Off => {
                self.store = Store::Off;
                return Ok(());
            }
            Store::Lost => {
                return Err(io::Error::other(
                    "session store lost: a write never completed",
                ));
            }
        };
        if !store.pull(&mut self.session) {
            self.store = Store::Open(store);
            return Ok(());
        }
        let (store, result) = blocking(move || {
            let result = store.flush();
            (store, result)
        })
        .await?;
        let result = result.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("session store {}: {e}", store.dir().display()),
            )
        });
        self.store = Store::Open(store);
        result
    }

    /// Whether everything pulled from the session into the store is durable.
    pub(super) fn durable(&self) -> bool {
        match &self.store {
            Store::Off => true,
            Store::Open(store) => !store.has_pending(),
            Store::Lost => false,
        }
    }
}

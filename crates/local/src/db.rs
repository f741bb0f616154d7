//! The local stack's own tables live in the same SQLite file as the stores.

use ewf_domain::{StoreError, Timestamp};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One connection to the state file, shared by the parts of one process. Other
/// processes open their own; SQLite's locking (WAL, busy timeout, immediate
/// transactions) keeps them apart.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Connection>>);

fn storage(err: rusqlite::Error) -> StoreError {
    StoreError::new(format!("local state: {err}"))
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(storage)?;
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(storage)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(storage)?;
        Ok(Self(Arc::new(Mutex::new(connection))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        self.lock().execute_batch(sql).map_err(storage)
    }

    /// Runs `work` in an immediate (write-locking) transaction.
    pub fn immediate<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage)?;
        let value = work(&tx).map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(value)
    }

    pub fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        work(&self.lock()).map_err(storage)
    }
}

pub fn parse_time(text: &str) -> Result<Timestamp, StoreError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.to_utc())
        .map_err(|err| StoreError::new(format!("local state: bad time {text:?}: {err}")))
}

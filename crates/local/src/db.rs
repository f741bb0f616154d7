//! The local stack's own tables live in the same SQLite file as the stores.

use ewf_domain::{StoreError, Timestamp};
use ewf_sqlite::SharedConnection;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The process's one connection to the state file (the stores' connection), for the
/// local stack's own tables. Other processes open their own; SQLite's locking (WAL,
/// busy timeout, immediate transactions) keeps them apart.
#[derive(Clone)]
pub struct Db(SharedConnection);

fn storage(err: rusqlite::Error) -> StoreError {
    StoreError::new(format!("local state: {err}"))
}

impl Db {
    pub fn new(connection: SharedConnection) -> Self {
        Self(connection)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        ewf_sqlite::lock(&self.0)
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

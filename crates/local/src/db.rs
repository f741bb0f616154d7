//! The local stack's own tables live in the same SQLite file as the stores.

use ewf_domain::{StoreError, Timestamp};
use ewf_sqlite::SharedConnection;
use rusqlite::Connection;

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
        self.0.lock()
    }

    /// Whether a batch of the process is open (see [`SharedConnection::batch`]).
    pub fn in_batch(&self) -> bool {
        self.0.in_batch()
    }

    pub fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        self.lock().execute_batch(sql).map_err(storage)
    }

    /// Runs `work` atomically (see [`ewf_sqlite::atomically`]).
    pub fn immediate<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        ewf_sqlite::atomically(&mut self.lock(), storage, |conn| {
            work(conn).map_err(storage)
        })
    }

    pub fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        work(&self.lock()).map_err(storage)
    }
}

pub fn parse_time(text: &str) -> Result<Timestamp, StoreError> {
    ewf_domain::time::parse(text)
        .map_err(|err| StoreError::new(format!("local state: bad time {text:?}: {err}")))
}

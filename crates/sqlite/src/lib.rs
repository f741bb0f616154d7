//! The local adapters of the ports: SQLite stores and ledger, and the offline gazetteer
//! estimator ([`gazetteer`]), for the embedded local stack and the services' tests.
//!
//! One [`SqliteStores`] holds one connection, which other code of the process may share
//! for its own tables ([`SqliteStores::connection`]). Several processes may share a
//! database file: it runs in WAL mode with a busy timeout, and every read-check-write
//! runs in a `BEGIN IMMEDIATE` transaction, so two writers never both pass a guard.

mod customers;
mod db;
mod deliveries;
mod events;
pub mod gazetteer;
mod health;
mod inventory;
mod ledger;
mod orders;
mod payments;

use db::Db;
pub use db::{BUSY_TIMEOUT, Batch, SharedConnection, atomically, connect, connect_waiting};
use ewf_domain::StoreError;
use ewf_domain::ports::{
    CustomerStore, DeliveryStore, EventStore, InventoryStore, Ledger, OrderStore, PaymentStore,
};
pub use health::{StateProblem, diagnose};
use std::path::Path;
use std::sync::Arc;

/// Every store and the ledger over one SQLite database. Cloning is cheap and shares the
/// connection.
#[derive(Clone)]
pub struct SqliteStores {
    db: Arc<Db>,
}

impl SqliteStores {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, BUSY_TIMEOUT)
    }

    /// [`SqliteStores::open`], waiting at most `busy_timeout` for a lock another process
    /// holds.
    pub fn open_waiting(
        path: &Path,
        busy_timeout: std::time::Duration,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            db: Arc::new(Db::open(path, busy_timeout)?),
        })
    }

    /// A private in-memory database, gone when the last clone is dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self {
            db: Arc::new(Db::in_memory()?),
        })
    }

    /// The connection, for tables of its own in the same database.
    pub fn connection(&self) -> SharedConnection {
        self.db.connection()
    }

    pub fn customers(&self) -> Arc<dyn CustomerStore> {
        self.db.clone()
    }

    pub fn inventory(&self) -> Arc<dyn InventoryStore> {
        self.db.clone()
    }

    pub fn payments(&self) -> Arc<dyn PaymentStore> {
        self.db.clone()
    }

    pub fn deliveries(&self) -> Arc<dyn DeliveryStore> {
        self.db.clone()
    }

    pub fn orders(&self) -> Arc<dyn OrderStore> {
        self.db.clone()
    }

    pub fn events(&self) -> Arc<dyn EventStore> {
        self.db.clone()
    }

    pub fn ledger(&self) -> Arc<dyn Ledger> {
        self.db.clone()
    }
}

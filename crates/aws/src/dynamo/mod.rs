//! DynamoDB adapters of the store ports and the ledger. Every conditional write goes
//! through [`table::Table::write`]: alone, or in one transaction with its saga step.

mod capacity;
mod codec;
mod customers;
mod deliveries;
mod events;
mod expr;
mod inventory;
mod ledger;
mod orders;
mod payments;
mod table;

pub use capacity::take as take_consumed_capacity;
pub use customers::DynamoCustomers;
pub use deliveries::DynamoDeliveries;
pub use events::DynamoEvents;
pub use inventory::DynamoInventory;
pub use ledger::DynamoLedger;
pub use orders::DynamoOrders;
pub use payments::DynamoPayments;

use codec::{Attributes, from_item};
use ewf_domain::{StoreError, WriteError};
use serde::de::DeserializeOwned;
use table::Table;

/// The record with this key, if any.
async fn read<T: DeserializeOwned>(
    table: &Table,
    key: Attributes,
    money: &[&str],
) -> Result<Option<T>, StoreError> {
    table
        .get(key)
        .await?
        .map(|item| from_item(&item, money))
        .transpose()
}

/// The record an update returned.
fn updated<T: DeserializeOwned>(item: Option<Attributes>, money: &[&str]) -> Result<T, WriteError> {
    let item = item.ok_or_else(|| StoreError::new("DynamoDB returned no item after an update"))?;
    Ok(from_item(&item, money)?)
}

/// Whether a put guarded by "not there yet" wrote the item.
fn created(result: Result<Option<Attributes>, WriteError>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(WriteError::ConditionFailed | WriteError::NotFound) => Ok(false),
        Err(WriteError::Store(err)) => Err(err),
        Err(WriteError::AlreadyDone(_)) => Err(StoreError::new(
            "a write without a step was taken for a step",
        )),
    }
}

use super::codec::{key, number, to_item};
use super::expr::Expr;
use super::ledger::DynamoLedger;
use super::table::{Guarded, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use ewf_domain::ports::{InventoryStore, Step};
use ewf_domain::{Item, ItemId, StockMove, StoreError, WriteError};

const ITEM_ID: &str = "itemId";
const AVAILABLE: &str = "available";
const RESERVED: &str = "reserved";
const MONEY: &[&str] = &["price"];

/// InventoryTable, keyed by `itemId`; stock moves are atomic counter updates.
#[derive(Clone, Debug)]
pub struct DynamoInventory {
    table: Table,
    ledger: DynamoLedger,
}

impl DynamoInventory {
    pub fn new(client: Client, table: impl Into<String>, ledger_table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client.clone(), table),
            ledger: DynamoLedger::new(client, ledger_table),
        }
    }

    /// Writes many items (seeding), replacing those with the same ids and their stock.
    pub async fn batch_put(&self, items: &[Item]) -> Result<(), StoreError> {
        let items = items
            .iter()
            .map(|item| to_item(item, MONEY))
            .collect::<Result<_, _>>()?;
        self.table.batch_put(items).await
    }

    /// Writes the items not in the table yet (seeding without reset): existing items keep
    /// their stock. Returns how many were written; of items with the same id, the first.
    ///
    /// In batches: one consistent read of which ids exist, then batch puts of the others.
    /// Only a seed creates items (an order cannot reserve an item that does not exist), so
    /// seeds take a lease in the ledger for their read-then-write: no other seed can
    /// create an item between the read and the write, and no order can have touched it.
    pub async fn put_absent(&self, items: &[Item]) -> Result<usize, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let items: Vec<&Item> = items
            .iter()
            .filter(|item| seen.insert(&item.item_id))
            .collect();
        let lease = self
            .ledger
            .lease(SEED_LEASE, SEED_LEASE_TERM, SEED_LEASE_WAIT)
            .await?;
        let keys = items
            .iter()
            .map(|item| key([(ITEM_ID, item.item_id.as_str())]))
            .collect();
        let written = async {
            let present = self.table.present(keys, ITEM_ID).await?;
            let absent = items
                .into_iter()
                .filter(|item| !present.contains(item.item_id.as_str()))
                .map(|item| to_item(item, MONEY))
                .collect::<Result<Vec<_>, _>>()?;
            let count = absent.len();
            self.table.batch_put(absent).await?;
            Ok::<_, StoreError>(count)
        }
        .await;
        lease.release().await?;
        written
    }
}

/// The lease seeds take on the inventory (see [`DynamoInventory::put_absent`]), how
/// long it lasts if its holder dies, and how long a seed waits for another.
const SEED_LEASE: &str = "lease#seed-inventory";
const SEED_LEASE_TERM: std::time::Duration = std::time::Duration::from_secs(300);
const SEED_LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The counter a move needs to be positive (see [`StockMove::allowed`]).
fn guard(movement: StockMove) -> Option<&'static str> {
    match movement {
        StockMove::Reserve => Some(AVAILABLE),
        StockMove::Unreserve | StockMove::Remove => Some(RESERVED),
        StockMove::Return => None,
    }
}

#[async_trait]
impl InventoryStore for DynamoInventory {
    async fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        super::read(&self.table, key([(ITEM_ID, id.as_str())]), MONEY).await
    }

    async fn put(&self, item: &Item, overwrite: bool) -> Result<bool, StoreError> {
        let attributes = to_item(item, MONEY)?;
        if overwrite {
            self.table.put(attributes).await?;
            return Ok(true);
        }
        let mut expr = Expr::default();
        let condition = expr.absent(ITEM_ID);
        super::created(
            self.table
                .write(Guarded::put(attributes, condition, expr))
                .await,
        )
    }

    async fn apply(
        &self,
        id: &ItemId,
        movement: StockMove,
        step: Option<&Step>,
    ) -> Result<Item, WriteError> {
        let (available_change, reserved_change) = movement.deltas();
        let mut expr = Expr::default();
        let (available, reserved) = (expr.name(AVAILABLE), expr.name(RESERVED));
        let update = format!(
            "SET {available} = {available} + {}, {reserved} = {reserved} + {}",
            expr.value(number(available_change)),
            expr.value(number(reserved_change)),
        );
        let mut condition = expr.exists(ITEM_ID);
        if let Some(counter) = guard(movement) {
            condition = format!(
                "{condition} AND {} >= {}",
                expr.name(counter),
                expr.value(number(1))
            );
        }
        let guarded = Guarded::update(key([(ITEM_ID, id.as_str())]), update, condition, expr);
        let after = self.ledger.write(&self.table, guarded, step).await?;
        super::updated(after, MONEY)
    }
}

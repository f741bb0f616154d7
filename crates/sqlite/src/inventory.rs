use crate::db::{Context, Db, column, must_exist};
use async_trait::async_trait;
use ewf_domain::ports::{InventoryStore, Step};
use ewf_domain::{Item, ItemId, Money, StockMove, StoreError, WriteError};
use rusqlite::{OptionalExtension, Row, params};

fn item(row: &Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        item_id: column(row, "item_id", ItemId::parse)?,
        name: row.get("name")?,
        description: row.get("description")?,
        price: column(row, "price", str::parse::<Money>)?,
        available: row.get("available")?,
        reserved: row.get("reserved")?,
    })
}

#[async_trait]
impl InventoryStore for Db {
    async fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        self.read("cannot read an item", |conn| {
            conn.prepare_cached("SELECT * FROM items WHERE item_id = ?1")?
                .query_row([id.as_str()], item)
                .optional()
        })
    }

    async fn put(&self, item: &Item, overwrite: bool) -> Result<bool, StoreError> {
        // Without overwrite an existing item is left alone, stock and all.
        let sql = if overwrite {
            "INSERT OR REPLACE INTO items (item_id, name, description, price, available, reserved)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        } else {
            "INSERT OR IGNORE INTO items (item_id, name, description, price, available, reserved)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        };
        let written = self.read("cannot write an item", |conn| {
            conn.execute(
                sql,
                params![
                    item.item_id.as_str(),
                    item.name,
                    item.description,
                    item.price.to_string(),
                    item.available,
                    item.reserved,
                ],
            )
        })?;
        Ok(written == 1)
    }

    async fn apply(
        &self,
        id: &ItemId,
        movement: StockMove,
        step: Option<&Step>,
    ) -> Result<Item, WriteError> {
        let (available, reserved) = movement.deltas();
        self.write(step, |conn| {
            must_exist(
                conn,
                "SELECT 1 FROM items WHERE item_id = ?1",
                [id.as_str()],
            )?;
            // The guard of StockMove::allowed: no counter may go below zero.
            let moved = conn
                .prepare_cached(
                    "UPDATE items SET available = available + ?2, reserved = reserved + ?3
                     WHERE item_id = ?1 AND available + ?2 >= 0 AND reserved + ?3 >= 0
                     RETURNING *",
                )
                .context("cannot prepare a statement")?
                .query_row(params![id.as_str(), available, reserved], item)
                .optional()
                .context("cannot move stock")?;
            moved.ok_or(WriteError::ConditionFailed)
        })
    }
}

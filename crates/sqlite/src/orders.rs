use crate::db::{Context, Db, column, optional_column, optional_text, parse_timestamp, timestamp};
use async_trait::async_trait;
use ewf_domain::ports::{OrderStore, Step};
use ewf_domain::{
    Address, CustomerId, ItemId, Mode, Money, Order, OrderId, OrderStatus, OrderUpdate, PaymentId,
    StoreError, Timestamp, WriteError,
};
use rusqlite::{OptionalExtension, Row, params};

fn order(row: &Row<'_>) -> rusqlite::Result<Order> {
    Ok(Order {
        customer_id: column(row, "customer_id", CustomerId::parse)?,
        order_id: column(row, "order_id", OrderId::parse)?,
        mode: column(row, "mode", str::parse::<Mode>)?,
        order_status: column(row, "order_status", str::parse::<OrderStatus>)?,
        item_id: column(row, "item_id", ItemId::parse)?,
        item_price: optional_column(row, "item_price", str::parse::<Money>)?,
        delivery_price: optional_column(row, "delivery_price", str::parse::<Money>)?,
        total_price: optional_column(row, "total_price", str::parse::<Money>)?,
        payment_id: optional_column(row, "payment_id", PaymentId::parse)?,
        delivery_address: optional_column(row, "delivery_address", Address::parse)?,
        failure_reason: row.get("failure_reason")?,
        order_date: column(row, "order_date", parse_timestamp)?,
        update_date: column(row, "update_date", parse_timestamp)?,
    })
}

#[async_trait]
impl OrderStore for Db {
    async fn get(
        &self,
        customer: &CustomerId,
        order_id: &OrderId,
    ) -> Result<Option<Order>, StoreError> {
        self.read("cannot read an order", |conn| {
            conn.prepare_cached("SELECT * FROM orders WHERE customer_id = ?1 AND order_id = ?2")?
                .query_row([customer.as_str(), order_id.as_str()], order)
                .optional()
        })
    }

    async fn create(&self, order: &Order) -> Result<bool, StoreError> {
        let created = self.read("cannot create an order", |conn| {
            conn.prepare_cached(
                "INSERT INTO orders (customer_id, order_id, mode, order_status, item_id,
                     item_price, delivery_price, total_price, payment_id, delivery_address,
                     failure_reason, order_date, update_date)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                order.customer_id.as_str(),
                order.order_id.as_str(),
                order.mode.as_str(),
                order.order_status.as_str(),
                order.item_id.as_str(),
                optional_text(order.item_price.as_ref()),
                optional_text(order.delivery_price.as_ref()),
                optional_text(order.total_price.as_ref()),
                optional_text(order.payment_id.as_ref()),
                optional_text(order.delivery_address.as_ref()),
                order.failure_reason,
                timestamp(&order.order_date),
                timestamp(&order.update_date),
            ])
        })?;
        Ok(created == 1)
    }

    async fn advance(
        &self,
        customer: &CustomerId,
        order_id: &OrderId,
        status: OrderStatus,
        update: &OrderUpdate,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Order, WriteError> {
        self.write(step, |conn| {
            // Read and written in one transaction that holds the write lock: nothing
            // can change the status in between.
            let current: Option<String> = conn
                .prepare_cached(
                    "SELECT order_status FROM orders WHERE customer_id = ?1 AND order_id = ?2",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([customer.as_str(), order_id.as_str()], |row| row.get(0))
                        .optional()
                })
                .context("cannot read an order")?;
            let current = current.ok_or(WriteError::NotFound)?;
            if !status
                .predecessors()
                .iter()
                .any(|from| from.as_str() == current)
            {
                return Err(WriteError::ConditionFailed);
            }
            // COALESCE keeps a field the update leaves out, as OrderUpdate::apply does.
            conn.prepare_cached(
                "UPDATE orders SET order_status = ?3, update_date = ?4,
                     item_price = COALESCE(?5, item_price),
                     delivery_price = COALESCE(?6, delivery_price),
                     total_price = COALESCE(?7, total_price),
                     payment_id = COALESCE(?8, payment_id),
                     delivery_address = COALESCE(?9, delivery_address),
                     failure_reason = COALESCE(?10, failure_reason)
                 WHERE customer_id = ?1 AND order_id = ?2
                 RETURNING *",
            )
            .context("cannot prepare a statement")?
            .query_row(
                params![
                    customer.as_str(),
                    order_id.as_str(),
                    status.as_str(),
                    timestamp(&now),
                    optional_text(update.item_price.as_ref()),
                    optional_text(update.delivery_price.as_ref()),
                    optional_text(update.total_price.as_ref()),
                    optional_text(update.payment_id.as_ref()),
                    optional_text(update.delivery_address.as_ref()),
                    update.failure_reason,
                ],
                order,
            )
            .context("cannot advance an order")
            .map_err(WriteError::from)
        })
    }

    async fn overdue(
        &self,
        created_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let unsettled: Vec<&str> = OrderStatus::ALL
            .iter()
            .filter(|status| !status.is_settled())
            .map(|status| status.as_str())
            .collect();
        let placeholders = vec!["?"; unsettled.len()].join(", ");
        let candidates = self.read("cannot read the unsettled orders", |conn| {
            conn.prepare_cached(&format!(
                "SELECT * FROM orders WHERE mode = ? AND order_status IN ({placeholders})"
            ))?
            .query_map(
                rusqlite::params_from_iter(std::iter::once(Mode::Events.as_str()).chain(unsettled)),
                order,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        // Times are compared as times: their text does not sort as they do.
        Ok(candidates
            .into_iter()
            .filter(|order| order.order_date < created_before)
            .take(limit)
            .collect())
    }
}

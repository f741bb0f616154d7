use crate::db::{Context, Db, column, must_exist, parse_timestamp, timestamp};
use async_trait::async_trait;
use ewf_domain::ports::{DeliveryStore, Step};
use ewf_domain::{
    Address, CustomerId, Delivery, DeliveryStatus, Mode, OrderId, StoreError, Timestamp, WriteError,
};
use rusqlite::{OptionalExtension, Row, params};

const EXISTS: &str = "SELECT 1 FROM deliveries WHERE customer_id = ?1 AND order_id = ?2";

fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        customer_id: column(row, "customer_id", CustomerId::parse)?,
        order_id: column(row, "order_id", OrderId::parse)?,
        address: column(row, "address", Address::parse)?,
        status: column(row, "status", str::parse::<DeliveryStatus>)?,
        mode: column(row, "mode", str::parse::<Mode>)?,
        task_token: row.get("task_token")?,
        created_at: column(row, "created_at", parse_timestamp)?,
        updated_at: column(row, "updated_at", parse_timestamp)?,
    })
}

#[async_trait]
impl DeliveryStore for Db {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.read("cannot read a delivery", |conn| {
            conn.prepare_cached(
                "SELECT * FROM deliveries WHERE customer_id = ?1 AND order_id = ?2",
            )?
            .query_row([customer.as_str(), order.as_str()], delivery)
            .optional()
        })
    }

    async fn start(&self, delivery: &Delivery, step: Option<&Step>) -> Result<(), WriteError> {
        self.write(step, |conn| {
            let started = conn
                .prepare_cached(
                    "INSERT INTO deliveries
                     (customer_id, order_id, address, status, mode, task_token, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                )
                .context("cannot prepare a statement")?
                .execute(params![
                    delivery.customer_id.as_str(),
                    delivery.order_id.as_str(),
                    delivery.address.as_str(),
                    // Every delivery starts out on its way.
                    DeliveryStatus::Delivering.as_str(),
                    delivery.mode.as_str(),
                    delivery.task_token,
                    timestamp(&delivery.created_at),
                    timestamp(&delivery.updated_at),
                ])
                .context("cannot start a delivery")?;
            if started == 1 {
                Ok(())
            } else {
                Err(WriteError::ConditionFailed)
            }
        })
    }

    async fn finish(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: DeliveryStatus,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Delivery, WriteError> {
        self.write(step, |conn| {
            must_exist(conn, EXISTS, [customer.as_str(), order.as_str()])?;
            let finished = conn
                .prepare_cached(
                    "UPDATE deliveries SET status = ?3, updated_at = ?4
                     WHERE customer_id = ?1 AND order_id = ?2 AND status = ?5 RETURNING *",
                )
                .context("cannot prepare a statement")?
                .query_row(
                    params![
                        customer.as_str(),
                        order.as_str(),
                        status.as_str(),
                        timestamp(&now),
                        DeliveryStatus::Delivering.as_str(),
                    ],
                    delivery,
                )
                .optional()
                .context("cannot finish a delivery")?;
            finished.ok_or(WriteError::ConditionFailed)
        })
    }

    async fn attach_token(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        token: &str,
    ) -> Result<Delivery, WriteError> {
        self.write(None, |conn| {
            let attached = conn
                .prepare_cached(
                    "UPDATE deliveries SET task_token = ?3
                     WHERE customer_id = ?1 AND order_id = ?2 RETURNING *",
                )
                .context("cannot prepare a statement")?
                .query_row([customer.as_str(), order.as_str(), token], delivery)
                .optional()
                .context("cannot store a task token")?;
            attached.ok_or(WriteError::NotFound)
        })
    }
}

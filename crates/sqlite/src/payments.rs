use crate::db::{Context, Db, column, must_exist, parse_timestamp, timestamp};
use async_trait::async_trait;
use ewf_domain::ports::{PaymentStore, Step};
use ewf_domain::{Money, Payment, PaymentId, PaymentStatus, StoreError, Timestamp, WriteError};
use rusqlite::{OptionalExtension, Row, params};

fn payment(row: &Row<'_>) -> rusqlite::Result<Payment> {
    Ok(Payment {
        payment_id: column(row, "payment_id", PaymentId::parse)?,
        amount: column(row, "amount", str::parse::<Money>)?,
        method: row.get("method")?,
        status: column(row, "status", str::parse::<PaymentStatus>)?,
        created_at: column(row, "created_at", parse_timestamp)?,
        updated_at: column(row, "updated_at", parse_timestamp)?,
    })
}

#[async_trait]
impl PaymentStore for Db {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        self.read("cannot read a payment", |conn| {
            conn.prepare_cached("SELECT * FROM payments WHERE payment_id = ?1")?
                .query_row([id.as_str()], payment)
                .optional()
        })
    }

    async fn create(&self, payment: &Payment, step: Option<&Step>) -> Result<(), WriteError> {
        self.write(step, |conn| {
            let created = conn.prepare_cached("INSERT INTO payments (payment_id, amount, method, status, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING").context("cannot prepare a statement")?.execute(
                    params![
                        payment.payment_id.as_str(),
                        payment.amount.to_string(),
                        payment.method,
                        payment.status.as_str(),
                        timestamp(&payment.created_at),
                        timestamp(&payment.updated_at),
                    ],
                )
                .context("cannot create a payment")?;
            if created == 1 { Ok(()) } else { Err(WriteError::ConditionFailed) }
        })
    }

    async fn cancel(
        &self,
        id: &PaymentId,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Payment, WriteError> {
        self.write(step, |conn| {
            must_exist(
                conn,
                "SELECT 1 FROM payments WHERE payment_id = ?1",
                [id.as_str()],
            )?;
            let canceled = conn
                .prepare_cached(
                    "UPDATE payments SET status = ?2, updated_at = ?3
                     WHERE payment_id = ?1 AND status = ?4 RETURNING *",
                )
                .context("cannot prepare a statement")?
                .query_row(
                    params![
                        id.as_str(),
                        PaymentStatus::Canceled.as_str(),
                        timestamp(&now),
                        PaymentStatus::Paid.as_str(),
                    ],
                    payment,
                )
                .optional()
                .context("cannot cancel a payment")?;
            canceled.ok_or(WriteError::ConditionFailed)
        })
    }
}

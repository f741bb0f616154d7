use super::codec::{key, text, time, to_item};
use super::expr::Expr;
use super::ledger::DynamoLedger;
use super::table::{Guarded, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use ewf_domain::ports::{PaymentStore, Step};
use ewf_domain::{Payment, PaymentId, PaymentStatus, StoreError, Timestamp, WriteError};

const PAYMENT_ID: &str = "paymentId";
const MONEY: &[&str] = &["amount"];

/// PaymentTable, keyed by `paymentId`.
#[derive(Clone, Debug)]
pub struct DynamoPayments {
    table: Table,
    ledger: DynamoLedger,
}

impl DynamoPayments {
    pub fn new(client: Client, table: impl Into<String>, ledger_table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client.clone(), table),
            ledger: DynamoLedger::new(client, ledger_table),
        }
    }
}

#[async_trait]
impl PaymentStore for DynamoPayments {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        super::read(&self.table, key([(PAYMENT_ID, id.as_str())]), MONEY).await
    }

    async fn create(&self, payment: &Payment, step: Option<&Step>) -> Result<(), WriteError> {
        let mut expr = Expr::default();
        let condition = expr.absent(PAYMENT_ID);
        let guarded = Guarded::put(to_item(payment, MONEY)?, condition, expr);
        self.ledger.write(&self.table, guarded, step).await?;
        Ok(())
    }

    async fn cancel(
        &self,
        id: &PaymentId,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Payment, WriteError> {
        let mut expr = Expr::default();
        let update = format!(
            "SET {}, {}",
            expr.equals("status", text(PaymentStatus::Canceled.as_str())),
            expr.equals("updatedAt", time(now)),
        );
        let condition = format!(
            "{} AND {}",
            expr.exists(PAYMENT_ID),
            expr.equals("status", text(PaymentStatus::Paid.as_str())),
        );
        let guarded = Guarded::update(key([(PAYMENT_ID, id.as_str())]), update, condition, expr);
        let after = self.ledger.write(&self.table, guarded, step).await?;
        super::updated(after, MONEY)
    }
}

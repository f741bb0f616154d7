use super::codec::{key, text, time, to_item};
use super::expr::Expr;
use super::ledger::DynamoLedger;
use super::table::{Guarded, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use ewf_domain::ports::{DeliveryStore, Step};
use ewf_domain::{
    CustomerId, Delivery, DeliveryStatus, OrderId, StoreError, Timestamp, WriteError,
};

const CUSTOMER_ID: &str = "customerId";
const ORDER_ID: &str = "orderId";
const STATUS: &str = "status";

/// DeliveryTable, keyed by `customerId` and `orderId`.
#[derive(Clone, Debug)]
pub struct DynamoDeliveries {
    table: Table,
    ledger: DynamoLedger,
}

impl DynamoDeliveries {
    pub fn new(client: Client, table: impl Into<String>, ledger_table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client.clone(), table),
            ledger: DynamoLedger::new(client, ledger_table),
        }
    }

    /// Sets attributes of an existing delivery (`updates` are SET clauses), guarded by
    /// `extra` conditions besides its existence.
    async fn change(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        mut expr: Expr,
        updates: &[String],
        extra: Option<String>,
        step: Option<&Step>,
    ) -> Result<Delivery, WriteError> {
        let update = format!("SET {}", updates.join(", "));
        let exists = expr.exists(ORDER_ID);
        let condition =
            extra.map_or_else(|| exists.clone(), |extra| format!("{exists} AND {extra}"));
        let key = key([(CUSTOMER_ID, customer.as_str()), (ORDER_ID, order.as_str())]);
        let guarded = Guarded::update(key, update, condition, expr);
        let after = self.ledger.write(&self.table, guarded, step).await?;
        super::updated(after, &[])
    }
}

#[async_trait]
impl DeliveryStore for DynamoDeliveries {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Delivery>, StoreError> {
        let key = key([(CUSTOMER_ID, customer.as_str()), (ORDER_ID, order.as_str())]);
        super::read(&self.table, key, &[]).await
    }

    async fn start(&self, delivery: &Delivery, step: Option<&Step>) -> Result<(), WriteError> {
        let mut expr = Expr::default();
        let condition = expr.absent(ORDER_ID);
        let guarded = Guarded::put(to_item(delivery, &[])?, condition, expr);
        self.ledger.write(&self.table, guarded, step).await?;
        Ok(())
    }

    async fn finish(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: DeliveryStatus,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Delivery, WriteError> {
        let mut expr = Expr::default();
        let updates = [
            expr.equals(STATUS, text(status.as_str())),
            expr.equals("updatedAt", time(now)),
        ];
        let delivering = expr.equals(STATUS, text(DeliveryStatus::Delivering.as_str()));
        self.change(customer, order, expr, &updates, Some(delivering), step)
            .await
    }

    async fn attach_token(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        token: &str,
    ) -> Result<Delivery, WriteError> {
        let mut expr = Expr::default();
        let updates = [expr.equals("taskToken", text(token))];
        self.change(customer, order, expr, &updates, None, None)
            .await
    }
}

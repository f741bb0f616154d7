use super::codec::{from_item, key, number, text, time, to_item};
use super::expr::Expr;
use super::ledger::DynamoLedger;
use super::table::{Guarded, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use ewf_domain::ports::{OrderStore, Step};
use ewf_domain::{
    CustomerId, Mode, Order, OrderId, OrderStatus, OrderUpdate, StoreError, Timestamp, WriteError,
};

const CUSTOMER_ID: &str = "customerId";
const ORDER_ID: &str = "orderId";
const ORDER_STATUS: &str = "orderStatus";
const MONEY: &[&str] = &["itemPrice", "deliveryPrice", "totalPrice"];

/// OrderTable, keyed by `customerId` and `orderId`.
#[derive(Clone, Debug)]
pub struct DynamoOrders {
    table: Table,
    ledger: DynamoLedger,
}

impl DynamoOrders {
    pub fn new(client: Client, table: impl Into<String>, ledger_table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client.clone(), table),
            ledger: DynamoLedger::new(client, ledger_table),
        }
    }
}

#[async_trait]
impl OrderStore for DynamoOrders {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>, StoreError> {
        let key = key([(CUSTOMER_ID, customer.as_str()), (ORDER_ID, order.as_str())]);
        super::read(&self.table, key, MONEY).await
    }

    async fn create(&self, order: &Order) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let condition = expr.absent(ORDER_ID);
        super::created(
            self.table
                .write(Guarded::put(to_item(order, MONEY)?, condition, expr))
                .await,
        )
    }

    async fn advance(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: OrderStatus,
        update: &OrderUpdate,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Order, WriteError> {
        let predecessors = status.predecessors();
        if predecessors.is_empty() {
            // No status may be replaced by the first one, and `IN ()` is no expression.
            return match self.get(customer, order).await? {
                Some(_) => Err(WriteError::ConditionFailed),
                None => Err(WriteError::NotFound),
            };
        }
        let mut expr = Expr::default();
        let mut sets = vec![
            expr.equals(ORDER_STATUS, text(status.as_str())),
            expr.equals("updateDate", time(now)),
        ];
        let learned = [
            ("itemPrice", update.item_price.map(number)),
            ("deliveryPrice", update.delivery_price.map(number)),
            ("totalPrice", update.total_price.map(number)),
            (
                "paymentId",
                update.payment_id.as_ref().map(|id| text(id.as_str())),
            ),
            (
                "deliveryAddress",
                update
                    .delivery_address
                    .as_ref()
                    .map(|address| text(address.as_str())),
            ),
            ("failureReason", update.failure_reason.clone().map(text)),
        ];
        for (attribute, value) in learned {
            if let Some(value) = value {
                sets.push(expr.equals(attribute, value));
            }
        }
        let condition = format!(
            "{} AND {}",
            expr.exists(ORDER_ID),
            expr.one_of(
                ORDER_STATUS,
                predecessors.iter().map(|from| text(from.as_str()))
            )
        );
        let key = key([(CUSTOMER_ID, customer.as_str()), (ORDER_ID, order.as_str())]);
        let guarded = Guarded::update(key, format!("SET {}", sets.join(", ")), condition, expr);
        let after = self.ledger.write(&self.table, guarded, step).await?;
        super::updated(after, MONEY)
    }

    async fn overdue(
        &self,
        created_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let mut expr = Expr::default();
        let filter = format!(
            "{} AND {}",
            expr.equals("mode", text(Mode::Events.as_str())),
            expr.one_of(
                ORDER_STATUS,
                OrderStatus::ALL
                    .iter()
                    .filter(|status| !status.is_settled())
                    .map(|status| text(status.as_str()))
            )
        );
        let mut overdue = Vec::new();
        for item in self.table.scan(filter, expr).await? {
            let order: Order = from_item(&item, MONEY)?;
            // Times are compared as times: their text does not sort as they do.
            if order.order_date < created_before && overdue.len() < limit {
                overdue.push(order);
            }
        }
        Ok(overdue)
    }
}

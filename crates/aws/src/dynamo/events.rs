use super::codec::{from_item, to_item};
use super::expr::Expr;
use super::table::{Guarded, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use ewf_domain::ports::EventStore;
use ewf_domain::{StoreError, StoredEvent};

/// The index of EventStoreTable keyed by `orderId`, sorted by `timeWhat`.
const BY_ORDER: &str = "ByOrder";

/// EventStoreTable, keyed by `who` and `timeWhat`.
#[derive(Clone, Debug)]
pub struct DynamoEvents {
    table: Table,
}

impl DynamoEvents {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn append(&self, event: &StoredEvent) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let condition = expr.absent("timeWhat");
        super::created(
            self.table
                .write(Guarded::put(to_item(event, &[])?, condition, expr), None)
                .await,
        )
    }

    async fn for_order(&self, order_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let items = self
            .table
            .query_index(BY_ORDER, "orderId", order_id)
            .await?;
        items.iter().map(|item| from_item(item, &[])).collect()
    }
}

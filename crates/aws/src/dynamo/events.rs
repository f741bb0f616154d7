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
    /// Stores the event with a marker item keyed by its digest, in one transaction: the
    /// record's key names the delivery, the marker's its content, and either existing
    /// means the event is stored already. The marker has no `orderId`, so the order
    /// index never lists it.
    async fn append(&self, event: &StoredEvent) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let condition = expr.absent("timeWhat");
        let marker_key = format!("D#{}", event.digest);
        let marker = to_item(
            &serde_json::json!({ "who": marker_key, "timeWhat": marker_key, "eventId": event.event_id }),
            &[],
        )?;
        self.table
            .put_all(vec![
                Guarded::put(to_item(event, &[])?, condition.clone(), expr.clone()),
                Guarded::put(marker, condition, expr),
            ])
            .await
    }

    async fn for_order(&self, order_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let items = self
            .table
            .query_index(BY_ORDER, "orderId", order_id)
            .await?;
        items.iter().map(|item| from_item(item, &[])).collect()
    }
}

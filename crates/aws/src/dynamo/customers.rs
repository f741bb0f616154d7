use super::codec::{key, to_item};
use super::table::Table;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use ewf_domain::ports::CustomerStore;
use ewf_domain::{Customer, CustomerId, StoreError};

/// CustomerTable, keyed by `customerId`.
#[derive(Clone, Debug)]
pub struct DynamoCustomers {
    table: Table,
}

impl DynamoCustomers {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// Writes many customers (seeding), replacing those with the same ids.
    pub async fn batch_put(&self, customers: &[Customer]) -> Result<(), StoreError> {
        let items = customers
            .iter()
            .map(|customer| to_item(customer, &[]))
            .collect::<Result<_, _>>()?;
        self.table.batch_put(items).await
    }
}

#[async_trait]
impl CustomerStore for DynamoCustomers {
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        super::read(&self.table, key([("customerId", id.as_str())]), &[]).await
    }

    async fn put(&self, customer: &Customer) -> Result<(), StoreError> {
        self.table.put(to_item(customer, &[])?).await
    }
}

use crate::db::{Db, column};
use async_trait::async_trait;
use ewf_domain::ports::CustomerStore;
use ewf_domain::{Address, Customer, CustomerId, StoreError};
use rusqlite::{OptionalExtension, Row, params};

fn customer(row: &Row<'_>) -> rusqlite::Result<Customer> {
    Ok(Customer {
        customer_id: column(row, "customer_id", CustomerId::parse)?,
        name: row.get("name")?,
        email: row.get("email")?,
        address: column(row, "address", Address::parse)?,
        description: row.get("description")?,
    })
}

#[async_trait]
impl CustomerStore for Db {
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.read("cannot read a customer", |conn| {
            conn.prepare_cached("SELECT * FROM customers WHERE customer_id = ?1")?
                .query_row([id.as_str()], customer)
                .optional()
        })
    }

    async fn put(&self, customer: &Customer) -> Result<(), StoreError> {
        self.read("cannot write a customer", |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO customers (customer_id, name, email, address, description)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                customer.customer_id.as_str(),
                customer.name,
                customer.email,
                customer.address.as_str(),
                customer.description,
            ])
        })?;
        Ok(())
    }
}

use crate::db::Db;
use async_trait::async_trait;
use ewf_domain::StoreError;
use ewf_domain::ports::{Ledger, Step};
use serde_json::Value;

#[async_trait]
impl Ledger for Db {
    async fn recorded(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.step_outcome(key)
    }

    async fn record(&self, step: &Step) -> Result<Option<Value>, StoreError> {
        self.record_step(step)
    }
}

//! The ledger of saga steps: one item per step key, its outcome as JSON text, expiring
//! after a retention period (DynamoDB TTL on `expiresAt`).

use super::codec::{Attributes, key, number, text};
use super::expr::Expr;
use super::table::{Guarded, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use ewf_domain::ports::{Ledger, Step};
use ewf_domain::{StoreError, WriteError};
use serde_json::Value;

const STEP_KEY: &str = "stepKey";
const OUTCOME: &str = "outcome";
const EXPIRES_AT: &str = "expiresAt";
/// Long after any retry or redelivery of the step could arrive, and after the saga's
/// compensations could look for it (a workflow runs for 30 days at most; a delivery
/// may be canceled long after it started).
const RETENTION_DAYS: i64 = 365;

#[derive(Clone, Debug)]
pub struct DynamoLedger {
    table: Table,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    /// The write that records a step unless it is recorded already.
    pub(crate) fn guarded(step: &Step) -> Guarded {
        let expires_at = chrono::Utc::now() + chrono::Duration::days(RETENTION_DAYS);
        let item = Attributes::from([
            (STEP_KEY.to_owned(), text(&step.key)),
            (OUTCOME.to_owned(), text(step.outcome.to_string())),
            (EXPIRES_AT.to_owned(), number(expires_at.timestamp())),
        ]);
        let mut expr = Expr::default();
        let condition = expr.absent(STEP_KEY);
        Guarded::put(item, condition, expr)
    }

    /// The outcome of a step known to be recorded.
    pub(crate) async fn existing(&self, key: &str) -> Result<Value, StoreError> {
        self.recorded(key)
            .await?
            .ok_or_else(|| StoreError::new(format!("step {key} is recorded but could not be read")))
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn recorded(&self, step_key: &str) -> Result<Option<Value>, StoreError> {
        let Some(item) = self.table.get(key([(STEP_KEY, step_key)])).await? else {
            return Ok(None);
        };
        let Some(AttributeValue::S(outcome)) = item.get(OUTCOME) else {
            return Err(StoreError::new(format!("step {step_key} has no outcome")));
        };
        serde_json::from_str(outcome).map(Some).map_err(|err| {
            StoreError::new(format!("step {step_key} has an unreadable outcome: {err}"))
        })
    }

    async fn record(&self, step: &Step) -> Result<Option<Value>, StoreError> {
        match self.table.write(Self::guarded(step), None).await {
            Ok(_) => Ok(None),
            Err(WriteError::ConditionFailed | WriteError::NotFound) => {
                self.existing(&step.key).await.map(Some)
            }
            Err(WriteError::AlreadyDone(outcome)) => Ok(Some(outcome)),
            Err(WriteError::Store(err)) => Err(err),
        }
    }
}

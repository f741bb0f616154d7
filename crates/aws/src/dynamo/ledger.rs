//! The ledger of saga steps: one item per step key, its outcome as JSON text, expiring
//! after a retention period (DynamoDB TTL on `expiresAt`).

use super::capacity;
use super::codec::{Attributes, key, number, text};
use super::expr::Expr;
use super::table::{CONDITION_FAILED, Guarded, TRANSACTION_CONFLICT, Table, refusal};
use crate::retry::Backoff;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{CancellationReason, ReturnConsumedCapacity};
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

    /// Performs a guarded write of `table`; with a step, in one transaction with the
    /// step's entry (`attribute_not_exists(stepKey)`). Returns the item after an update
    /// (`None` after a put): a transaction returns no values, so it is read afterwards.
    pub(crate) async fn write(
        &self,
        table: &Table,
        guarded: Guarded,
        step: Option<&Step>,
    ) -> Result<Option<Attributes>, WriteError> {
        let Some(step) = step else {
            return table.write(guarded).await;
        };
        let key = Table::updated_key(&guarded);
        let items = vec![
            table.transact_item(guarded)?,
            self.table.transact_item(Self::guarded(step))?,
        ];
        let backoff = Backoff::DEFAULT;
        let mut attempt = 0;
        loop {
            let result = table
                .client()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(output) => {
                    capacity::written(output.consumed_capacity());
                    break;
                }
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
                err.as_service_error()
            else {
                return Err(table.failed("TransactWriteItems", err).into());
            };
            let reasons = canceled.cancellation_reasons();
            let code = |index: usize| reasons.get(index).and_then(CancellationReason::code);
            // The step first: a repeat replays the outcome even if the state moved on.
            if code(1) == Some(CONDITION_FAILED) {
                capacity::refused(2 * items.len() as u64);
                return Err(WriteError::AlreadyDone(self.existing(&step.key).await?));
            }
            if code(0) == Some(CONDITION_FAILED) {
                capacity::refused(2 * items.len() as u64);
                return Err(refusal(reasons.first().and_then(CancellationReason::item)));
            }
            // Concurrent transactions on the same item cancel each other: try again.
            attempt += 1;
            if attempt >= backoff.attempts
                || !reasons
                    .iter()
                    .any(|reason| reason.code() == Some(TRANSACTION_CONFLICT))
            {
                return Err(table.failed("TransactWriteItems", err).into());
            }
            tracing::debug!(table = table.name(), step = %step.key, attempt, "transaction conflict; retrying");
            backoff.wait(attempt).await;
        }
        match key {
            Some(key) => match table.get(key).await? {
                Some(item) => Ok(Some(item)),
                None => Err(StoreError::new(format!(
                    "an item of table {} vanished after its update",
                    table.name()
                ))
                .into()),
            },
            None => Ok(None),
        }
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

    /// Takes the lease `name` for `term`, waiting (up to `wait`) while another holder's
    /// lease runs; a holder that died frees it when its term ends. The lease is an item of
    /// the ledger: `stepKey` the name, `expiresAt` the end of the term.
    pub(crate) async fn lease(
        &self,
        name: &str,
        term: std::time::Duration,
        wait: std::time::Duration,
    ) -> Result<Lease, StoreError> {
        let started = std::time::Instant::now();
        let holder = ulid::Ulid::new().to_string();
        loop {
            let now = chrono::Utc::now();
            let ends = now + chrono::Duration::from_std(term).unwrap_or_default();
            let item = Attributes::from([
                (STEP_KEY.to_owned(), text(name)),
                (OUTCOME.to_owned(), text(&holder)),
                (EXPIRES_AT.to_owned(), number(ends.timestamp())),
            ]);
            let mut expr = Expr::default();
            let free = expr.absent(STEP_KEY);
            let expires = expr.name(EXPIRES_AT);
            let now_value = expr.value(number(now.timestamp()));
            let condition = format!("{free} OR {expires} < {now_value}");
            match self.table.write(Guarded::put(item, condition, expr)).await {
                Ok(_) => {
                    return Ok(Lease {
                        table: self.table.clone(),
                        name: name.to_owned(),
                        holder,
                    });
                }
                Err(WriteError::ConditionFailed | WriteError::NotFound)
                    if started.elapsed() < wait =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(WriteError::ConditionFailed | WriteError::NotFound) => {
                    return Err(StoreError::new(format!(
                        "{name} is held by another process (ledger table item {name}); retry when it has finished"
                    )));
                }
                Err(WriteError::Store(err)) => return Err(err),
                Err(WriteError::AlreadyDone(_)) => {
                    return Err(StoreError::new(format!("{name}: unexpected ledger answer")));
                }
            }
        }
    }

    /// The outcome of a step known to be recorded.
    pub(crate) async fn existing(&self, key: &str) -> Result<Value, StoreError> {
        self.recorded(key)
            .await?
            .ok_or_else(|| StoreError::new(format!("step {key} is recorded but could not be read")))
    }
}

/// A lease taken with [`DynamoLedger::lease`]; give it back with [`Lease::release`] (if
/// it is not, it ends with its term).
pub(crate) struct Lease {
    table: Table,
    name: String,
    holder: String,
}

impl Lease {
    /// Gives the lease back, unless its term ended and another process holds it now.
    pub(crate) async fn release(self) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        let mine = expr.equals(OUTCOME, text(&self.holder));
        match self
            .table
            .delete(key([(STEP_KEY, &self.name)]), mine, expr)
            .await
        {
            Ok(()) | Err(WriteError::ConditionFailed | WriteError::NotFound) => Ok(()),
            Err(WriteError::Store(err)) => Err(err),
            Err(WriteError::AlreadyDone(_)) => Ok(()),
        }
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
        match self.table.write(Self::guarded(step)).await {
            Ok(_) => Ok(None),
            Err(WriteError::ConditionFailed | WriteError::NotFound) => {
                self.existing(&step.key).await.map(Some)
            }
            Err(WriteError::AlreadyDone(outcome)) => Ok(Some(outcome)),
            Err(WriteError::Store(err)) => Err(err),
        }
    }
}

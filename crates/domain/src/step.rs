//! Performing a saga step exactly once in effect, however often it is asked for.
//!
//! The outcome of the step (what to emit, or what to reply) is computed before the
//! write and stored with it in one transaction; a repeat finds it and replays it. A
//! write the store refuses (its guard failed, or the record is missing) is recorded as
//! its own outcome, so a repeat replays the refusal too instead of trying again with
//! newer state.

use crate::entry::Reply;
use crate::events::BusEvent;
use crate::ports::{Bus, Ledger, Step};
use crate::{ServiceError, WriteError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

/// Why the store refused a step's write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    ConditionFailed,
}

impl Refusal {
    /// The refusal of a write made without a step (a manual action); a store failure
    /// is an error of its own.
    pub fn of(err: WriteError) -> Result<Self, ServiceError> {
        match err {
            WriteError::NotFound => Ok(Self::NotFound),
            WriteError::ConditionFailed => Ok(Self::ConditionFailed),
            WriteError::Store(err) => Err(err.into()),
            // Only a write that carries a step can find it recorded.
            WriteError::AlreadyDone(_) => Err(ServiceError::Unavailable(
                "a write without a step was replayed".into(),
            )),
        }
    }
}

/// Performs the step `key`: replays its recorded outcome if there is one; otherwise
/// calls `write` with the step carrying `success()`, and on a refusal records and
/// returns `refused(why)`. `success` runs only on a first attempt, so whatever it draws
/// (a payment's fate) is drawn once per step.
pub async fn perform<T, W, Fut>(
    ledger: &dyn Ledger,
    key: String,
    success: impl FnOnce() -> T,
    write: W,
    refused: impl FnOnce(Refusal) -> T,
) -> Result<T, ServiceError>
where
    T: Serialize + DeserializeOwned,
    W: FnOnce(Step) -> Fut,
    Fut: Future<Output = Result<(), WriteError>>,
{
    if let Some(recorded) = ledger.recorded(&key).await? {
        return replay(&key, recorded);
    }
    let success = success();
    let step = Step {
        key,
        outcome: to_outcome(&success)?,
    };
    let key = step.key.clone();
    let refusal = match write(step).await {
        Ok(()) => return Ok(success),
        Err(WriteError::AlreadyDone(recorded)) => return replay(&key, recorded),
        Err(err) => Refusal::of(err)?,
    };
    let outcome = refused(refusal);
    let step = Step {
        key,
        outcome: to_outcome(&outcome)?,
    };
    match ledger.record(&step).await? {
        Some(recorded) => replay(&step.key, recorded),
        None => Ok(outcome),
    }
}

/// What a compensation finds of the step `key` it would undo: the step's recorded
/// outcome, or `None` when the step was never performed. Then it never will be: `closed`
/// is recorded as its outcome, so that an attempt arriving late (a task that timed out
/// yet still ran, a redelivered event) replays `closed` and changes nothing. Undoing
/// only what the order's own steps did keeps a compensation from releasing another
/// order's stock or refunding a payment twice.
pub async fn close<T: Serialize + DeserializeOwned>(
    ledger: &dyn Ledger,
    key: String,
    closed: &T,
) -> Result<Option<T>, ServiceError> {
    let step = Step {
        key,
        outcome: to_outcome(closed)?,
    };
    match ledger.record(&step).await? {
        Some(recorded) => replay(&step.key, recorded).map(Some),
        None => {
            tracing::info!(step = step.key, "step closed before it was performed");
            Ok(None)
        }
    }
}

/// Publishes the events of a step after its write. A failure fails the invocation, and
/// its retry replays the recorded events.
pub async fn publish(bus: &dyn Bus, events: &[BusEvent]) -> Result<(), ServiceError> {
    if !events.is_empty() {
        bus.publish(events).await?;
    }
    Ok(())
}

/// Publishes the events of a step, as [`publish`] does, and replies with them: what an
/// event handler answers.
pub async fn announce(bus: &dyn Bus, events: Vec<BusEvent>) -> Result<Reply, ServiceError> {
    publish(bus, &events).await?;
    Ok(Reply::ok(events))
}

fn to_outcome(outcome: &impl Serialize) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(outcome)
        .map_err(|err| ServiceError::Unavailable(format!("cannot record a step: {err}")))
}

fn replay<T: DeserializeOwned>(key: &str, recorded: serde_json::Value) -> Result<T, ServiceError> {
    tracing::info!(step = key, "step already performed; replaying its outcome");
    serde_json::from_value(recorded).map_err(|err| {
        ServiceError::Unavailable(format!("step {key} has an unreadable outcome: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryLedger;

    async fn reserve(
        ledger: &MemoryLedger,
        stock: &std::sync::Mutex<i32>,
    ) -> Result<String, ServiceError> {
        perform(
            ledger,
            "Inventory#o-1#reserve".into(),
            || "reserved".to_string(),
            |step| async move {
                let mut stock = stock.lock().unwrap();
                if *stock == 0 {
                    return Err(WriteError::ConditionFailed);
                }
                ledger.insert(&step)?;
                *stock -= 1;
                Ok(())
            },
            |_| "not available".to_string(),
        )
        .await
    }

    #[tokio::test]
    async fn a_repeated_step_replays_and_changes_nothing() {
        let ledger = MemoryLedger::default();
        let stock = std::sync::Mutex::new(1);
        assert_eq!(reserve(&ledger, &stock).await.unwrap(), "reserved");
        assert_eq!(reserve(&ledger, &stock).await.unwrap(), "reserved");
        assert_eq!(*stock.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_refusal_is_recorded_and_replayed_even_after_stock_returns() {
        let ledger = MemoryLedger::default();
        let stock = std::sync::Mutex::new(0);
        assert_eq!(reserve(&ledger, &stock).await.unwrap(), "not available");
        *stock.lock().unwrap() = 5;
        assert_eq!(reserve(&ledger, &stock).await.unwrap(), "not available");
        assert_eq!(*stock.lock().unwrap(), 5);
    }

    #[tokio::test]
    async fn the_outcome_is_computed_on_the_first_attempt_only() {
        let ledger = &MemoryLedger::default();
        let draws = std::sync::atomic::AtomicU32::new(0);
        for _ in 0..2 {
            let outcome = perform(
                ledger,
                "Payment#o-1#pay".into(),
                || draws.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                |step| async move { ledger.insert(&step) },
                |_| u32::MAX,
            )
            .await
            .unwrap();
            assert_eq!(outcome, 0);
        }
        assert_eq!(draws.into_inner(), 1);
    }

    #[tokio::test]
    async fn a_closed_step_is_never_performed_and_a_performed_one_is_reported() {
        let ledger = &MemoryLedger::default();
        let stock = std::sync::Mutex::new(1);
        let closed = "closed".to_string();
        // Compensated before it ran: closed, and a late attempt replays the closure.
        assert_eq!(
            close(ledger, "Inventory#o-1#reserve".into(), &closed)
                .await
                .unwrap(),
            None
        );
        assert_eq!(reserve(ledger, &stock).await.unwrap(), "closed");
        assert_eq!(*stock.lock().unwrap(), 1);
        // Closing again, or closing a step that was performed, reports its outcome.
        assert_eq!(
            close(ledger, "Inventory#o-1#reserve".into(), &closed)
                .await
                .unwrap(),
            Some(closed.clone())
        );
        let other = &MemoryLedger::default();
        reserve(other, &stock).await.unwrap();
        assert_eq!(
            close(other, "Inventory#o-1#reserve".into(), &closed)
                .await
                .unwrap(),
            Some("reserved".to_string())
        );
    }
}

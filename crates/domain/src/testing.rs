//! Test doubles for the outbound ports that have no state of their own to inspect:
//! a bus that records what was published (and can be told to fail), a clock that
//! stands still, scripted randomness, and a workflow callback that records resumptions;
//! and the three input shapes as they really arrive, built from canonical fixtures.

mod inputs;

pub use inputs::{
    assert_decodes_exactly_its_rules, event, get, grown_order, http_request, invocation, order,
    send,
};

use crate::events::BusEvent;
use crate::ports::{Bus, Clock, Random, TaskResult, WorkflowCallback};
use crate::{StoreError, Timestamp};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records published events; `fail_next(n)` makes the next n publishes fail.
#[derive(Default)]
pub struct RecordingBus {
    published: Mutex<Vec<BusEvent>>,
    failures_left: Mutex<u32>,
}

impl RecordingBus {
    pub fn fail_next(&self, publishes: u32) {
        *lock(&self.failures_left) = publishes;
    }

    /// Everything published so far.
    pub fn published(&self) -> Vec<BusEvent> {
        lock(&self.published).clone()
    }

    /// Takes everything published so far, leaving the record empty.
    pub fn take(&self) -> Vec<BusEvent> {
        std::mem::take(&mut *lock(&self.published))
    }
}

#[async_trait]
impl Bus for RecordingBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), StoreError> {
        let mut failures_left = lock(&self.failures_left);
        if *failures_left > 0 {
            *failures_left -= 1;
            return Err(StoreError::new("bus unavailable (test)"));
        }
        lock(&self.published).extend_from_slice(events);
        Ok(())
    }
}

/// A clock that shows the time it is set to.
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    pub fn at(rfc3339: &str) -> Self {
        let time = chrono::DateTime::parse_from_rfc3339(rfc3339)
            .expect("a valid RFC 3339 time")
            .to_utc();
        Self(Mutex::new(time))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.0) += by;
    }
}

impl Default for FixedClock {
    fn default() -> Self {
        Self::at("2026-01-01T12:00:00Z")
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *lock(&self.0)
    }
}

/// Randomness that returns scripted numbers in [0, 1) (then 0.5), and counting id bits.
#[derive(Default)]
pub struct ScriptedRandom {
    units: Mutex<VecDeque<f64>>,
    next_id: Mutex<u128>,
}

impl ScriptedRandom {
    pub fn with_units(units: &[f64]) -> Self {
        Self {
            units: Mutex::new(units.iter().copied().collect()),
            ..Self::default()
        }
    }
}

impl Random for ScriptedRandom {
    fn unit(&self) -> f64 {
        lock(&self.units).pop_front().unwrap_or(0.5)
    }

    fn id_bits(&self) -> u128 {
        let mut next = lock(&self.next_id);
        *next += 1;
        *next
    }
}

/// Records workflow resumptions.
#[derive(Default)]
pub struct RecordingCallback {
    resumed: Mutex<Vec<(String, TaskResult)>>,
}

impl RecordingCallback {
    pub fn resumed(&self) -> Vec<(String, TaskResult)> {
        lock(&self.resumed).clone()
    }
}

#[async_trait]
impl WorkflowCallback for RecordingCallback {
    async fn resume(&self, token: &str, result: &TaskResult) -> Result<(), StoreError> {
        lock(&self.resumed).push((token.to_owned(), result.clone()));
        Ok(())
    }
}

/// A ledger in memory, for tests of code that only needs the ledger.
#[derive(Default)]
pub struct MemoryLedger(Mutex<std::collections::HashMap<String, Value>>);

impl MemoryLedger {
    /// Inserts a step unless present, as a store does inside its transaction.
    pub fn insert(&self, step: &crate::ports::Step) -> Result<(), crate::WriteError> {
        let mut steps = lock(&self.0);
        if let Some(recorded) = steps.get(&step.key) {
            return Err(crate::WriteError::AlreadyDone(recorded.clone()));
        }
        steps.insert(step.key.clone(), step.outcome.clone());
        Ok(())
    }
}

#[async_trait]
impl crate::ports::Ledger for MemoryLedger {
    async fn recorded(&self, key: &str) -> Result<Option<Value>, StoreError> {
        Ok(lock(&self.0).get(key).cloned())
    }

    async fn record(&self, step: &crate::ports::Step) -> Result<Option<Value>, StoreError> {
        match self.insert(step) {
            Err(crate::WriteError::AlreadyDone(recorded)) => Ok(Some(recorded)),
            _ => Ok(None),
        }
    }
}

/// Every malformed amount found by hostile input, and the edges of the bounds.
pub const MALFORMED_AMOUNTS: &[&str] = &[
    "0",
    "0.0",
    "0.00",
    "-1",
    "+1",
    "1.001",
    "1.500",
    "1_000",
    "1,000",
    "1E2",
    "1e2",
    "1e-2",
    "1.5e1",
    ".5",
    "1.",
    "0001.50",
    "01",
    " 1",
    "1 ",
    "%201",
    "abc",
    "NaN",
    "inf",
    "",
    "1000000.01",
    "1000001",
    "99999999999999999999999999999999",
    "1..2",
    "1.2.3",
    "\u{0661}",
    "１",
];

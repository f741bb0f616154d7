//! What the commands run against: the embedded local stack or a deployed stack. Both
//! offer the same operations, so every command (and the demo) works on either.

pub mod aws;
pub mod local;
mod sigv4;

use crate::error::{CliError, Result};
use async_trait::async_trait;
use ewf_domain::sample::SampleData;
use ewf_domain::{
    CustomerId, Item, ItemId, Mode, Order, OrderId, Payment, PaymentId, StoredEvent, Timestamp,
};
use ewf_local::SeedSummary;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How a delivery ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Canceled,
}

/// One line of an order's timeline: a stored event or an execution history event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// The event's id, or the history event's id: what tells entries apart when a
    /// timeline is read again (`events --follow`).
    pub id: String,
    pub time: Timestamp,
    /// The event's detail-type, or the history event's type (e.g. TaskStateEntered).
    #[serde(rename = "type")]
    pub kind: String,
    /// The emitting service; the state's name for a state event, the task's resource
    /// for a task event.
    pub source: String,
    pub detail: Value,
}

impl TimelineEntry {
    /// An execution history event, shaped alike on both targets (documented in `ewf
    /// --help`): `detail` holds the fields of the event's `...EventDetails` as Step
    /// Functions names them, with input, output and parameters as JSON values.
    pub fn from_history(id: i64, time: Timestamp, kind: String, detail: Value) -> Self {
        let source = ["name", "resource"]
            .into_iter()
            .find_map(|key| detail.get(key)?.as_str())
            .unwrap_or_default()
            .to_owned();
        Self {
            id: id.to_string(),
            time,
            kind,
            source,
            detail,
        }
    }
}

/// An order's timeline and what it says about the order.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub order_id: OrderId,
    pub mode: Mode,
    /// The customer, when the timeline names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// The timeline of an events-mode order from its stored events.
    pub fn from_events(order: &OrderId, events: Vec<StoredEvent>) -> Self {
        // `who` is `C#<customerId>` for the events of an order.
        let customer_id = events.iter().find_map(|event| {
            event
                .who
                .strip_prefix("C#")
                .and_then(|id| CustomerId::parse(id).ok())
        });
        let entries = events
            .into_iter()
            .map(|event| TimelineEntry {
                id: event.event_id,
                time: event.event_time,
                detail: serde_json::from_str(&event.event_detail)
                    .unwrap_or(Value::String(event.event_detail)),
                kind: event.detail_type,
                source: event.event_source,
            })
            .collect();
        Self {
            order_id: order.clone(),
            mode: Mode::Events,
            customer_id,
            entries,
        }
    }

    /// How many steps the saga took: events, or state transitions for a workflow.
    pub fn steps(&self) -> usize {
        match self.mode {
            Mode::Events => self.entries.len(),
            Mode::Workflow => self
                .entries
                .iter()
                .filter(|entry| entry.kind.ends_with("StateEntered"))
                .count(),
        }
    }

    /// Whether the execution has ended (workflow mode; events mode asks the order).
    pub fn execution_ended(&self) -> bool {
        self.entries.iter().any(|entry| {
            matches!(
                entry.kind.as_str(),
                "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted"
            )
        })
    }
}

#[async_trait]
pub trait Target: Send + Sync {
    /// A short description of the target, for notes and `ewf stack`.
    fn describe(&self) -> String;

    async fn seed(&self, data: &SampleData, reset: bool) -> Result<SeedSummary>;

    /// Starts an order and returns it once it is recorded, or with `settle` once it
    /// settles (DELIVERING or a final status). `timeout` bounds the whole wait, counted
    /// from the start. When it runs out first, the order is returned as last seen, so
    /// the caller can still show it (an error only when it was not even recorded). The
    /// local stack always runs the saga until the order settles.
    async fn start_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
        settle: bool,
        timeout: Duration,
    ) -> Result<Order>;

    async fn describe_order(&self, customer: &CustomerId, order: &OrderId)
    -> Result<Option<Order>>;

    /// Ends an order's delivery through its mode's channel and waits until the order is
    /// final, for at most `timeout` (then an expectation error). Refused (service error)
    /// unless the order is DELIVERING.
    async fn finish_delivery(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        outcome: Outcome,
        timeout: Duration,
    ) -> Result<Order>;

    async fn fail_probability(&self) -> Result<f64>;
    async fn set_fail_probability(&self, probability: f64) -> Result<()>;

    /// The order's timeline, or `None` when nothing is known about the order.
    async fn timeline(&self, order: &OrderId) -> Result<Option<Timeline>>;

    async fn item(&self, id: &ItemId) -> Result<Option<Item>>;
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>>;

    /// Named outputs: physical names, endpoints, settings.
    async fn outputs(&self) -> Result<Vec<(String, String)>>;
}

/// The error for an order that is not there, naming both ids.
pub fn order_not_found(customer: &CustomerId, order: &OrderId) -> CliError {
    CliError::not_found(format!("order {order} not found for {customer}"))
        .hint("check both ids; `ewf order create` prints the order id")
}

/// The error for an order that did not settle in time, naming it and its status.
pub fn not_settled(order: &Order, timeout: Duration) -> CliError {
    CliError::expectation(format!(
        "order {} did not settle within {}s (it is {})",
        order.order_id,
        timeout.as_secs(),
        order.order_status
    ))
    .hint(format!(
        "wait longer with --timeout, or look at `ewf events --order {}`",
        order.order_id
    ))
}

/// An error and its sources, each in its own words.
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

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
    pub time: Timestamp,
    /// The event's detail-type, or the history event's type (e.g. TaskStateEntered).
    #[serde(rename = "type")]
    pub kind: String,
    /// The emitting service, or the state's name.
    pub source: String,
    pub detail: Value,
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

    /// Starts an order. With `settle`, follows it until it settles (DELIVERING or a
    /// final status) or the time runs out; the local stack always settles it.
    async fn create_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
        settle: Option<Duration>,
    ) -> Result<Order>;

    async fn describe_order(&self, customer: &CustomerId, order: &OrderId)
    -> Result<Option<Order>>;

    /// Ends an order's delivery through its mode's channel and waits until the order is
    /// final. Refused (service error) unless the order is DELIVERING.
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

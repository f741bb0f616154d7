//! The ports: what the services need from the outside world. The AWS adapters
//! (DynamoDB, EventBridge, Step Functions, Amazon Location) and the local adapters
//! (SQLite, the in-process bus, the gazetteer) implement the same traits.

use crate::events::{BusEvent, FunctionName};
use crate::{
    Address, Customer, CustomerId, Delivery, DeliveryStatus, Estimate, Item, ItemId, Order,
    OrderId, OrderStatus, OrderUpdate, Payment, PaymentId, ServiceError, StockMove, StoreError,
    StoredEvent, Timestamp, WriteError,
};
use async_trait::async_trait;
use serde_json::Value;

/// One step of a saga performed by one service for one order, with the outcome to
/// replay if the same step is asked for again (a redelivered event, a retried task).
/// Stores write the step in the same transaction as the state change it belongs to, so
/// a crash can lose neither the change nor the record of what to emit after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub key: String,
    pub outcome: Value,
}

impl Step {
    pub fn key(service: FunctionName, order_id: &OrderId, name: &str) -> String {
        format!("{service}#{order_id}#{name}")
    }
}

/// The record of steps already performed.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The recorded outcome of a step, if it was performed.
    async fn recorded(&self, key: &str) -> Result<Option<Value>, StoreError>;
    /// Records a step that changes no other state. Returns the outcome recorded earlier
    /// if the step was already there (and leaves it as it was).
    async fn record(&self, step: &Step) -> Result<Option<Value>, StoreError>;
}

#[async_trait]
pub trait CustomerStore: Send + Sync {
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;
    async fn put(&self, customer: &Customer) -> Result<(), StoreError>;
}

#[async_trait]
pub trait InventoryStore: Send + Sync {
    async fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError>;
    /// Writes an item; with `overwrite` false an existing item keeps its stock.
    /// Returns whether the item was written.
    async fn put(&self, item: &Item, overwrite: bool) -> Result<bool, StoreError>;
    /// Moves stock if the move's guard holds (see [`StockMove::allowed`]): otherwise
    /// `ConditionFailed`, and nothing changes. Returns the item after the move.
    async fn apply(
        &self,
        id: &ItemId,
        movement: StockMove,
        step: Option<&Step>,
    ) -> Result<Item, WriteError>;
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError>;
    /// Creates a payment; `ConditionFailed` if the id exists.
    async fn create(&self, payment: &Payment, step: Option<&Step>) -> Result<(), WriteError>;
    /// PAID → CANCELED; `ConditionFailed` for a payment in any other status.
    async fn cancel(
        &self,
        id: &PaymentId,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Payment, WriteError>;
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Creates a delivery in DELIVERING; `ConditionFailed` if it exists.
    async fn start(&self, delivery: &Delivery, step: Option<&Step>) -> Result<(), WriteError>;
    /// DELIVERING → `status`; `ConditionFailed` from any other status.
    async fn finish(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: DeliveryStatus,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Delivery, WriteError>;
    /// Stores the task token of the workflow waiting for this delivery; returns the
    /// delivery as it is now (it may already be finished).
    async fn attach_token(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        token: &str,
    ) -> Result<Delivery, WriteError>;
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>, StoreError>;
    /// Creates the order unless it exists. Returns whether it was created.
    async fn create(&self, order: &Order) -> Result<bool, StoreError>;
    /// Moves the order to `status` if its current status is one of
    /// `status.predecessors()`, applying `update`; otherwise `ConditionFailed`.
    async fn advance(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: OrderStatus,
        update: &OrderUpdate,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Order, WriteError>;
    /// Up to `limit` orders of the choreography, created before `created_before`, that
    /// have not settled (neither in delivery nor final): those past their deadline.
    async fn overdue(
        &self,
        created_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event unless an event with the same key is stored. Returns whether
    /// it was stored now.
    async fn append(&self, event: &StoredEvent) -> Result<bool, StoreError>;
    /// One order's events in time order.
    async fn for_order(&self, order_id: &str) -> Result<Vec<StoredEvent>, StoreError>;
}

/// The event bus.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes all the events or fails: a partial failure is a failure.
    async fn publish(&self, events: &[BusEvent]) -> Result<(), StoreError>;
}

/// Delivery estimates from the depot.
#[async_trait]
pub trait Estimator: Send + Sync {
    /// `NotFound { kind: "Address" }` (error name AddressNotFound) for an address that
    /// cannot be located or reached.
    async fn estimate(&self, address: &Address) -> Result<Estimate, ServiceError>;
}

/// How a task that waits on its token ends.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskResult {
    /// SendTaskSuccess: the task's output.
    Success(Value),
    /// SendTaskFailure: an error name that the state machine's Retry and Catch match.
    Failure { error: String, cause: String },
}

/// Resumes a workflow execution waiting on a task token.
#[async_trait]
pub trait WorkflowCallback: Send + Sync {
    /// Ends the waiting task. A token whose execution has already ended is not an
    /// error: the callback is then a repeat.
    async fn resume(&self, token: &str, result: &TaskResult) -> Result<(), StoreError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub trait Random: Send + Sync {
    /// A number in [0, 1).
    fn unit(&self) -> f64;
    /// 80 random bits for an id.
    fn id_bits(&self) -> u128;
}

//! What the commands run against: the embedded local stack or a deployed stack. Both
//! offer the same operations, so every command (and the demo) works on either.

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

use crate::error::{CliError, Result};
use async_trait::async_trait;
use ewf_domain::events::{DetailType, FunctionName, targets};
use ewf_domain::sample::SampleData;
use ewf_domain::work::Work;
use ewf_domain::{
    CustomerId, Delivery, Item, ItemId, Mode, Order, OrderId, OrderStatus, Payment, PaymentId,
    StoredEvent, Timestamp,
};
use ewf_local::SeedSummary;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};

/// How a delivery ends.
pub use ewf_domain::DeliveryOutcome as Outcome;

/// One line of an order's timeline: a stored event or an execution history event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// The event's id, or the history event's id: what tells entries apart when a
    /// timeline is read again (`events --follow`).
    pub id: String,
    #[serde(with = "ewf_domain::time::rfc3339")]
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

    /// The order's customer: named by the stored events, or by the execution's input.
    pub fn customer(&self) -> Option<CustomerId> {
        self.customer_id.clone().or_else(|| {
            self.entries
                .iter()
                .find(|entry| entry.kind == "ExecutionStarted")
                .and_then(|started| started.detail["input"]["customerId"].as_str())
                .and_then(|id| CustomerId::parse(id).ok())
        })
    }

    /// Whether the timeline tells everything up to `order`'s current status. Events
    /// mode: it holds an event of that status (the event store is written apart from
    /// the order, and may lag it). Workflow mode: the execution has ended when the
    /// order is final, and the task that recorded any other status has succeeded.
    pub fn reaches(&self, order: &Order) -> bool {
        let status = order.order_status;
        match self.mode {
            Mode::Events => self.entries.iter().any(|entry| {
                entry
                    .kind
                    .parse::<DetailType>()
                    .ok()
                    .and_then(DetailType::order_status_after)
                    .is_some_and(|after| after.rank() >= status.rank())
            }),
            Mode::Workflow if status.is_terminal() => self.execution_ended(),
            Mode::Workflow => {
                let recorded = |entry: &TimelineEntry| {
                    entry.kind == "TaskScheduled"
                        && entry.detail["parameters"]["Payload"]["status"] == status.as_str()
                };
                match self.entries.iter().position(recorded) {
                    Some(at) => self.entries[at..]
                        .iter()
                        .any(|entry| entry.kind == "TaskSucceeded"),
                    // A status no task records by name (CREATED): the execution made it.
                    None => true,
                }
            }
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

/// An event whose delivery to a service failed every attempt, shaped alike on both
/// targets (documented in `ewf --help`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The local stack's delivery id, or the SQS message id.
    pub id: String,
    /// The order and customer the event's detail names, if it names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The event's detail-type and source; empty when the letter is no event.
    pub event_type: String,
    pub source: String,
    /// The service whose delivery failed.
    pub target: String,
    pub last_error: String,
    pub attempts: u32,
    #[serde(with = "ewf_domain::time::rfc3339")]
    pub dead_at: Timestamp,
    pub age_seconds: i64,
    /// The event as the service received it.
    pub event: Value,
}

impl DeadLetter {
    pub fn new(
        id: String,
        target: String,
        event: Value,
        (last_error, attempts): (String, u32),
        dead_at: Timestamp,
    ) -> Self {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let detail = &event["detail"];
        Self {
            id,
            order_id: text(&detail["orderId"]),
            customer_id: text(&detail["customerId"]),
            event_type: text(&event["detail-type"]).unwrap_or_default(),
            source: text(&event["source"]).unwrap_or_default(),
            target,
            last_error,
            attempts,
            dead_at,
            age_seconds: (chrono::Utc::now() - dead_at).num_seconds().max(0),
            event,
        }
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

    /// The order and its delivery record, as they are now (the local stack first runs
    /// what is due, as the deployed stack would have by now); `None` without the order.
    async fn delivery_state(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<(Order, Option<Delivery>)>>;

    /// Reports how the order's delivery ended, through its mode's channel: a Logistics
    /// event on the bus (events), the delivery service (workflow). A delivery that has
    /// ended already keeps its first outcome, and that is no error here.
    async fn report_delivery(&self, order: &Order, outcome: Outcome) -> Result<()>;

    /// Waits until the order is final or `deadline` passes (no error then: the caller
    /// reads the order again).
    async fn settle_final(&self, order: &Order, deadline: Instant) -> Result<()>;

    async fn fail_probability(&self) -> Result<f64>;
    async fn set_fail_probability(&self, probability: f64) -> Result<()>;

    /// The order's timeline, or `None` when nothing is known about the order.
    async fn timeline(&self, order: &OrderId) -> Result<Option<Timeline>>;

    async fn item(&self, id: &ItemId) -> Result<Option<Item>>;
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>>;

    /// The events whose delivery failed every attempt, oldest first: the order's, or
    /// all.
    async fn dead_letters(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>>;

    /// Publishes the dead letters' events again (the order's, or all), each letter
    /// removed only once its event is published again; what was redriven. Safe to
    /// repeat: every handler is idempotent. Letters that hold no event stay.
    async fn redrive(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>>;

    /// Named outputs: physical names, endpoints, settings.
    async fn outputs(&self) -> Result<Vec<(String, String)>>;

    /// Starts counting the services' work, where the target counts it itself.
    fn count_work(&self) {}

    /// What the target's own counters say now, once the work under way is done; `None`
    /// when it has none (a deployed stack: its work is read from each order's records).
    async fn work_reading(&self) -> Result<Option<Work>> {
        Ok(None)
    }

    /// The work the target's logs show between two times, once they hold all of it
    /// (the figures logs give; the rest zero); `None` when it keeps no such logs, or
    /// they hold no invocation of the window.
    async fn logged_work(&self, _from: SystemTime, _to: SystemTime) -> Result<Option<Work>> {
        Ok(None)
    }
}

/// Where the stack is and how to reach AWS: as the AWS CLI takes them.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub stack: String,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// The HTTP API's base URL, instead of the stack's HttpApiUrl output.
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "read by the AWS target")
    )]
    pub api_url: Option<String>,
}

/// The deployed stack `settings` names.
#[cfg(feature = "aws")]
pub async fn connect(settings: &AwsSettings) -> Result<Box<dyn Target>> {
    Ok(Box::new(aws::AwsTarget::connect(settings).await?))
}

/// Without the `aws` feature there is no way to a deployed stack: say how to get one.
#[cfg(not(feature = "aws"))]
pub async fn connect(settings: &AwsSettings) -> Result<Box<dyn Target>> {
    Err(CliError::config(format!(
        "this ewf was built without AWS support, so it cannot reach stack {}",
        settings.stack
    ))
    .hint("build it with `cargo build --release -p ewf --features aws`; or use the local stack (--local)"))
}

/// The function a task names: its name on the local stack, its physical name or ARN
/// on AWS (`<stack>-<Name>Function-<suffix>`, as SAM names it).
pub fn function_of(name: &str) -> Option<FunctionName> {
    let name = name.rsplit(':').next().unwrap_or(name);
    FunctionName::ALL.iter().copied().find(|function| {
        let logical = format!("{function}Function");
        name == function.as_str() || name.split('-').any(|part| part == logical)
    })
}

/// The work of one order: the difference of the target's counters around it
/// (`before` and `after`, from [`Target::work_reading`]), with the state transitions of
/// its execution history; without counters, what its timeline shows: the tasks of its
/// execution, or its stored events and the rule deliveries they make, and the API
/// requests that started and finished it (`requests`: HTTP and REST).
pub fn order_work(
    timeline: Option<&Timeline>,
    counted: Option<(&Work, &Work)>,
    requests: (u64, u64),
) -> Work {
    let transitions = timeline
        .filter(|timeline| timeline.mode == Mode::Workflow)
        .map_or(0, |timeline| timeline.steps() as u64);
    if let Some((before, after)) = counted {
        return Work {
            transitions,
            ..after.since(before)
        };
    }
    let mut work = Work {
        transitions,
        http_requests: requests.0,
        rest_requests: requests.1,
        deliveries: Some(0),
        ..Work::default()
    };
    let Some(timeline) = timeline else {
        return work;
    };
    let mut invoked = |function: FunctionName| {
        *work.invocations.entry(function.to_string()).or_default() += 1;
    };
    match timeline.mode {
        Mode::Workflow => {
            for entry in &timeline.entries {
                if entry.kind == "TaskScheduled"
                    && let Some(function) = entry.detail["parameters"]["FunctionName"]
                        .as_str()
                        .and_then(function_of)
                {
                    invoked(function);
                }
            }
        }
        Mode::Events => {
            let mut deliveries = 0;
            for entry in &timeline.entries {
                if let Ok(detail_type) = entry.kind.parse::<DetailType>() {
                    for target in targets(detail_type) {
                        invoked(target);
                        deliveries += 1;
                    }
                }
            }
            // The HTTP API's create route runs the Order function.
            if requests.0 > 0 {
                invoked(FunctionName::Order);
            }
            work.events = timeline.entries.len() as u64;
            work.deliveries = Some(deliveries);
        }
    }
    if timeline.mode == Mode::Workflow && requests.0 > 0 {
        // `ewf deliver` and `ewf cancel` call the delivery service's HTTP route.
        *work
            .invocations
            .entry(FunctionName::Delivery.to_string())
            .or_default() += requests.0;
    }
    work
}

/// Ends an order's delivery (`ewf deliver`, `ewf cancel`) and waits until the order is
/// final, for at most `timeout` (then an expectation error). Refused (service error)
/// unless the order is DELIVERING. When a delivery and a cancellation race, the
/// delivery record's conditional write lets one of them through; the other is refused,
/// naming the outcome that won. Judged from the delivery, not the order's status: a
/// canceled order whose compensation failed ends in another status.
pub async fn finish_delivery(
    target: &dyn Target,
    customer: &CustomerId,
    order_id: &OrderId,
    outcome: Outcome,
    timeout: Duration,
) -> Result<Order> {
    let deadline = Instant::now() + timeout;
    let state = || async {
        target
            .delivery_state(customer, order_id)
            .await?
            .ok_or_else(|| order_not_found(customer, order_id))
    };
    let (order, delivery) = state().await?;
    // Reported only while the delivery is under way; an ended one is judged as is.
    let reported = ended(delivery.as_ref()).is_none();
    if reported {
        if order.order_status != OrderStatus::Delivering {
            return Err(not_in_delivery(&order));
        }
        target.report_delivery(&order, outcome).await?;
    }
    target.settle_final(&order, deadline).await?;
    let (order, delivery) = state().await?;
    judge(outcome, reported, order, delivery.as_ref(), timeout)
}

/// How a delivery ended; `None` while it is under way (or when there is none).
fn ended(delivery: Option<&Delivery>) -> Option<Outcome> {
    delivery.and_then(|delivery| Outcome::of(delivery.status))
}

/// The outcome of a delivery or cancellation, from the order and its delivery once
/// settled: success only when the delivery ended as asked after this command reported
/// it.
fn judge(
    asked: Outcome,
    reported: bool,
    order: Order,
    delivery: Option<&Delivery>,
    timeout: Duration,
) -> Result<Order> {
    let refusal = match ended(delivery) {
        Some(won) if won == asked && reported => {
            return if order.order_status.is_terminal() {
                Ok(order)
            } else {
                Err(not_settled(&order, timeout))
            };
        }
        Some(won) => {
            let not = if won == asked {
                String::new()
            } else {
                format!("; not {}", asked.as_str())
            };
            format!(
                "order {} was already {} ({}){not}",
                order.order_id,
                won.as_str(),
                order.order_status
            )
        }
        None if order.order_status.is_terminal() => format!(
            "order {} is {} but its delivery has not ended",
            order.order_id, order.order_status
        ),
        None => return Err(not_settled(&order, timeout)),
    };
    Err(CliError::service(refusal).hint(format!(
        "see what happened with `ewf events --order {}`",
        order.order_id
    )))
}

/// The refusal of an order that is not in delivery, naming its status.
fn not_in_delivery(order: &Order) -> CliError {
    CliError::service(format!(
        "order {} is {}, not DELIVERING",
        order.order_id, order.order_status
    ))
    .hint(format!(
        "only an order in delivery can be delivered or canceled; see `ewf order describe {} {}`",
        order.customer_id, order.order_id
    ))
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
#[cfg(feature = "aws")]
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;
    use ewf_domain::{Address, DeliveryStatus, OrderDetail};
    use serde_json::json;

    /// The judgement on an order in `status` whose delivery is in `delivery` (none: no
    /// delivery record), for a command that asked for `asked`.
    fn judged(
        asked: Outcome,
        reported: bool,
        status: OrderStatus,
        delivery: Option<DeliveryStatus>,
    ) -> Result<Order> {
        let detail = OrderDetail::new(
            CustomerId::parse("customer-1").unwrap(),
            OrderId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap(),
            ItemId::parse("item-1").unwrap(),
        );
        let order = Order {
            order_status: status,
            ..Order::new(&detail, Mode::Events, chrono::Utc::now())
        };
        let delivery = delivery.map(|status| Delivery {
            customer_id: order.customer_id.clone(),
            order_id: order.order_id.clone(),
            address: Address::parse("Millbank").unwrap(),
            status,
            mode: Mode::Events,
            task_token: None,
            created_at: order.order_date,
            updated_at: order.order_date,
        });
        judge(
            asked,
            reported,
            order,
            delivery.as_ref(),
            Duration::from_secs(60),
        )
    }

    fn refusal(judged: Result<Order>) -> String {
        let err = judged.unwrap_err();
        assert_eq!(err.exit, Exit::Service, "{}", err.message);
        err.message
    }

    fn entry(kind: &str, detail: Value) -> TimelineEntry {
        TimelineEntry {
            id: kind.to_owned(),
            time: chrono::Utc::now(),
            kind: kind.to_owned(),
            source: String::new(),
            detail,
        }
    }

    fn order_in(status: OrderStatus) -> Order {
        let detail = OrderDetail::new(
            CustomerId::parse("customer-1").unwrap(),
            OrderId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap(),
            ItemId::parse("item-1").unwrap(),
        );
        Order {
            order_status: status,
            ..Order::new(&detail, Mode::Events, chrono::Utc::now())
        }
    }

    fn timeline(mode: Mode, entries: Vec<TimelineEntry>) -> Timeline {
        Timeline {
            order_id: OrderId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap(),
            mode,
            customer_id: None,
            entries,
        }
    }

    #[test]
    fn an_events_timeline_is_whole_once_it_holds_an_event_of_the_orders_status() {
        let kinds = |kinds: &[&str]| {
            let entries = kinds.iter().map(|kind| entry(kind, Value::Null)).collect();
            timeline(Mode::Events, entries)
        };
        let lagging = kinds(&["OrderCreated", "ItemReserved", "ItemDescribed"]);
        assert!(lagging.reaches(&order_in(OrderStatus::Reserved)));
        assert!(!lagging.reaches(&order_in(OrderStatus::Delivering)));
        let started = kinds(&["OrderCreated", "ItemRemoved", "DeliveryStarted"]);
        assert!(started.reaches(&order_in(OrderStatus::Delivering)));
        // DELIVERED is recorded before OrderDelivered is published: wait for it.
        let delivered = kinds(&["DeliveryStarted", "Delivered", "DeliveryWasDelivered"]);
        assert!(!delivered.reaches(&order_in(OrderStatus::Delivered)));
        let unreserved = kinds(&["PaymentFailed", "ItemUnreserved"]);
        assert!(unreserved.reaches(&order_in(OrderStatus::PaymentFailed)));
    }

    #[test]
    fn a_workflow_timeline_is_whole_once_the_status_was_recorded_or_the_execution_ended() {
        let started = entry(
            "ExecutionStarted",
            json!({"input": {"customerId": "customer-2", "itemId": "item-1"}}),
        );
        let recording = entry(
            "TaskScheduled",
            json!({"parameters": {"Payload": {"action": "advance", "status": "DELIVERING"}}}),
        );
        let mut history = timeline(Mode::Workflow, vec![started, recording]);
        assert_eq!(history.customer().unwrap().as_str(), "customer-2");
        assert!(history.reaches(&order_in(OrderStatus::Created)));
        assert!(!history.reaches(&order_in(OrderStatus::Delivering)));
        history.entries.push(entry("TaskSucceeded", Value::Null));
        assert!(history.reaches(&order_in(OrderStatus::Delivering)));
        assert!(!history.reaches(&order_in(OrderStatus::Delivered)));
        history
            .entries
            .push(entry("ExecutionSucceeded", Value::Null));
        assert!(history.reaches(&order_in(OrderStatus::Delivered)));
    }

    #[test]
    fn a_cancellation_wins_even_when_its_compensation_failed() {
        // The compensation failed: the order is FAILED, its delivery CANCELED.
        let (failed, canceled) = (OrderStatus::Failed, Some(DeliveryStatus::Canceled));
        let won = judged(Outcome::Canceled, true, failed, canceled).unwrap();
        assert_eq!(won.order_status, OrderStatus::Failed);
        let lost = refusal(judged(Outcome::Delivered, true, failed, canceled));
        assert!(
            lost.starts_with(
                "order 01KDX8Q7V3M2N4P6R8S0T2W4Y6 was already canceled (FAILED); not delivered — "
            ),
            "{lost}"
        );
    }

    #[test]
    fn a_delivery_that_had_ended_before_the_request_is_a_refusal() {
        let delivered = Some(DeliveryStatus::Delivered);
        let late = refusal(judged(
            Outcome::Delivered,
            false,
            OrderStatus::Delivered,
            delivered,
        ));
        assert!(
            late.starts_with(
                "order 01KDX8Q7V3M2N4P6R8S0T2W4Y6 was already delivered (DELIVERED) — "
            ),
            "{late}"
        );
    }

    #[test]
    fn an_order_still_on_its_way_did_not_settle() {
        // No delivery, one under way, or delivered as asked but the order not caught up.
        for delivery in [
            None,
            Some(DeliveryStatus::Delivering),
            Some(DeliveryStatus::Delivered),
        ] {
            let waited = judged(Outcome::Delivered, true, OrderStatus::Delivering, delivery);
            assert_eq!(waited.unwrap_err().exit, Exit::Expectation, "{delivery:?}");
        }
    }
}

//! The order service: creates orders (over HTTP in events mode, for the workflow in
//! workflow mode), records their status as the saga moves on, and describes them.

use async_trait::async_trait;
use ewf_domain::entry::{
    Decode, EventInput, Function, FunctionError, HttpRequest, Input, Invocation, Reply,
};
use ewf_domain::events::{BusEvent, DetailType, FunctionName, SCHEDULE_SOURCE, SCHEDULED_EVENT};
use ewf_domain::ports::{Bus, Clock, Ledger, OrderStore, Random, Step};
use ewf_domain::step::{self, Refusal};
use ewf_domain::{
    CustomerId, DeliveryOutcome, Failure, ItemId, Mode, Order, OrderDetail, OrderId, OrderRef,
    OrderStatus, OrderUpdate, PaymentId, ServiceError,
};
use ewf_domain::{logs, saga, workflow_errors};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What the order service is asked to do, whichever way it was called.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `GET /order/create/{customerId}/{itemId}`: starts an events-mode order.
    Create {
        customer_id: CustomerId,
        item_id: ItemId,
    },
    /// `GET /order/describe/{customerId}/{orderId}`.
    Describe {
        customer_id: CustomerId,
        order_id: OrderId,
    },
    /// Records an order unless it exists: OrderCreated (events) or `create` (workflow).
    Open { detail: OrderDetail, mode: Mode },
    /// Moves an order forward: the status listeners, `advance` and `fail`.
    Advance {
        detail: OrderDetail,
        status: OrderStatus,
        update: OrderUpdate,
    },
    /// Records the delivery outcome and passes it on to the saga (DeliveryWasDelivered,
    /// DeliveryWasCanceled).
    Conclude {
        order: OrderRef,
        outcome: DeliveryOutcome,
    },
    /// On schedule: announces OrderTimedOut, once, for every order of the choreography
    /// that has not settled by its deadline, so that it is compensated.
    Sweep,
}

/// What a delivery's outcome means to its order: the step that records it, the status
/// it moves to, and what the saga hears.
fn concluded(outcome: DeliveryOutcome) -> (&'static str, OrderStatus, DetailType) {
    match outcome {
        DeliveryOutcome::Delivered => (
            "delivered",
            OrderStatus::Delivered,
            DetailType::OrderDelivered,
        ),
        DeliveryOutcome::Canceled => (
            "canceling",
            OrderStatus::Canceling,
            DetailType::OrderCanceled,
        ),
    }
}

impl Decode for Command {
    fn from_http(request: &HttpRequest) -> Result<Self, ServiceError> {
        match request.action("order")? {
            "create" => {
                let [customer, item] = request.params([CustomerId::FIELD, ItemId::FIELD])?;
                Ok(Self::Create {
                    customer_id: customer.parse()?,
                    item_id: item.parse()?,
                })
            }
            "describe" => {
                let [customer, order] = request.params([CustomerId::FIELD, OrderId::FIELD])?;
                Ok(Self::Describe {
                    customer_id: customer.parse()?,
                    order_id: order.parse()?,
                })
            }
            other => Err(ServiceError::unknown_action(other)),
        }
    }

    fn from_event(event: &EventInput) -> Result<Self, ServiceError> {
        use DetailType::*;
        if event.source == SCHEDULE_SOURCE && event.detail_type == SCHEDULED_EVENT {
            return Ok(Self::Sweep);
        }
        let detail = || event.parse_detail::<OrderDetail>();
        let advance = |status| Ok(Self::advance(detail()?, status));
        let conclude = |outcome| {
            Ok(Self::Conclude {
                order: event.parse_detail()?,
                outcome,
            })
        };
        // The saga is over: the order ends as its failure says, or as `unfailed` when
        // it carries none.
        let compensated = |unfailed: Option<OrderStatus>| {
            let detail = detail()?;
            let status = match &detail.failure {
                Some(failure) => Some(failure.status).filter(|status| status.is_terminal()),
                None => unfailed,
            }
            .ok_or_else(|| {
                ServiceError::bad_input("failure", "must carry the final status of the order")
            })?;
            Ok(Self::advance(detail, status))
        };
        match event.known_type()? {
            OrderCreated => Ok(Self::Open {
                detail: detail()?,
                mode: Mode::Events,
            }),
            ItemReserved => advance(OrderStatus::Reserved),
            // Nothing was reserved, so nothing is compensated: the order ends here, as
            // its failure says (a reservation that was refused in another way fails it).
            ItemNotAvailable => compensated(Some(OrderStatus::ItemNotAvailable)),
            PaymentMade => advance(OrderStatus::Paid),
            PaymentFailed
            | ErrorItemDescribed
            | ErrorCustomerDescribed
            | ErrorDeliveryEstimated
            | ErrorPaymentMade => advance(OrderStatus::Compensating),
            ItemUnreserved => compensated(None),
            DeliveryStarted => advance(OrderStatus::Delivering),
            // The refund of a canceled delivery carries no failure.
            PaymentCanceled => compensated(Some(OrderStatus::Canceled)),
            DeliveryWasDelivered => conclude(DeliveryOutcome::Delivered),
            DeliveryWasCanceled => conclude(DeliveryOutcome::Canceled),
            _ => Err(event.not_handled_by(FunctionName::Order)),
        }
    }

    fn from_invoke(invocation: Invocation) -> Result<Self, ServiceError> {
        match invocation.action()? {
            "create" => Ok(Self::Open {
                detail: invocation.order()?,
                mode: Mode::Workflow,
            }),
            "advance" => {
                let status: String = invocation.field("status")?;
                let status: OrderStatus = status
                    .parse()
                    .map_err(|expected| ServiceError::bad_input("status", expected))?;
                let undone = undone_compensations(invocation)?;
                if status != OrderStatus::Canceled || undone.is_empty() {
                    return Ok(Self::advance(invocation.order()?, status));
                }
                // The delivery was canceled, but its compensation left something undone.
                Self::failed(invocation, saga::left_undone(None, &undone), false)
            }
            "fail" => {
                let error: TaskError = invocation.field("error")?;
                let failure = Failure {
                    status: saga::failure_status(&error.error),
                    reason: error.reason(),
                };
                let undone = undone_compensations(invocation)?;
                let failure = if undone.is_empty() {
                    failure
                } else {
                    saga::left_undone(Some(&failure), &undone)
                };
                Self::failed(invocation, failure, error.is_declined_payment())
            }
            other => Err(ServiceError::unknown_action(other)),
        }
    }
}

impl Command {
    fn advance(detail: OrderDetail, status: OrderStatus) -> Self {
        Self::Advance {
            update: OrderUpdate::from_detail(&detail),
            detail,
            status,
        }
    }

    /// Records the workflow's order as failed. When its payment was declined, the task's
    /// error replaced the payment in the detail; the order names it and its amount from
    /// the detail's order, item and delivery, as the choreography's order records them.
    fn failed(
        invocation: Invocation,
        failure: Failure,
        payment_declined: bool,
    ) -> Result<Self, ServiceError> {
        let detail = invocation.order()?;
        let from_detail = OrderUpdate::from_detail(&detail);
        let (declined_id, declined_amount) = payment_declined
            .then(|| (PaymentId::of_order(&detail.order_id), detail.charge().ok()))
            .unzip();
        let update = OrderUpdate {
            payment_id: from_detail.payment_id.clone().or(declined_id),
            total_price: from_detail.total_price.or(declined_amount.flatten()),
            failure_reason: Some(failure.reason),
            ..from_detail
        };
        Ok(Self::Advance {
            detail,
            status: failure.status,
            update,
        })
    }
}

/// The compensations that the workflow's `Catch` found failing, with their errors: they
/// travel beside the order detail (see [`saga::Undone::workflow_field`]).
fn undone_compensations(
    invocation: Invocation,
) -> Result<Vec<(saga::Undone, String)>, ServiceError> {
    let order = invocation.0.get("order");
    saga::Undone::ALL
        .into_iter()
        .filter_map(|undone| {
            let error = order?.get(undone.workflow_field())?;
            Some(
                TaskError::deserialize(error)
                    .map(|error| (undone, error.reason()))
                    .map_err(|err| ServiceError::bad_input("order", err.to_string())),
            )
        })
        .collect()
}

/// The error a Step Functions `Catch` hands over: `{"Error": name, "Cause": text}`.
#[derive(Clone, Debug, Deserialize)]
struct TaskError {
    #[serde(rename = "Error")]
    error: String,
    #[serde(rename = "Cause", default)]
    cause: Option<String>,
}

impl TaskError {
    /// The cause of a Lambda function error is the function error as JSON text: its
    /// message is what a person wants to read.
    fn reason(&self) -> String {
        match self
            .cause
            .as_deref()
            .map(str::trim)
            .filter(|cause| !cause.is_empty())
        {
            Some(cause) => serde_json::from_str::<FunctionError>(cause)
                .map(|function_error| function_error.error_message)
                .unwrap_or_else(|_| cause.to_owned()),
            None => self.error.clone(),
        }
    }

    /// Whether the payment task declined the order's payment.
    fn is_declined_payment(&self) -> bool {
        self.error == workflow_errors::PAYMENT_FAILED
    }
}

/// How many overdue orders one sweep times out; the next sweep takes the rest.
const SWEEP_LIMIT: usize = 100;

pub struct OrderService {
    store: Arc<dyn OrderStore>,
    ledger: Arc<dyn Ledger>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    /// How long an order of the choreography may take to settle.
    deadline: Duration,
}

impl OrderService {
    pub fn new(
        store: Arc<dyn OrderStore>,
        ledger: Arc<dyn Ledger>,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        deadline: Duration,
    ) -> Self {
        Self {
            store,
            ledger,
            bus,
            clock,
            random,
            deadline,
        }
    }

    pub async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        match command {
            Command::Create {
                customer_id,
                item_id,
            } => self.create(customer_id, item_id).await.map(Reply::ok),
            Command::Describe {
                customer_id,
                order_id,
            } => self
                .store
                .get(&customer_id, &order_id)
                .await?
                .map(Reply::ok)
                .ok_or_else(|| ServiceError::not_found("Order", order_id)),
            Command::Open { detail, mode } => {
                let created = self
                    .store
                    .create(&Order::new(&detail, mode, self.clock.now()))
                    .await?;
                tracing::info!(order_id = %detail.order_id, %mode, created, "order recorded");
                Ok(Reply::ok(detail))
            }
            Command::Advance {
                detail,
                status,
                update,
            } => {
                self.advance(&detail.customer_id, &detail.order_id, status, &update)
                    .await?;
                Ok(Reply::ok(detail))
            }
            Command::Conclude { order, outcome } => {
                self.conclude(&order, outcome).await.map(Reply::ok)
            }
            Command::Sweep => {
                // First, so that a sweep that fails or is still running is known as one.
                tracing::info!(message = logs::DEADLINE_SWEEP);
                let timed_out = self.sweep().await?;
                Ok(Reply::ok(json!({ "timedOut": timed_out })))
            }
        }
    }

    /// Times out the orders past their deadline: each is announced once (step
    /// `timeout`), published before it is recorded so that a crash in between repeats
    /// the announcement rather than losing it; the compensation is idempotent.
    async fn sweep(&self) -> Result<Vec<OrderId>, ServiceError> {
        let deadline = chrono::Duration::from_std(self.deadline)
            .map_err(|err| ServiceError::Misconfigured(format!("order deadline: {err}")))?;
        let overdue = self
            .store
            .overdue(self.clock.now() - deadline, SWEEP_LIMIT)
            .await?;
        let mut timed_out = Vec::new();
        for order in overdue {
            let key = Step::key(FunctionName::Order, &order.order_id, "timeout");
            if self.ledger.recorded(&key).await?.is_some() {
                continue;
            }
            let mut detail = OrderDetail::new(order.customer_id, order.order_id, order.item_id);
            detail.payment_id = order.payment_id;
            detail.failure = Some(Failure {
                status: OrderStatus::Failed,
                reason: format!("timed out in {}", saga::waiting_step(order.order_status)),
            });
            let announce = BusEvent::new(FunctionName::Order, DetailType::OrderTimedOut, &detail);
            step::publish(&*self.bus, std::slice::from_ref(&announce)).await?;
            self.ledger
                .record(&Step {
                    key,
                    outcome: announce.detail,
                })
                .await?;
            tracing::warn!(order_id = %detail.order_id, deadline_seconds = self.deadline.as_secs(),
                "order past its deadline; compensating");
            timed_out.push(detail.order_id);
        }
        Ok(timed_out)
    }

    async fn create(
        &self,
        customer_id: CustomerId,
        item_id: ItemId,
    ) -> Result<Order, ServiceError> {
        let now = self.clock.now();
        let order_id = OrderId::generate(now, self.random.id_bits());
        let detail = OrderDetail::new(customer_id, order_id, item_id);
        // Announce first: if this process dies before the write, the Order rule's
        // OrderCreated records the order. The other way round, a crash could leave an
        // order that nothing works on.
        self.bus
            .publish(&[BusEvent::new(
                FunctionName::Order,
                DetailType::OrderCreated,
                &detail,
            )])
            .await?;
        let order = Order::new(&detail, Mode::Events, now);
        self.store.create(&order).await?;
        tracing::info!(order_id = %order.order_id, customer_id = %order.customer_id, "order created");
        Ok(order)
    }

    async fn advance(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: OrderStatus,
        update: &OrderUpdate,
    ) -> Result<(), ServiceError> {
        match self
            .store
            .advance(customer, order, status, update, self.clock.now(), None)
            .await
        {
            Ok(_) => {
                tracing::info!(order_id = %order, %status, "order status recorded");
                Ok(())
            }
            Err(err) => {
                // Refused (not a store failure): the order is missing or past `status`.
                Refusal::of(err)?;
                let current = self.recorded(customer, order).await?;
                // A late or repeated event: statuses never move back.
                tracing::info!(order_id = %order, current = %current.order_status, ignored = %status,
                    "order already at or past this status");
                Ok(())
            }
        }
    }

    /// Records DELIVERED or CANCELING once (step `delivered` / `canceling`) and announces
    /// OrderDelivered or OrderCanceled, built from the order record.
    async fn conclude(
        &self,
        order: &OrderRef,
        outcome: DeliveryOutcome,
    ) -> Result<Vec<BusEvent>, ServiceError> {
        let record = self.recorded(&order.customer_id, &order.order_id).await?;
        let mut detail = OrderDetail::new(record.customer_id, record.order_id, record.item_id);
        detail.payment_id = record.payment_id;
        let (step_name, status, announcement) = concluded(outcome);
        let announce = vec![BusEvent::new(FunctionName::Order, announcement, &detail)];
        let key = Step::key(FunctionName::Order, &order.order_id, step_name);
        let now = self.clock.now();
        let events = step::perform(
            self.ledger.as_ref(),
            key,
            || announce,
            |step| async move {
                self.store
                    .advance(
                        &order.customer_id,
                        &order.order_id,
                        status,
                        &OrderUpdate::default(),
                        now,
                        Some(&step),
                    )
                    .await
                    .map(drop)
            },
            // Already concluded or failed some other way: there is nothing to announce.
            |_| Vec::new(),
        )
        .await?;
        step::publish(&*self.bus, &events).await?;
        tracing::info!(order_id = %order.order_id, %status, announced = events.len(),
            "delivery outcome recorded");
        Ok(events)
    }

    /// The order, which a status event expects to exist; it may still be being created
    /// (OrderCreated is published before the record is written), so its absence is
    /// worth a retry.
    async fn recorded(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Order, ServiceError> {
        self.store.get(customer, order).await?.ok_or_else(|| {
            ServiceError::Unavailable(format!("order {order} of {customer} is not recorded yet"))
        })
    }
}

#[async_trait]
impl Function for OrderService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        saga::handle(
            &*self.bus,
            FunctionName::Order,
            input,
            |command: Command| self.execute(command),
        )
        .await
    }
}

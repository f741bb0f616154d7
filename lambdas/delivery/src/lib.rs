//! The delivery service: estimates deliveries from the depot, starts them, and marks
//! them delivered or canceled, telling whoever waits: the workflow through its task
//! token, the choreography through an event.

use async_trait::async_trait;
use ewf_domain::entry::{Decode, EventInput, Function, HttpRequest, Input, Invocation, Reply};
use ewf_domain::events::{BusEvent, DetailType, FunctionName, LOGISTICS_SOURCE};
use ewf_domain::ports::{
    Bus, Clock, DeliveryStore, Estimator, Ledger, Step, TaskResult, WorkflowCallback,
};
use ewf_domain::step::{self, Refusal};
use ewf_domain::{
    Address, CustomerId, Delivery, DeliveryOutcome, DeliveryStatus, Failure, Mode, OrderDetail,
    OrderId, OrderRef, OrderStatus, ServiceError,
};
use ewf_domain::{saga, workflow_errors};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The conflict's code when a delivery that has already ended is asked to end: its
/// first outcome stands.
pub const DELIVERY_FINISHED: &str = "DeliveryFinished";

/// What the delivery service is asked to do, whichever way it was called.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `GET /delivery/estimate/{address}`.
    Estimate { address: Address },
    /// Estimates the delivery to the order's customer: grows the detail (workflow) or
    /// announces DeliveryEstimated / ErrorDeliveryEstimated (events).
    EstimateOrder { detail: OrderDetail, mode: Mode },
    /// `GET /delivery/start/{customerId}/{orderId}/{address}`.
    Start { order: OrderRef, address: Address },
    /// Starts the order's delivery once (step `start`); in events mode announces
    /// DeliveryStarted.
    StartOrder { detail: OrderDetail, mode: Mode },
    /// `GET /delivery/describe/{customerId}/{orderId}`.
    Describe { order: OrderRef },
    /// Marks a delivery finished on request (HTTP, direct invocation); a finished
    /// delivery is a conflict.
    Finish {
        order: OrderRef,
        outcome: DeliveryOutcome,
    },
    /// The logistics partner reports how a delivery ended (step `delivered` /
    /// `canceled`): a repeat replays, a report on a finished delivery is ignored.
    Report {
        order: OrderRef,
        outcome: DeliveryOutcome,
    },
    /// The workflow waits for the delivery with this task token.
    Await { detail: OrderDetail, token: String },
}

/// How the workflow's waiting task ends: a delivery succeeds with its status; a
/// cancellation fails the task with DeliveryCanceled, which the workflow catches to
/// compensate.
fn task_result(outcome: DeliveryOutcome, order_id: &OrderId) -> TaskResult {
    match outcome {
        DeliveryOutcome::Delivered => TaskResult::Success(json!({ "status": outcome.status() })),
        DeliveryOutcome::Canceled => TaskResult::Failure {
            error: workflow_errors::DELIVERY_CANCELED.into(),
            cause: format!("the delivery of order {order_id} was canceled"),
        },
    }
}

/// What the choreography hears of a finished delivery.
fn announcement(outcome: DeliveryOutcome) -> DetailType {
    match outcome {
        DeliveryOutcome::Delivered => DetailType::DeliveryWasDelivered,
        DeliveryOutcome::Canceled => DetailType::DeliveryWasCanceled,
    }
}

impl Decode for Command {
    fn from_http(request: &HttpRequest) -> Result<Self, ServiceError> {
        let action = request.action("delivery")?;
        if action == "estimate" {
            let [address] = request.params([Address::FIELD])?;
            return Ok(Self::Estimate {
                address: Address::parse(address)?,
            });
        }
        if action == "start" {
            let [customer, order, address] =
                request.params([CustomerId::FIELD, OrderId::FIELD, Address::FIELD])?;
            return Ok(Self::Start {
                order: order_ref(customer, order)?,
                address: Address::parse(address)?,
            });
        }
        Self::about_order(action, || {
            let [customer, order] = request.params([CustomerId::FIELD, OrderId::FIELD])?;
            order_ref(customer, order)
        })
    }

    fn from_event(event: &EventInput) -> Result<Self, ServiceError> {
        let detail = || event.parse_detail::<OrderDetail>();
        let report = |outcome| {
            // Only the logistics partner knows whether a parcel arrived.
            if event.source != LOGISTICS_SOURCE {
                return Err(ServiceError::bad_input(
                    "source",
                    format!("{} comes from {LOGISTICS_SOURCE} only", event.detail_type),
                ));
            }
            Ok(Self::Report {
                order: event.parse_detail()?,
                outcome,
            })
        };
        match event.known_type()? {
            DetailType::CustomerDescribed => Ok(Self::EstimateOrder {
                detail: detail()?,
                mode: Mode::Events,
            }),
            DetailType::ItemRemoved => Ok(Self::StartOrder {
                detail: detail()?,
                mode: Mode::Events,
            }),
            DetailType::Delivered => report(DeliveryOutcome::Delivered),
            DetailType::DeliveryCanceled => report(DeliveryOutcome::Canceled),
            _ => Err(event.not_handled_by(FunctionName::Delivery)),
        }
    }

    fn from_invoke(invocation: Invocation) -> Result<Self, ServiceError> {
        match invocation.action()? {
            "estimate" => Ok(Self::EstimateOrder {
                detail: invocation.order()?,
                mode: Mode::Workflow,
            }),
            "start" => Ok(Self::StartOrder {
                detail: invocation.order()?,
                mode: Mode::Workflow,
            }),
            "await" => {
                let token: String = invocation.field("taskToken")?;
                if token.trim().is_empty() {
                    return Err(ServiceError::bad_input("taskToken", "must not be empty"));
                }
                Ok(Self::Await {
                    detail: invocation.order()?,
                    token,
                })
            }
            // The manual actions name the order in `order` or at the top level.
            action => Self::about_order(action, || {
                let payload = invocation.0;
                OrderRef::deserialize(payload.get("order").unwrap_or(payload))
                    .map_err(|err| ServiceError::bad_input("order", err.to_string()))
            }),
        }
    }
}

impl Command {
    /// The actions on one order's delivery, by HTTP or direct invocation; the order is
    /// read once the action is known.
    fn about_order(
        action: &str,
        order: impl FnOnce() -> Result<OrderRef, ServiceError>,
    ) -> Result<Self, ServiceError> {
        let outcome = match action {
            "describe" => return Ok(Self::Describe { order: order()? }),
            "delivered" => DeliveryOutcome::Delivered,
            "cancel" => DeliveryOutcome::Canceled,
            other => return Err(ServiceError::unknown_action(other)),
        };
        Ok(Self::Finish {
            order: order()?,
            outcome,
        })
    }
}

fn order_ref(customer: &str, order: &str) -> Result<OrderRef, ServiceError> {
    Ok(OrderRef {
        customer_id: customer.parse()?,
        order_id: order.parse()?,
    })
}

pub struct DeliveryService {
    store: Arc<dyn DeliveryStore>,
    ledger: Arc<dyn Ledger>,
    bus: Arc<dyn Bus>,
    estimator: Arc<dyn Estimator>,
    callback: Arc<dyn WorkflowCallback>,
    clock: Arc<dyn Clock>,
}

impl DeliveryService {
    pub fn new(
        store: Arc<dyn DeliveryStore>,
        ledger: Arc<dyn Ledger>,
        bus: Arc<dyn Bus>,
        estimator: Arc<dyn Estimator>,
        callback: Arc<dyn WorkflowCallback>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            ledger,
            bus,
            estimator,
            callback,
            clock,
        }
    }

    pub async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        match command {
            Command::Estimate { address } => self.estimator.estimate(&address).await.map(Reply::ok),
            Command::EstimateOrder { detail, mode } => {
                self.estimate_order(detail, mode).await.map(Reply::ok)
            }
            Command::Start { order, address } => self.start(&order, address).await.map(Reply::ok),
            Command::StartOrder { detail, mode } => {
                self.start_order(&detail, mode).await?;
                Ok(Reply::ok(detail))
            }
            Command::Describe { order } => self
                .describe(&order)
                .await
                .map(|delivery| Reply::ok(public(delivery))),
            Command::Finish { order, outcome } => self.finish(&order, outcome).await.map(Reply::ok),
            Command::Report { order, outcome } => self.report(&order, outcome).await.map(Reply::ok),
            Command::Await { detail, token } => {
                self.wait(&detail, &token).await?;
                Ok(Reply::ok(detail))
            }
        }
    }

    async fn estimate_order(
        &self,
        mut detail: OrderDetail,
        mode: Mode,
    ) -> Result<OrderDetail, ServiceError> {
        let estimate = match &detail.customer {
            Some(customer) => self.estimator.estimate(&customer.address).await,
            None => Err(ServiceError::bad_input(
                "customer",
                "the order has no customer to deliver to",
            )),
        };
        let detail_type = match (estimate, mode) {
            (Ok(estimate), _) => {
                detail.delivery = Some(estimate);
                DetailType::DeliveryEstimated
            }
            (Err(err), Mode::Workflow) => return Err(err),
            // A dependency failed: let the event be retried.
            (Err(err), Mode::Events) if err.is_transient() => return Err(err),
            (Err(err), Mode::Events) => {
                detail.failure = Some(Failure {
                    status: OrderStatus::Failed,
                    reason: err.to_string(),
                });
                DetailType::ErrorDeliveryEstimated
            }
        };
        if mode == Mode::Events {
            let event = BusEvent::new(FunctionName::Delivery, detail_type, &detail);
            step::publish(&*self.bus, &[event]).await?;
        }
        Ok(detail)
    }

    /// Starts a delivery by hand: its outcome is announced on the bus.
    async fn start(&self, order: &OrderRef, address: Address) -> Result<Delivery, ServiceError> {
        let delivery = self.new_delivery(order, address, Mode::Events);
        match self.store.start(&delivery, None).await {
            Ok(()) => Ok(delivery),
            Err(err) => {
                // Without a step, the one refusal is the guard: a delivery exists.
                Refusal::of(err)?;
                Err(ServiceError::conflict(
                    "DeliveryExists",
                    format!("order {} already has a delivery", order.order_id),
                ))
            }
        }
    }

    async fn start_order(&self, detail: &OrderDetail, mode: Mode) -> Result<(), ServiceError> {
        let address = detail
            .delivery
            .as_ref()
            .map(|estimate| &estimate.address)
            .or_else(|| detail.customer.as_ref().map(|customer| &customer.address))
            .ok_or_else(|| {
                ServiceError::bad_input("delivery", "the order has no delivery address")
            })?;
        let delivery = self.new_delivery(&detail.order_ref(), address.clone(), mode);
        let announce = || match mode {
            Mode::Events => vec![BusEvent::new(
                FunctionName::Delivery,
                DetailType::DeliveryStarted,
                detail,
            )],
            Mode::Workflow => Vec::new(),
        };
        let key = Step::key(FunctionName::Delivery, &detail.order_id, "start");
        let events = step::perform(
            self.ledger.as_ref(),
            key,
            announce,
            |step| async move { self.store.start(&delivery, Some(&step)).await },
            // The order's delivery exists already (started by hand): the step's aim is
            // met all the same.
            |_| announce(),
        )
        .await?;
        tracing::info!(order_id = %detail.order_id, address = %address, "delivery started");
        step::publish(&*self.bus, &events).await
    }

    async fn describe(&self, order: &OrderRef) -> Result<Delivery, ServiceError> {
        self.store
            .get(&order.customer_id, &order.order_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("Delivery", &order.order_id))
    }

    async fn finish(
        &self,
        order: &OrderRef,
        outcome: DeliveryOutcome,
    ) -> Result<Delivery, ServiceError> {
        let now = self.clock.now();
        match self
            .store
            .finish(
                &order.customer_id,
                &order.order_id,
                outcome.status(),
                now,
                None,
            )
            .await
        {
            Ok(delivery) => {
                self.announce(&delivery).await?;
                Ok(public(delivery))
            }
            Err(err) => {
                // Refused: the delivery is missing or no longer under way.
                Refusal::of(err)?;
                let current = self.describe(order).await?;
                // The first announcement may have failed after the delivery was marked
                // finished (its caller then retries); a second one is harmless.
                self.announce(&current).await?;
                Err(ServiceError::conflict(
                    DELIVERY_FINISHED,
                    format!(
                        "the delivery of order {} is {}",
                        order.order_id, current.status
                    ),
                ))
            }
        }
    }

    async fn report(
        &self,
        order: &OrderRef,
        outcome: DeliveryOutcome,
    ) -> Result<Option<Delivery>, ServiceError> {
        let key = Step::key(FunctionName::Delivery, &order.order_id, outcome.as_str());
        let now = self.clock.now();
        let finished = step::perform(
            self.ledger.as_ref(),
            key,
            || true,
            |step| async move {
                self.store
                    .finish(
                        &order.customer_id,
                        &order.order_id,
                        outcome.status(),
                        now,
                        Some(&step),
                    )
                    .await
                    .map(drop)
            },
            |refusal| {
                tracing::warn!(order_id = %order.order_id, ?refusal, ?outcome,
                    "delivery report ignored: no delivery under way");
                false
            },
        )
        .await?;
        if !finished {
            return Ok(None);
        }
        // Read back (a replay has no write result) to learn who waits for the outcome.
        let delivery = self.describe(order).await?;
        self.announce(&delivery).await?;
        Ok(Some(public(delivery)))
    }

    async fn wait(&self, detail: &OrderDetail, token: &str) -> Result<(), ServiceError> {
        let delivery = match self
            .store
            .attach_token(&detail.customer_id, &detail.order_id, token)
            .await
        {
            Ok(delivery) => delivery,
            Err(err) => {
                Refusal::of(err)?;
                return Err(ServiceError::not_found("Delivery", &detail.order_id));
            }
        };
        tracing::info!(order_id = %detail.order_id, status = %delivery.status, "workflow waits for the delivery");
        // Finished before the workflow got here: nothing else would resume it.
        match DeliveryOutcome::of(delivery.status) {
            Some(outcome) => self.resume(token, outcome, &detail.order_id).await,
            None => Ok(()),
        }
    }

    /// Tells whoever waits that the delivery finished: the workflow holding its task
    /// token, or else the choreography.
    async fn announce(&self, delivery: &Delivery) -> Result<(), ServiceError> {
        let Some(outcome) = DeliveryOutcome::of(delivery.status) else {
            return Ok(());
        };
        match (&delivery.task_token, delivery.mode) {
            (Some(token), _) => self.resume(token, outcome, &delivery.order_id).await,
            // Not waiting yet: the workflow's `await` finds the delivery finished and
            // resumes at once. The choreography must not hear of a workflow's delivery.
            (None, Mode::Workflow) => Ok(()),
            (None, Mode::Events) => {
                let order = OrderRef {
                    customer_id: delivery.customer_id.clone(),
                    order_id: delivery.order_id.clone(),
                };
                let event = BusEvent::new(FunctionName::Delivery, announcement(outcome), &order);
                step::publish(&*self.bus, &[event]).await
            }
        }
    }

    async fn resume(
        &self,
        token: &str,
        outcome: DeliveryOutcome,
        order_id: &OrderId,
    ) -> Result<(), ServiceError> {
        self.callback
            .resume(token, &task_result(outcome, order_id))
            .await?;
        Ok(())
    }

    fn new_delivery(&self, order: &OrderRef, address: Address, mode: Mode) -> Delivery {
        let now = self.clock.now();
        Delivery {
            customer_id: order.customer_id.clone(),
            order_id: order.order_id.clone(),
            address,
            status: DeliveryStatus::Delivering,
            mode,
            task_token: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A delivery as callers see it: the task token lets its holder steer the workflow, so
/// it never leaves the service.
fn public(delivery: Delivery) -> Delivery {
    Delivery {
        task_token: None,
        ..delivery
    }
}

#[async_trait]
impl Function for DeliveryService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        saga::handle(
            &*self.bus,
            FunctionName::Delivery,
            input,
            |command: Command| self.execute(command),
        )
        .await
    }
}

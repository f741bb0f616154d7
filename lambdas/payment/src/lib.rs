//! The payment service: pays amounts (declining at random with a configured
//! probability), cancels and describes payments, for the HTTP API, the choreography
//! (DeliveryEstimated, ItemReturned) and the workflow (direct invocations).

use async_trait::async_trait;
use ewf_domain::entry::{Decode, EventInput, Function, HttpRequest, Input, Invocation, Reply};
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::ids::{JsonAmount, parse_amount};
use ewf_domain::ports::{Bus, Clock, Ledger, PaymentStore, Random, Step};
use ewf_domain::saga;
use ewf_domain::step::{self, Refusal};
use ewf_domain::{
    Failure, Mode, Money, OrderDetail, OrderId, OrderStatus, PAYMENT_METHOD, Payment, PaymentId,
    PaymentStatus, RecordedError, ServiceError,
};
use std::sync::{Arc, OnceLock};

const SOURCE: FunctionName = FunctionName::Payment;

/// One request to the payment service.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `GET /payment/pay/{amount}`: a manual payment, not a saga step.
    Pay { amount: Money },
    /// `GET /payment/describe/{paymentId}`
    Describe { payment_id: PaymentId },
    /// `GET /payment/cancel/{paymentId}`
    Cancel { payment_id: PaymentId },
    /// Pays for an order: on DeliveryEstimated (answered by an event) or for the
    /// workflow (answered with the order detail).
    PayOrder {
        order: OrderDetail,
        amount: Money,
        mode: Mode,
    },
    /// Refunds the payment the order made, if any: on ItemReturned (a canceled delivery,
    /// or a failure after the payment, once the item is back) or for the workflow.
    CancelOrder { order: OrderDetail, mode: Mode },
}

impl Decode for Command {
    fn from_http(request: &HttpRequest) -> Result<Self, ServiceError> {
        let payment_id = || -> Result<PaymentId, ServiceError> {
            let [payment_id] = request.params([PaymentId::FIELD])?;
            payment_id.parse()
        };
        match request.action("payment")? {
            "pay" => {
                let [amount] = request.params(["amount"])?;
                Ok(Self::Pay {
                    amount: parse_amount(amount)?,
                })
            }
            "describe" => Ok(Self::Describe {
                payment_id: payment_id()?,
            }),
            "cancel" => Ok(Self::Cancel {
                payment_id: payment_id()?,
            }),
            other => Err(ServiceError::unknown_action(other)),
        }
    }

    fn from_event(event: &EventInput) -> Result<Self, ServiceError> {
        match event.known_type()? {
            DetailType::DeliveryEstimated => {
                let order: OrderDetail = event.parse_detail()?;
                let amount = order.charge()?;
                Ok(Self::PayOrder {
                    order,
                    amount,
                    mode: Mode::Events,
                })
            }
            DetailType::ItemReturned => Ok(Self::CancelOrder {
                order: event.parse_detail()?,
                mode: Mode::Events,
            }),
            _ => Err(event.not_handled_by(SOURCE)),
        }
    }

    fn from_invoke(invocation: Invocation) -> Result<Self, ServiceError> {
        match invocation.action()? {
            "pay" => {
                let order = invocation.order()?;
                let JsonAmount(amount) = invocation.field("amount")?;
                Ok(Self::PayOrder {
                    order,
                    amount,
                    mode: Mode::Workflow,
                })
            }
            "cancel" => Ok(Self::CancelOrder {
                order: invocation.order()?,
                mode: Mode::Workflow,
            }),
            other => Err(ServiceError::unknown_action(other)),
        }
    }
}

/// Why a payment could not be canceled.
fn cancel_refused(payment_id: &PaymentId, refusal: Refusal) -> ServiceError {
    match refusal {
        Refusal::NotFound => ServiceError::not_found("Payment", payment_id),
        Refusal::ConditionFailed => ServiceError::conflict(
            "PaymentNotPaid",
            format!("payment {payment_id} is not PAID"),
        ),
    }
}

pub struct PaymentService {
    store: Arc<dyn PaymentStore>,
    ledger: Arc<dyn Ledger>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    fail_probability: f64,
}

impl PaymentService {
    pub fn new(
        store: Arc<dyn PaymentStore>,
        ledger: Arc<dyn Ledger>,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        fail_probability: f64,
    ) -> Self {
        Self {
            store,
            ledger,
            bus,
            clock,
            random,
            fail_probability,
        }
    }

    pub async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        match command {
            Command::Pay { amount } => {
                let payment_id = PaymentId::generate(self.clock.now(), self.random.id_bits());
                let payment = self.attempt(payment_id, amount);
                self.store
                    .create(&payment, None)
                    .await
                    .map_err(|err| ServiceError::Unavailable(err.to_string()))?;
                match payment.status {
                    PaymentStatus::Paid => Ok(Reply::created(payment)),
                    _ => Err(ServiceError::payment_failed(&payment)),
                }
            }
            Command::Describe { payment_id } => {
                let payment = self.store.get(&payment_id).await?;
                payment
                    .map(Reply::ok)
                    .ok_or_else(|| ServiceError::not_found("Payment", payment_id))
            }
            Command::Cancel { payment_id } => {
                match self.store.cancel(&payment_id, self.clock.now(), None).await {
                    Ok(payment) => Ok(Reply::ok(payment)),
                    Err(err) => Err(cancel_refused(&payment_id, Refusal::of(err)?)),
                }
            }
            Command::PayOrder {
                order,
                amount,
                mode,
            } => {
                let paid = self.pay_step(&order.order_id, amount).await?;
                match mode {
                    Mode::Events => step::announce(&*self.bus, payment_events(&order, paid)).await,
                    Mode::Workflow => {
                        Reply::outcome(paid.and_then(|payment| paid_order(&order, payment)))
                    }
                }
            }
            Command::CancelOrder { order, mode } => {
                self.refund(&order).await?;
                match mode {
                    Mode::Events => {
                        let canceled = BusEvent::new(SOURCE, DetailType::PaymentCanceled, &order);
                        step::announce(&*self.bus, vec![canceled]).await
                    }
                    Mode::Workflow => Ok(Reply::ok(order)),
                }
            }
        }
    }

    /// A new payment of `amount`, declined at random with the configured probability.
    fn attempt(&self, payment_id: PaymentId, amount: Money) -> Payment {
        let now = self.clock.now();
        let status = if self.random.unit() < self.fail_probability {
            PaymentStatus::Failed
        } else {
            PaymentStatus::Paid
        };
        Payment {
            payment_id,
            amount,
            method: PAYMENT_METHOD.to_owned(),
            status,
            created_at: now,
            updated_at: now,
        }
    }

    /// The order's payment step: the payment made (PAID or FAILED), once.
    async fn pay_step(&self, order_id: &OrderId, amount: Money) -> Result<Paid, ServiceError> {
        // Drawn on the step's first attempt only (a repeat replays what was recorded),
        // then shared by the write and its refusal.
        let drawn = OnceLock::new();
        let payment = || {
            drawn
                .get_or_init(|| self.attempt(PaymentId::of_order(order_id), amount))
                .clone()
        };
        let paid: Paid = step::perform(
            &*self.ledger,
            pay_key(order_id),
            || Ok(payment()),
            |step| {
                let payment = payment();
                async move { self.store.create(&payment, Some(&step)).await }
            },
            |_| {
                Err(ServiceError::conflict(
                    PAYMENT_EXISTS,
                    format!("order {order_id} has a payment"),
                )
                .into())
            },
        )
        .await?;
        match paid {
            // The order's payment exists, yet its step is not on record (only once the
            // ledger's retention has passed): that payment is the step's outcome.
            Err(refused) if refused.name == PAYMENT_EXISTS => {
                let payment_id = PaymentId::of_order(order_id);
                match self.store.get(&payment_id).await? {
                    Some(payment) => Ok(Ok(payment)),
                    None => Err(ServiceError::not_found("Payment", payment_id)),
                }
            }
            paid => Ok(paid),
        }
    }

    /// Cancels the PAID payment of the order's payment step, once (step `cancel`). A
    /// payment never made (its step is closed, so that it never will be), declined,
    /// or already canceled leaves nothing to refund: the compensation is complete.
    async fn refund(&self, order: &OrderDetail) -> Result<(), ServiceError> {
        let closed: Paid = Err(ServiceError::conflict(
            "OrderCompensated",
            format!(
                "order {} was compensated before it was paid",
                order.order_id
            ),
        )
        .into());
        let paid = match step::close(&*self.ledger, pay_key(&order.order_id), &closed).await? {
            Some(Ok(payment)) => {
                (payment.status == PaymentStatus::Paid).then_some(payment.payment_id)
            }
            Some(Err(refused)) if refused.name == PAYMENT_EXISTS => {
                Some(PaymentId::of_order(&order.order_id))
            }
            Some(Err(_)) => None,
            // No step on record: a payment the order names is one its step made before
            // the ledger let the step go.
            None => order.payment_id().cloned(),
        };
        let Some(payment_id) = &paid else {
            tracing::info!(order = %order.order_id, "no payment of the order's to refund");
            return Ok(());
        };
        step::perform(
            &*self.ledger,
            Step::key(SOURCE, &order.order_id, "cancel"),
            || (),
            |step| async move {
                let now = self.clock.now();
                self.store
                    .cancel(payment_id, now, Some(&step))
                    .await
                    .map(|_canceled| ())
            },
            |refusal| {
                tracing::warn!(order = %order.order_id, reason = %cancel_refused(payment_id, refusal),
                    "payment no longer PAID; nothing to refund");
            },
        )
        .await
    }
}

/// The refusal a payment step records when the order's payment exists without the step
/// on record; the stored payment is then the step's outcome.
const PAYMENT_EXISTS: &str = "PaymentExists";

/// What an order's payment step came to, as recorded: the payment, or why there is none.
type Paid = Result<Payment, RecordedError>;

fn pay_key(order_id: &OrderId) -> String {
    Step::key(SOURCE, order_id, "pay")
}

/// The workflow's answer: the order with its payment, or the declined payment.
fn paid_order(order: &OrderDetail, payment: Payment) -> Result<OrderDetail, RecordedError> {
    if payment.status != PaymentStatus::Paid {
        return Err(ServiceError::payment_failed(&payment).into());
    }
    let mut paid = order.clone();
    paid.payment = Some(payment);
    Ok(paid)
}

/// PaymentMade, or PaymentFailed with the failure that the compensation carries to
/// the order; both with the payment.
fn payment_events(order: &OrderDetail, paid: Paid) -> Vec<BusEvent> {
    let payment = match paid {
        Ok(payment) => payment,
        // A step that a compensation (the workflow's, or a timed-out order's) closed
        // before it ran: no payment of this step's to announce.
        Err(closed) => {
            tracing::warn!(order = %order.order_id, reason = %closed.message, "no payment to announce");
            return Vec::new();
        }
    };
    let mut detail = order.clone();
    let detail_type = if payment.status == PaymentStatus::Paid {
        DetailType::PaymentMade
    } else {
        let reason = ServiceError::payment_failed(&payment).to_string();
        detail.failure = Some(Failure {
            status: OrderStatus::PaymentFailed,
            reason,
        });
        DetailType::PaymentFailed
    };
    detail.payment = Some(payment);
    vec![BusEvent::new(SOURCE, detail_type, &detail)]
}

#[async_trait]
impl Function for PaymentService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        saga::handle(&*self.bus, SOURCE, input, |command: Command| {
            self.execute(command)
        })
        .await
    }
}

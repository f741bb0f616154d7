//! What a choreography handler's refusal becomes, and how an order says what its
//! compensation left undone: the rules both modes share.
//!
//! A refusal is any failure but a transient one (bad input, not found, a conflict, a
//! misconfiguration): retrying it would only refuse again. So it is never retried nor
//! dead-lettered. In its place the handler publishes the saga's failure event, and the
//! compensation runs as the workflow's `Catch` runs it. A refused compensation step
//! passes the compensation on, and the order ends COMPENSATION_FAILED with a reason
//! that names what is left undone.

use crate::entry::{Decode, EventInput, Input, Reply};
use crate::events::{BusEvent, DetailType, FunctionName};
use crate::ports::Bus;
use crate::{Failure, OrderDetail, OrderStatus, ServiceError, step, workflow_errors};
use serde_json::json;
use std::future::Future;

/// A compensation that could not be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undone {
    Return,
    Release,
    Refund,
}

impl Undone {
    /// In the order a reason lists them.
    pub const ALL: [Undone; 3] = [Self::Return, Self::Release, Self::Refund];

    fn label(self) -> &'static str {
        match self {
            Self::Return => "item not returned",
            Self::Release => "item not released",
            Self::Refund => "payment not refunded",
        }
    }

    /// Where the state machine's `Catch` of this compensation puts its error.
    pub fn workflow_field(self) -> &'static str {
        match self {
            Self::Return => "returnError",
            Self::Release => "releaseError",
            Self::Refund => "refundError",
        }
    }
}

/// The step an order of the choreography waits for in `status`, for the reason of an
/// order that timed out there.
pub fn waiting_step(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Created => "reservation",
        OrderStatus::Reserved => "payment",
        OrderStatus::Paid => "delivery start",
        OrderStatus::Canceling => "cancellation",
        _ => "compensation",
    }
}

/// The reason of an order whose delivery was canceled, the start of its compensation.
pub const CANCELED_REASON: &str = "delivery canceled";

/// The failure of an order whose compensation left `undone` undone (each with the
/// error that stopped it): `previous` is the failure that started the compensation,
/// none for a canceled delivery. Appending one at a time gives the same reason as
/// all at once, so both modes word it alike.
pub fn left_undone(previous: Option<&Failure>, undone: &[(Undone, String)]) -> Failure {
    let mut reason = previous
        .map_or(CANCELED_REASON, |failure| &failure.reason)
        .to_owned();
    for (what, why) in undone {
        reason.push_str(&format!("; {}: {why}", what.label()));
    }
    Failure {
        status: OrderStatus::CompensationFailed,
        reason,
    }
}

/// The status an order fails with when a step refuses with the error `name`: the
/// same rule for the workflow's `Catch` and the choreography's failure events.
pub fn failure_status(name: &str) -> OrderStatus {
    match name {
        workflow_errors::PAYMENT_FAILED => OrderStatus::PaymentFailed,
        workflow_errors::ITEM_NOT_AVAILABLE | workflow_errors::ITEM_NOT_FOUND => {
            OrderStatus::ItemNotAvailable
        }
        _ => OrderStatus::Failed,
    }
}

/// What follows when `consumer` refuses an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRefusal {
    /// A step of the saga refused: the saga fails with this event.
    Fail(DetailType),
    /// A compensation step refused: the compensation goes on with this event.
    Continue(DetailType, Undone),
    /// Nothing depends on it (a status listener, a delivery report, the event store).
    Acknowledge,
}

/// The failure event of each step of the choreography, by the service that performs
/// it and the event that asks for it.
pub fn on_refusal(consumer: FunctionName, input: DetailType) -> OnRefusal {
    use DetailType::*;
    use FunctionName::*;
    match (consumer, input) {
        (Inventory, OrderCreated) => OnRefusal::Fail(ItemNotAvailable),
        (Inventory, ItemReserved) => OnRefusal::Fail(ErrorItemDescribed),
        (Customer, ItemDescribed) => OnRefusal::Fail(ErrorCustomerDescribed),
        (Delivery, CustomerDescribed) => OnRefusal::Fail(ErrorDeliveryEstimated),
        (Payment, DeliveryEstimated) => OnRefusal::Fail(ErrorPaymentMade),
        (Inventory, PaymentMade) => OnRefusal::Fail(ErrorItemRemoved),
        (Delivery, ItemRemoved) => OnRefusal::Fail(ErrorDeliveryStarted),
        (
            Inventory,
            PaymentFailed
            | ErrorItemDescribed
            | ErrorCustomerDescribed
            | ErrorDeliveryEstimated
            | ErrorPaymentMade,
        ) => OnRefusal::Continue(ItemUnreserved, Undone::Release),
        (Inventory, OrderCanceled | ErrorItemRemoved | ErrorDeliveryStarted | OrderTimedOut) => {
            OnRefusal::Continue(ItemReturned, Undone::Return)
        }
        (Payment, ItemReturned) => OnRefusal::Continue(PaymentCanceled, Undone::Refund),
        _ => OnRefusal::Acknowledge,
    }
}

/// The failure event that takes the place of a refused event, if any.
fn failure_event(
    consumer: FunctionName,
    input: DetailType,
    mut order: OrderDetail,
    err: &ServiceError,
) -> Option<BusEvent> {
    let (detail_type, failure) = match on_refusal(consumer, input) {
        OnRefusal::Acknowledge => return None,
        OnRefusal::Fail(detail_type) => (
            detail_type,
            Failure {
                status: failure_status(&err.name()),
                reason: err.to_string(),
            },
        ),
        OnRefusal::Continue(detail_type, undone) => (
            detail_type,
            left_undone(order.failure.as_ref(), &[(undone, err.to_string())]),
        ),
    };
    order.failure = Some(failure);
    Some(BusEvent::new(consumer, detail_type, &order))
}

/// A service's entry point: decodes `input` into its command, executes it, and
/// settles the result (see [`settle`]).
pub async fn handle<C, Fut>(
    bus: &dyn Bus,
    consumer: FunctionName,
    input: Input,
    execute: impl FnOnce(C) -> Fut,
) -> Result<Reply, ServiceError>
where
    C: Decode,
    Fut: Future<Output = Result<Reply, ServiceError>>,
{
    let result = match C::decode(&input) {
        Ok(command) => execute(command).await,
        Err(err) => Err(err),
    };
    settle(bus, consumer, &input, result).await
}

/// The one place a choreography handler's result is settled: success and transient
/// failures pass (a transient failure is retried, then dead-lettered); a refusal of an
/// order's event publishes the saga's failure event instead, and the event is
/// acknowledged. So is a refusal that nothing depends on, or of an event that names no
/// order: retrying would refuse it again.
pub async fn settle(
    bus: &dyn Bus,
    consumer: FunctionName,
    input: &Input,
    result: Result<Reply, ServiceError>,
) -> Result<Reply, ServiceError> {
    let Some((event, err)) = refusal(input, &result) else {
        return result;
    };
    let follow = event.known_type().ok().and_then(|detail_type| {
        let order = event.parse_detail::<OrderDetail>().ok()?;
        failure_event(consumer, detail_type, order, err)
    });
    match follow {
        Some(failure) => {
            tracing::warn!(error = %err, name = %err.name(), event = %event.detail_type,
                compensation = %failure.detail_type, "event refused; the saga compensates");
            step::announce(bus, vec![failure]).await
        }
        None => Ok(acknowledged(event, err)),
    }
}

/// Settles the result of a handler that nothing in the saga waits for (the event
/// store): a refusal is acknowledged, a transient failure retried.
pub fn acknowledge_refusals(
    input: &Input,
    result: Result<Reply, ServiceError>,
) -> Result<Reply, ServiceError> {
    match refusal(input, &result) {
        Some((event, err)) => Ok(acknowledged(event, err)),
        None => result,
    }
}

/// The refused event and its refusal, if `result` refuses an event.
fn refusal<'a>(
    input: &'a Input,
    result: &'a Result<Reply, ServiceError>,
) -> Option<(&'a EventInput, &'a ServiceError)> {
    match (input, result) {
        (Input::Event(event), Err(err)) if !err.is_transient() => Some((event, err)),
        _ => None,
    }
}

fn acknowledged(event: &EventInput, err: &ServiceError) -> Reply {
    tracing::warn!(error = %err, name = %err.name(), event = %event.detail_type,
        "event refused; nothing depends on it");
    Reply::ok(json!({ "refused": err.body() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RULES;

    #[test]
    fn every_step_of_the_saga_has_a_failure_event_that_someone_compensates() {
        for rule in RULES {
            for input in rule.detail_types.unwrap_or_default() {
                let follow = match on_refusal(rule.target, *input) {
                    OnRefusal::Fail(event) | OnRefusal::Continue(event, _) => event,
                    OnRefusal::Acknowledge => continue,
                };
                assert!(
                    crate::events::targets(follow).any(|target| target != FunctionName::EventStore),
                    "{follow} (after {} refuses {input}) has no subscriber",
                    rule.target
                );
            }
        }
    }

    #[test]
    fn undone_compensations_read_the_same_added_one_by_one_or_all_at_once() {
        let declined = Failure {
            status: OrderStatus::Failed,
            reason: "timed out in Pay".into(),
        };
        let returned = left_undone(Some(&declined), &[(Undone::Return, "gone".into())]);
        let one_by_one = left_undone(Some(&returned), &[(Undone::Refund, "locked".into())]);
        let at_once = left_undone(
            Some(&declined),
            &[
                (Undone::Return, "gone".into()),
                (Undone::Refund, "locked".into()),
            ],
        );
        assert_eq!(one_by_one, at_once);
        assert_eq!(
            at_once.reason,
            "timed out in Pay; item not returned: gone; payment not refunded: locked"
        );
        assert_eq!(at_once.status, OrderStatus::CompensationFailed);
        assert_eq!(
            left_undone(None, &[(Undone::Refund, "x".into())]).reason,
            "delivery canceled; payment not refunded: x"
        );
    }
}

//! The events of the choreography and the EventBridge routing table. The SAM template's
//! rules and the local bus are both checked against [`RULES`].

use crate::{OrderStatus, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// The detail-type of every event on the bus, in the order the saga emits them
    /// (see [`DetailType::stage`]).
    DetailType {
        OrderCreated => "OrderCreated",
        ItemReserved => "ItemReserved",
        ItemNotAvailable => "ItemNotAvailable",
        ItemDescribed => "ItemDescribed",
        ErrorItemDescribed => "ErrorItemDescribed",
        CustomerDescribed => "CustomerDescribed",
        ErrorCustomerDescribed => "ErrorCustomerDescribed",
        DeliveryEstimated => "DeliveryEstimated",
        ErrorDeliveryEstimated => "ErrorDeliveryEstimated",
        PaymentMade => "PaymentMade",
        PaymentFailed => "PaymentFailed",
        ErrorPaymentMade => "ErrorPaymentMade",
        ItemRemoved => "ItemRemoved",
        ErrorItemRemoved => "ErrorItemRemoved",
        ItemUnreserved => "ItemUnreserved",
        DeliveryStarted => "DeliveryStarted",
        ErrorDeliveryStarted => "ErrorDeliveryStarted",
        Delivered => "Delivered",
        DeliveryCanceled => "DeliveryCanceled",
        DeliveryWasDelivered => "DeliveryWasDelivered",
        DeliveryWasCanceled => "DeliveryWasCanceled",
        OrderDelivered => "OrderDelivered",
        OrderCanceled => "OrderCanceled",
        OrderTimedOut => "OrderTimedOut",
        ItemReturned => "ItemReturned",
        PaymentCanceled => "PaymentCanceled",
    }
);

string_enum!(
    /// The functions of the system: each is one Lambda function and one rule target.
    FunctionName {
        Customer => "Customer",
        Order => "Order",
        Inventory => "Inventory",
        Payment => "Payment",
        Delivery => "Delivery",
        EventStore => "EventStore",
        Add => "Add",
    }
);

impl DetailType {
    /// Where the event comes in a saga: an event is never emitted before one of an
    /// earlier stage of the same order. EventBridge stamps events to the second, so
    /// within one second this is what keeps an order's timeline in order.
    pub fn stage(self) -> usize {
        Self::ALL
            .iter()
            .position(|detail_type| *detail_type == self)
            .unwrap_or(Self::ALL.len())
    }

    /// The status an events-mode order has at least once this event has happened: the
    /// Order service records it on handling the event, or recorded it before publishing
    /// it (OrderCanceled, OrderDelivered). `None` for the events that move no order. A
    /// timeline that holds one event of an order's current status is complete up to it.
    pub fn order_status_after(self) -> Option<OrderStatus> {
        use DetailType::*;
        Some(match self {
            OrderCreated => OrderStatus::Created,
            ItemReserved => OrderStatus::Reserved,
            PaymentMade => OrderStatus::Paid,
            PaymentFailed
            | ErrorItemDescribed
            | ErrorCustomerDescribed
            | ErrorDeliveryEstimated
            | ErrorPaymentMade => OrderStatus::Compensating,
            DeliveryStarted => OrderStatus::Delivering,
            OrderCanceled => OrderStatus::Canceling,
            OrderDelivered => OrderStatus::Delivered,
            // Each ends a saga: the order is final, as the event's failure says.
            ItemNotAvailable | ItemUnreserved | PaymentCanceled => OrderStatus::Failed,
            _ => return None,
        })
    }
}

/// A scheduled rule's event (EventBridge Scheduler and scheduled rules send this
/// source and detail-type): it drives the sweep of the orders past their deadline.
pub const SCHEDULE_SOURCE: &str = "aws.events";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// The source of the delivery outcome events, sent by the (external) logistics partner.
pub const LOGISTICS_SOURCE: &str = "Logistics";

/// An event to publish: the source is the emitting service's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusEvent {
    pub source: String,
    pub detail_type: DetailType,
    pub detail: Value,
}

impl BusEvent {
    pub fn new(source: FunctionName, detail_type: DetailType, detail: &impl Serialize) -> Self {
        Self::from_source(source.as_str(), detail_type, detail)
    }

    pub fn from_source(source: &str, detail_type: DetailType, detail: &impl Serialize) -> Self {
        Self {
            source: source.to_owned(),
            detail_type,
            detail: serde_json::to_value(detail)
                .expect("event details are plain data: no maps with keys other than strings"),
        }
    }

    /// Reads the detail as `T`, naming the event when it does not fit.
    pub fn parse_detail<T: serde::de::DeserializeOwned>(
        detail_type: &str,
        detail: &Value,
    ) -> Result<T, ServiceError> {
        T::deserialize(detail)
            .map_err(|err| ServiceError::bad_input("detail", format!("{detail_type}: {err}")))
    }
}

/// One EventBridge rule: the function it targets and the detail-types it matches (`None`
/// matches every event).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub target: FunctionName,
    pub detail_types: Option<&'static [DetailType]>,
}

impl Rule {
    pub fn matches(&self, detail_type: DetailType) -> bool {
        self.detail_types
            .is_none_or(|types| types.contains(&detail_type))
    }
}

use DetailType::*;

/// Which function reacts to which event: SPEC §5, plus the compensation rows and the
/// order-status listeners.
pub const RULES: &[Rule] = &[
    Rule {
        target: FunctionName::Order,
        detail_types: Some(&[
            OrderCreated,
            ItemReserved,
            ItemNotAvailable,
            ErrorItemDescribed,
            ErrorCustomerDescribed,
            ErrorDeliveryEstimated,
            PaymentMade,
            PaymentFailed,
            ErrorPaymentMade,
            ItemUnreserved,
            DeliveryStarted,
            DeliveryWasDelivered,
            DeliveryWasCanceled,
            PaymentCanceled,
        ]),
    },
    Rule {
        target: FunctionName::Inventory,
        detail_types: Some(&[
            OrderCreated,
            ItemReserved,
            PaymentMade,
            PaymentFailed,
            ErrorItemDescribed,
            ErrorCustomerDescribed,
            ErrorDeliveryEstimated,
            ErrorPaymentMade,
            ErrorItemRemoved,
            ErrorDeliveryStarted,
            OrderCanceled,
            OrderTimedOut,
        ]),
    },
    Rule {
        target: FunctionName::Customer,
        detail_types: Some(&[ItemDescribed]),
    },
    Rule {
        target: FunctionName::Delivery,
        detail_types: Some(&[CustomerDescribed, ItemRemoved, Delivered, DeliveryCanceled]),
    },
    Rule {
        target: FunctionName::Payment,
        detail_types: Some(&[DeliveryEstimated, ItemReturned]),
    },
    Rule {
        target: FunctionName::EventStore,
        detail_types: None,
    },
];

/// The functions an event is delivered to.
pub fn targets(detail_type: DetailType) -> impl Iterator<Item = FunctionName> {
    RULES
        .iter()
        .filter(move |rule| rule.matches(detail_type))
        .map(|rule| rule.target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reaches_the_event_store_and_every_rule_target_is_distinct() {
        for detail_type in DetailType::ALL {
            assert!(targets(*detail_type).any(|target| target == FunctionName::EventStore));
        }
        let names: std::collections::HashSet<_> = RULES.iter().map(|rule| rule.target).collect();
        assert_eq!(names.len(), RULES.len());
    }

    #[test]
    fn every_status_of_an_order_is_announced_by_an_event_the_store_keeps() {
        // Else `ewf events` would wait in vain for the event of an order's status.
        for status in OrderStatus::ALL {
            assert!(
                DetailType::ALL.iter().any(|event| event
                    .order_status_after()
                    .is_some_and(|after| after.rank() == status.rank())),
                "{status}"
            );
        }
        // Along the saga, statuses only move forward.
        let happy = [
            OrderCreated,
            ItemReserved,
            PaymentMade,
            DeliveryStarted,
            OrderDelivered,
        ];
        let ranks: Vec<u8> = happy
            .iter()
            .filter_map(|event| event.order_status_after().map(OrderStatus::rank))
            .collect();
        assert_eq!(ranks, [0, 1, 2, 3, 5]);
        assert_eq!(DeliveryWasDelivered.order_status_after(), None);
        assert!(PaymentCanceled.order_status_after().unwrap().is_terminal());
    }

    #[test]
    fn compensation_events_have_subscribers() {
        for failure in [
            PaymentFailed,
            ErrorItemDescribed,
            ErrorCustomerDescribed,
            ErrorDeliveryEstimated,
            ErrorPaymentMade,
            ErrorItemRemoved,
            ErrorDeliveryStarted,
            OrderTimedOut,
        ] {
            assert!(targets(failure).any(|target| target == FunctionName::Inventory));
        }
        assert!(targets(ItemReturned).any(|target| target == FunctionName::Payment));
    }
}

//! The records each service owns, and the order detail that travels on the bus.

use crate::ids::check_amount;
use crate::{Address, CustomerId, ItemId, Money, OrderId, PaymentId, ServiceError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub type Timestamp = DateTime<Utc>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub customer_id: CustomerId,
    pub name: String,
    pub email: String,
    pub address: Address,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub item_id: ItemId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: Money,
    pub available: i64,
    pub reserved: i64,
}

/// The four ways stock moves. Each has a guard that keeps both counters non-negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockMove {
    /// available − 1, reserved + 1; only if available > 0.
    Reserve,
    /// available + 1, reserved − 1; only if reserved > 0.
    Unreserve,
    /// reserved − 1 (the item is sold); only if reserved > 0.
    Remove,
    /// available + 1 (a sold item comes back).
    Return,
}

impl StockMove {
    /// (change to available, change to reserved)
    pub fn deltas(self) -> (i64, i64) {
        match self {
            Self::Reserve => (-1, 1),
            Self::Unreserve => (1, -1),
            Self::Remove => (0, -1),
            Self::Return => (1, 0),
        }
    }

    /// Whether the move is allowed on an item with these counts.
    pub fn allowed(self, item: &Item) -> bool {
        match self {
            Self::Reserve => item.available > 0,
            Self::Unreserve | Self::Remove => item.reserved > 0,
            Self::Return => true,
        }
    }

    pub fn apply(self, item: &mut Item) {
        let (available, reserved) = self.deltas();
        item.available += available;
        item.reserved += reserved;
    }
}

string_enum!(
    /// How an order was created.
    Mode { Workflow => "workflow", Events => "events" }
);

string_enum!(
    PaymentStatus { Paid => "PAID", Failed => "FAILED", Canceled => "CANCELED" }
);

string_enum!(
    DeliveryStatus { Delivering => "DELIVERING", Delivered => "DELIVERED", Canceled => "CANCELED" }
);

string_enum!(
    /// Where an order is. Statuses only move forward (see [`OrderStatus::rank`]), so an
    /// event delivered late or twice can never move an order back.
    OrderStatus {
        Created => "CREATED",
        Reserved => "RESERVED",
        Paid => "PAID",
        Compensating => "COMPENSATING",
        Delivering => "DELIVERING",
        Canceling => "CANCELING",
        Delivered => "DELIVERED",
        Canceled => "CANCELED",
        ItemNotAvailable => "ITEM_NOT_AVAILABLE",
        PaymentFailed => "PAYMENT_FAILED",
        Failed => "FAILED",
        CompensationFailed => "COMPENSATION_FAILED",
    }
);

impl OrderStatus {
    /// Progress of an order; a status may follow only one of a lower rank.
    pub fn rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Reserved => 1,
            Self::Paid | Self::Compensating => 2,
            Self::Delivering => 3,
            Self::Canceling => 4,
            Self::Delivered
            | Self::Canceled
            | Self::ItemNotAvailable
            | Self::PaymentFailed
            | Self::Failed
            | Self::CompensationFailed => 5,
        }
    }

    /// No further change will happen to an order in a terminal status.
    pub fn is_terminal(self) -> bool {
        self.rank() == 5
    }

    /// An order settles when it is terminal or waits for its delivery.
    pub fn is_settled(self) -> bool {
        self.is_terminal() || self == Self::Delivering
    }

    /// The statuses this one may replace: the conditional-write guard.
    pub fn predecessors(self) -> Vec<OrderStatus> {
        Self::ALL
            .iter()
            .copied()
            .filter(|from| from.rank() < self.rank())
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub payment_id: PaymentId,
    pub amount: Money,
    pub method: String,
    pub status: PaymentStatus,
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "crate::time::rfc3339")]
    pub updated_at: Timestamp,
}

pub const PAYMENT_METHOD: &str = "CREDIT_CARD";

/// A delivery estimate from the depot to an address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    pub origin: String,
    pub address: Address,
    /// Kilometres, two decimals.
    pub distance: Money,
    /// Seconds.
    pub duration: u64,
    pub price: Money,
}

impl Estimate {
    /// The price rule carried over from the original: duration in seconds / 100, in cents.
    pub fn price_for(duration_seconds: u64) -> Money {
        Money::new(i64::try_from(duration_seconds).unwrap_or(i64::MAX), 2)
    }
}

/// How a delivery ends: the one outcome the delivery service, the order service and
/// `ewf` share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Canceled,
}

impl DeliveryOutcome {
    /// The outcome of a finished delivery; none while it is under way.
    pub fn of(status: DeliveryStatus) -> Option<Self> {
        match status {
            DeliveryStatus::Delivering => None,
            DeliveryStatus::Delivered => Some(Self::Delivered),
            DeliveryStatus::Canceled => Some(Self::Canceled),
        }
    }

    pub fn status(self) -> DeliveryStatus {
        match self {
            Self::Delivered => DeliveryStatus::Delivered,
            Self::Canceled => DeliveryStatus::Canceled,
        }
    }

    /// The outcome in words, which also name the delivery service's step.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    pub address: Address,
    pub status: DeliveryStatus,
    /// Who hears how the delivery ends: the workflow (through its task token) or the
    /// choreography (through an event).
    pub mode: Mode,
    /// The Step Functions task token of a workflow waiting for this delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "crate::time::rfc3339")]
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    pub mode: Mode,
    pub order_status: OrderStatus,
    pub item_id: ItemId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(with = "crate::time::rfc3339")]
    pub order_date: Timestamp,
    #[serde(with = "crate::time::rfc3339")]
    pub update_date: Timestamp,
}

impl Order {
    /// A new order in CREATED, for the order `detail` names.
    pub fn new(detail: &OrderDetail, mode: Mode, now: Timestamp) -> Self {
        Self {
            customer_id: detail.customer_id.clone(),
            order_id: detail.order_id.clone(),
            mode,
            order_status: OrderStatus::Created,
            item_id: detail.item_id.clone(),
            item_price: None,
            delivery_price: None,
            total_price: None,
            payment_id: None,
            delivery_address: None,
            failure_reason: None,
            order_date: now,
            update_date: now,
        }
    }
}

/// A status change to an order, with whatever the step learned on the way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderUpdate {
    pub item_price: Option<Money>,
    pub delivery_price: Option<Money>,
    pub total_price: Option<Money>,
    pub payment_id: Option<PaymentId>,
    pub delivery_address: Option<Address>,
    pub failure_reason: Option<String>,
}

impl OrderUpdate {
    /// Copies what the order detail knows (prices, payment, address, failure).
    pub fn from_detail(detail: &OrderDetail) -> Self {
        let item_price = detail.item.as_ref().map(|item| item.price);
        let delivery_price = detail.delivery.as_ref().map(|estimate| estimate.price);
        Self {
            item_price,
            delivery_price,
            total_price: detail.payment.as_ref().map(|payment| payment.amount),
            payment_id: detail.payment_id().cloned(),
            delivery_address: detail
                .delivery
                .as_ref()
                .map(|estimate| estimate.address.clone()),
            failure_reason: detail
                .failure
                .as_ref()
                .map(|failure| failure.reason.clone()),
        }
    }

    pub fn apply(&self, order: &mut Order) {
        fn set<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                target.clone_from(value);
            }
        }
        set(&mut order.item_price, &self.item_price);
        set(&mut order.delivery_price, &self.delivery_price);
        set(&mut order.total_price, &self.total_price);
        set(&mut order.payment_id, &self.payment_id);
        set(&mut order.delivery_address, &self.delivery_address);
        set(&mut order.failure_reason, &self.failure_reason);
    }
}

/// Why an order failed, carried by failure events until the compensation completes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub status: OrderStatus,
    pub reason: String,
}

/// The detail of every order event: the order as it grows along the saga.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetail {
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    pub item_id: ItemId,
    /// The payment to cancel, on events built from an order record (OrderCanceled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl OrderDetail {
    pub fn new(customer_id: CustomerId, order_id: OrderId, item_id: ItemId) -> Self {
        Self {
            customer_id,
            order_id,
            item_id,
            payment_id: None,
            item: None,
            customer: None,
            delivery: None,
            payment: None,
            failure: None,
        }
    }

    pub fn order_ref(&self) -> OrderRef {
        OrderRef {
            customer_id: self.customer_id.clone(),
            order_id: self.order_id.clone(),
        }
    }

    /// What the order is charged: its item plus its delivery.
    pub fn charge(&self) -> Result<Money, ServiceError> {
        match (&self.item, &self.delivery) {
            (Some(item), Some(delivery)) => item
                .price
                .checked_add(delivery.price)
                .ok_or_else(|| {
                    ServiceError::bad_input("detail", "the order's prices are too large")
                })
                .and_then(check_amount),
            _ => Err(ServiceError::bad_input(
                "detail",
                "the order needs its item and delivery to be paid",
            )),
        }
    }

    /// The payment of this order, from the payment record or the bare id.
    pub fn payment_id(&self) -> Option<&PaymentId> {
        self.payment
            .as_ref()
            .map(|payment| &payment.payment_id)
            .or(self.payment_id.as_ref())
    }
}

/// The detail of the delivery outcome events: which order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRef {
    pub customer_id: CustomerId,
    pub order_id: OrderId,
}

/// One event as the Event Store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// `C#<customerId>`, or `P#<itemId>` for an event about an item only.
    pub who: String,
    /// `<event time>#<detail-type>#<event id>`: sorts by time, never collides.
    pub time_what: String,
    pub event_id: String,
    /// SHA-256 of source, detail-type and detail, in hex. A step's events re-emitted on
    /// a retry carry a new event id but the same content: the digest stores them once.
    pub digest: String,
    #[serde(with = "crate::time::rfc3339")]
    pub event_time: Timestamp,
    pub event_source: String,
    pub detail_type: String,
    /// The detail as JSON text.
    pub event_detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(
            OrderStatus::Delivering
                .predecessors()
                .contains(&OrderStatus::Paid)
        );
        assert!(
            !OrderStatus::Paid
                .predecessors()
                .contains(&OrderStatus::Delivering)
        );
        assert!(OrderStatus::Delivered.is_terminal());
        assert!(
            !OrderStatus::Delivered
                .predecessors()
                .contains(&OrderStatus::Canceled)
        );
        assert_eq!(
            "payment_failed".parse::<OrderStatus>(),
            Ok(OrderStatus::PaymentFailed)
        );
    }

    #[test]
    fn delivery_price_is_duration_over_one_hundred_in_cents() {
        assert_eq!(Estimate::price_for(1_234).to_string(), "12.34");
        assert_eq!(Estimate::price_for(60).to_string(), "0.60");
    }

    #[test]
    fn stock_moves_keep_counts_non_negative() {
        let mut item = Item {
            item_id: ItemId::parse("item-1").unwrap(),
            name: "x".into(),
            description: String::new(),
            price: Money::ONE,
            available: 1,
            reserved: 0,
        };
        assert!(!StockMove::Unreserve.allowed(&item));
        StockMove::Reserve.apply(&mut item);
        assert_eq!((item.available, item.reserved), (0, 1));
        assert!(!StockMove::Reserve.allowed(&item));
        assert!(StockMove::Remove.allowed(&item));
    }
}

//! The error names the state machine's `Retry` and `Catch` match (`ErrorEquals`), besides
//! the `States.*` and `Lambda.*` names of the service itself. Each is the `errorType` of a
//! function error a service raises; a test holds this list and the definition file to
//! each other.

pub const ITEM_NOT_AVAILABLE: &str = "ItemNotAvailable";
pub const ITEM_NOT_FOUND: &str = "ItemNotFound";
pub const PAYMENT_FAILED: &str = "PaymentFailed";
/// Not a service error: the delivery service fails the waiting task with it
/// (SendTaskFailure) when a delivery is canceled.
pub const DELIVERY_CANCELED: &str = "DeliveryCanceled";
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";

/// Every name the definition may match.
pub const MATCHED: [&str; 5] = [
    ITEM_NOT_AVAILABLE,
    ITEM_NOT_FOUND,
    PAYMENT_FAILED,
    DELIVERY_CANCELED,
    SERVICE_UNAVAILABLE,
];

/// Whether a name of `ErrorEquals` is the Step Functions service's own.
pub fn is_service_name(name: &str) -> bool {
    name.starts_with("States.") || name.starts_with("Lambda.")
}

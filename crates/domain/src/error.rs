//! Errors. `ServiceError` is what a service tells its caller; each variant has one HTTP
//! status and one error name, the name Step Functions `Catch` matches on.

use crate::{Payment, PaymentId, workflow_errors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The caller sent something malformed; nothing was changed.
    #[error("invalid {field}: {message}")]
    BadInput {
        field: &'static str,
        message: String,
    },
    /// The named thing does not exist. `kind` is e.g. "Customer", "Item".
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// The state does not allow the action; `code` names the reason (e.g. ItemNotAvailable).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The payment was declined; `payment_id` names the FAILED payment recorded for it.
    #[error("payment {payment_id} of {amount} declined")]
    PaymentFailed {
        amount: String,
        payment_id: PaymentId,
    },
    /// The route exists but the action does not.
    #[error("unknown action {action}")]
    UnknownAction { action: String },
    /// A dependency failed; retrying later may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The service is set up wrongly (a setting names something that does not exist):
    /// retrying will not help, so a saga fails and compensates at once.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// A refusal recorded by an earlier attempt of the same step, replayed as it was.
    #[error("{}", .0.message)]
    Recorded(RecordedError),
}

impl ServiceError {
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput {
            field,
            message: message.into(),
        }
    }

    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn unknown_action(action: impl Into<String>) -> Self {
        Self::UnknownAction {
            action: action.into(),
        }
    }

    /// The payment was declined: names its amount and the FAILED payment.
    pub fn payment_failed(payment: &Payment) -> Self {
        Self::PaymentFailed {
            amount: payment.amount.to_string(),
            payment_id: payment.payment_id.clone(),
        }
    }

    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadInput { .. } => 400,
            Self::PaymentFailed { .. } => 402,
            Self::NotFound { .. } => 404,
            Self::Conflict { .. } => 409,
            // An unknown action is an unknown route: the server did not fail.
            Self::UnknownAction { .. } => 404,
            Self::Misconfigured(_) => 500,
            Self::Unavailable(_) => 503,
            Self::Recorded(recorded) => recorded.status,
        }
    }

    /// The error name: the `errorType` of a Lambda function error and the `error` field
    /// of an HTTP error body.
    pub fn name(&self) -> String {
        match self {
            Self::BadInput { .. } => "BadInput".into(),
            Self::NotFound { kind, .. } => format!("{kind}NotFound"),
            Self::Conflict { code, .. } => (*code).into(),
            Self::PaymentFailed { .. } => workflow_errors::PAYMENT_FAILED.into(),
            Self::UnknownAction { .. } => "UnknownAction".into(),
            Self::Unavailable(_) => workflow_errors::SERVICE_UNAVAILABLE.into(),
            Self::Misconfigured(_) => "Misconfigured".into(),
            Self::Recorded(recorded) => recorded.name.clone(),
        }
    }

    /// The field at fault, for bad input.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadInput { field, .. } => Some(field),
            Self::Recorded(recorded) => recorded.field.as_deref(),
            _ => None,
        }
    }

    /// The declined payment, for a failed payment.
    pub fn payment_id(&self) -> Option<&PaymentId> {
        match self {
            Self::PaymentFailed { payment_id, .. } => Some(payment_id),
            Self::Recorded(recorded) => recorded.payment_id.as_ref(),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (a dependency failed).
    pub fn is_transient(&self) -> bool {
        self.status() == 503
    }

    /// The JSON error body: `{"error": name, "message": text, "field"?: name,
    /// "paymentId"?: id}`.
    pub fn body(&self) -> Value {
        let mut body = serde_json::json!({ "error": self.name(), "message": self.to_string() });
        if let Some(field) = self.field() {
            body["field"] = field.into();
        }
        if let Some(payment_id) = self.payment_id() {
            body["paymentId"] = payment_id.as_str().into();
        }
        body
    }
}

/// A refusal as a saga step records it (the step's outcome is "detail or typed error"),
/// so that a repeat of the step refuses alike: same error name for Step Functions to
/// match, same message, status and body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedError {
    pub name: String,
    pub message: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
}

impl From<&ServiceError> for RecordedError {
    fn from(err: &ServiceError) -> Self {
        Self {
            name: err.name(),
            message: err.to_string(),
            status: err.status(),
            field: err.field().map(str::to_owned),
            payment_id: err.payment_id().cloned(),
        }
    }
}

impl From<ServiceError> for RecordedError {
    fn from(err: ServiceError) -> Self {
        Self::from(&err)
    }
}

impl From<RecordedError> for ServiceError {
    fn from(recorded: RecordedError) -> Self {
        Self::Recorded(recorded)
    }
}

/// A store or bus failure. All of them are treated as transient by the services: the
/// caller (EventBridge, Step Functions, the local bus) retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub message: String,
    /// The store refused the caller's credentials or permissions: a retry will not help
    /// a person at a terminal, a change of configuration will.
    pub access_denied: bool,
}

impl StoreError {
    pub fn new(message: impl ToString) -> Self {
        Self {
            message: message.to_string(),
            access_denied: false,
        }
    }

    pub fn access_denied(message: impl ToString) -> Self {
        Self {
            access_denied: true,
            ..Self::new(message)
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err.message)
    }
}

/// The outcome of a conditional write that failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// The record exists but its state does not allow the change.
    #[error("condition failed")]
    ConditionFailed,
    /// The step this write belongs to was already recorded: here is its recorded outcome.
    #[error("step already recorded")]
    AlreadyDone(Value),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_error_replays_with_the_same_name_status_message_and_body() {
        let payment_id = PaymentId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap();
        for original in [
            ServiceError::not_found("Item", "item-9"),
            ServiceError::conflict("ItemNotAvailable", "item item-1 is not available"),
            ServiceError::bad_input("amount", "must be positive"),
            ServiceError::PaymentFailed {
                amount: "412.33".into(),
                payment_id,
            },
        ] {
            let stored = serde_json::to_value(RecordedError::from(&original)).unwrap();
            let replayed =
                ServiceError::from(serde_json::from_value::<RecordedError>(stored).unwrap());
            assert_eq!(
                (
                    replayed.name(),
                    replayed.status(),
                    replayed.to_string(),
                    replayed.body()
                ),
                (
                    original.name(),
                    original.status(),
                    original.to_string(),
                    original.body()
                )
            );
            assert!(!replayed.is_transient());
        }
    }

    #[test]
    fn a_failed_payment_names_its_payment_in_the_message_and_the_body() {
        let payment_id = PaymentId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap();
        let err = ServiceError::PaymentFailed {
            amount: "412.33".into(),
            payment_id: payment_id.clone(),
        };
        assert_eq!(
            err.to_string(),
            "payment 01KDX8Q7V3M2N4P6R8S0T2W4Y6 of 412.33 declined"
        );
        assert_eq!(err.body()["paymentId"], "01KDX8Q7V3M2N4P6R8S0T2W4Y6");
        assert_eq!((err.status(), err.name().as_str()), (402, "PaymentFailed"));
    }
}

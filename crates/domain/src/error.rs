//! Errors. `ServiceError` is what a service tells its caller; each variant has one HTTP
//! status and one error name, the name Step Functions `Catch` matches on.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The caller sent something malformed; nothing was changed.
    #[error("invalid {field}: {message}")]
    BadInput { field: &'static str, message: String },
    /// The named thing does not exist. `kind` is e.g. "Customer", "Item".
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// The state does not allow the action; `code` names the reason (e.g. ItemNotAvailable).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The payment was declined.
    #[error("payment of {amount} failed")]
    PaymentFailed { amount: String },
    /// The route exists but the action does not.
    #[error("unknown action {action}")]
    UnknownAction { action: String },
    /// A dependency failed; retrying later may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl ServiceError {
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput { field, message: message.into() }
    }

    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadInput { .. } => 400,
            Self::PaymentFailed { .. } => 402,
            Self::NotFound { .. } => 404,
            Self::Conflict { .. } => 409,
            Self::UnknownAction { .. } => 501,
            Self::Unavailable(_) => 503,
        }
    }

    /// The error name: the `errorType` of a Lambda function error and the `error` field
    /// of an HTTP error body.
    pub fn name(&self) -> String {
        match self {
            Self::BadInput { .. } => "BadInput".into(),
            Self::NotFound { kind, .. } => format!("{kind}NotFound"),
            Self::Conflict { code, .. } => (*code).into(),
            Self::PaymentFailed { .. } => "PaymentFailed".into(),
            Self::UnknownAction { .. } => "UnknownAction".into(),
            Self::Unavailable(_) => "ServiceUnavailable".into(),
        }
    }

    /// The field at fault, for bad input.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::BadInput { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (a dependency failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The JSON error body: `{"error": name, "message": text, "field"?: name}`.
    pub fn body(&self) -> Value {
        let mut body = serde_json::json!({ "error": self.name(), "message": self.to_string() });
        if let Some(field) = self.field() {
            body["field"] = field.into();
        }
        body
    }
}

/// A store or bus failure. All of them are treated as transient by the services: the
/// caller (EventBridge, Step Functions, the local bus) retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(message: impl ToString) -> Self {
        Self(message.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err.0)
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

//! Errors as the user sees them: one line that says what to do next, and an exit code.

use ewf_domain::ServiceError;
use ewf_local::LocalError;

/// The documented exit codes (see `ewf --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Expectation = 1,
    Usage = 2,
    NotFound = 3,
    Config = 4,
    Service = 5,
    Interrupted = 130,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Exit::NotFound, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Exit::Config, message)
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(Exit::Service, message)
    }

    pub fn expectation(message: impl Into<String>) -> Self {
        Self::new(Exit::Expectation, message)
    }

    /// Adds what to do next to the message.
    pub fn hint(mut self, next: impl AsRef<str>) -> Self {
        self.message = format!("{} — {}", self.message, next.as_ref());
        self
    }
}

impl From<ServiceError> for CliError {
    fn from(err: ServiceError) -> Self {
        let exit = match &err {
            ServiceError::BadInput { .. } => Exit::Usage,
            ServiceError::NotFound { .. } => Exit::NotFound,
            ServiceError::Misconfigured(_) => Exit::Config,
            _ => Exit::Service,
        };
        let next = match &err {
            ServiceError::Conflict { .. } => "check the order with `ewf order describe`",
            ServiceError::Unavailable(_) => "retry; if it persists, look at `ewf events --order`",
            ServiceError::Misconfigured(_) => "fix the function's settings and deploy again",
            _ => "check the ids and values given",
        };
        Self::new(exit, err.to_string()).hint(next)
    }
}

impl From<LocalError> for CliError {
    fn from(err: LocalError) -> Self {
        match err {
            LocalError::Service(err) => err.into(),
            LocalError::NotSettled { .. } => Self::expectation(err.to_string())
                .hint("look at its timeline with `ewf events --order`"),
            LocalError::StateDir { .. } => {
                Self::config(err.to_string()).hint("pass a writable --state-dir")
            }
            LocalError::Settings(_) => Self::config(err.to_string()),
            other => Self::service(format!("local stack: {other}"))
                .hint("retry; remove the state directory to start afresh if it persists"),
        }
    }
}

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
    /// Whether the local stack's storage failed: then the state file itself is asked
    /// what is wrong with it (see [`CliError::explain_state`]).
    pub storage: bool,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            storage: false,
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
            LocalError::Service(err) if !err.is_transient() => err.into(),
            LocalError::NotSettled { .. } => Self::expectation(err.to_string())
                .hint("look at its timeline with `ewf events --order`"),
            LocalError::StateDir { .. } => {
                Self::config(err.to_string()).hint("pass a writable --state-dir")
            }
            LocalError::Settings(_) => Self::config(err.to_string()),
            LocalError::Service(err) if err.is_transient() => Self {
                storage: true,
                ..err.into()
            },
            other => Self {
                storage: true,
                ..Self::service(format!("local stack: {other}"))
                    .hint("retry; remove the state directory to start afresh if it persists")
            },
        }
    }
}

impl CliError {
    /// A storage failure of the local stack, explained by the state file at `path` when
    /// the file is at fault: not a file or not writable (exit 4), locked by another
    /// process past the wait allowed, or damaged (exit 5). Otherwise unchanged.
    pub fn explain_state(self, path: &std::path::Path) -> Self {
        use ewf_sqlite::StateProblem;
        if !self.storage {
            return self;
        }
        let Some(problem) = ewf_sqlite::diagnose(path) else {
            return self;
        };
        let text = problem.to_string();
        match problem {
            StateProblem::NotAFile(_) | StateProblem::NotWritable(..) => Self::config(text)
                .hint("make it a writable file, or pass another --state-dir"),
            StateProblem::Locked(_) => Self::service(text).hint(
                "retry when it has finished, or give the command a longer --timeout",
            ),
            StateProblem::Damaged(..) => Self::service(text).hint(
                "move the state directory away (its orders are lost) and run `ewf seed` to start afresh",
            ),
        }
    }
}

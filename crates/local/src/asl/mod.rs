//! A durable interpreter for the workflow's Amazon States Language file (JSONPath), so
//! that the local stack runs the same state machine as AWS Step Functions.
//!
//! Supported: Pass, Task (`lambda:invoke` and `lambda:invoke.waitForTaskToken`), Choice,
//! Wait, Succeed, Fail; InputPath, Parameters, ResultSelector, ResultPath, OutputPath;
//! Retry, Catch, task and execution timeouts; the intrinsic functions States.Array,
//! States.Format, States.StringToJson and States.JsonToString. Anything else is refused
//! by [`StateMachine::parse`], naming the state and the feature.
//!
//! Executions live in SQLite ([`Executions`]): every state an execution waits in (for a
//! task token, a Wait, a retry's delay) is stored, with the history up to it, so an
//! execution survives the process and is resumed by whichever process receives the
//! token or looks for due executions ([`Executions::resume_due`]).

mod choice;
mod definition;
mod engine;
mod history;
mod path;
mod store;
mod template;
mod wait;

pub use definition::StateMachine;
pub use engine::{Executions, TaskInvoker};
pub use store::{ExecutionStatus, ExecutionSummary, HistoryEvent};

use serde::{Deserialize, Serialize};

/// What the interpreter refuses or fails with. The execution errors are named after
/// the Step Functions API's.
#[derive(Debug, thiserror::Error)]
pub enum AslError {
    #[error("the state machine definition is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the definition uses ${{{0}}}, for which no substitution was given")]
    Substitution(String),
    /// A malformed definition, or a feature the interpreter does not support.
    #[error("{at}: {reason}")]
    Definition { at: String, reason: String },
    #[error("an execution named {0:?} already exists")]
    ExecutionAlreadyExists(String),
    #[error("the task token is unknown, or its task is no longer waiting")]
    TaskDoesNotExist,
    #[error("the task of this token timed out")]
    TaskTimedOut,
    #[error(
        "execution {execution:?} is at state {state:?}, which this state machine does not have"
    )]
    UnknownState { execution: String, state: String },
    #[error("local executions store: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error(transparent)]
    Open(#[from] ewf_domain::StoreError),
    #[error("local executions store holds unreadable data: {0}")]
    Corrupt(String),
}

/// Error names defined by the States language.
pub(crate) mod errors {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const RUNTIME: &str = "States.Runtime";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";

    /// Whether a Retry or Catch entry naming `names` handles `error`. States.ALL and
    /// States.TaskFailed never match a States.Runtime error, which always fails the
    /// execution; States.TaskFailed matches every other error but States.Timeout.
    pub fn handled(names: &[String], error: &str) -> bool {
        error != RUNTIME
            && names.iter().any(|name| {
                name == error || name == ALL || (name == TASK_FAILED && error != TIMEOUT)
            })
    }
}

/// An error raised in a state: its name and cause, as Step Functions reports them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    pub(crate) fn new(error: &str, cause: impl Into<String>) -> Self {
        Self {
            error: error.to_owned(),
            cause: cause.into(),
        }
    }
}

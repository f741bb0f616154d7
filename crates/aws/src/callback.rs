//! Resuming a workflow that waits with a task token (Step Functions SendTaskSuccess and
//! SendTaskFailure).

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{DisplayErrorContext, SdkError};
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use ewf_domain::StoreError;
use ewf_domain::ports::{TaskResult, WorkflowCallback};
use std::error::Error;

#[derive(Clone, Debug)]
pub struct StepFunctionsCallback {
    client: Client,
}

impl StepFunctionsCallback {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The task is no longer waiting: its execution ended (timed out, failed, stopped) or
/// this callback already resumed it.
trait ExecutionEnded {
    fn execution_ended(&self) -> bool;
}

impl ExecutionEnded for SendTaskSuccessError {
    fn execution_ended(&self) -> bool {
        self.is_task_timed_out() || self.is_invalid_token() || self.is_task_does_not_exist()
    }
}

impl ExecutionEnded for SendTaskFailureError {
    fn execution_ended(&self) -> bool {
        self.is_task_timed_out() || self.is_invalid_token() || self.is_task_does_not_exist()
    }
}

/// A repeat (the task no longer waits) is done; any other error is the store's.
fn settled<T, E, R>(result: Result<T, SdkError<E, R>>, operation: &str) -> Result<(), StoreError>
where
    E: ExecutionEnded + Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(E::execution_ended) => {
            tracing::warn!(error = %DisplayErrorContext(&err), "the workflow no longer waits for this task; nothing to resume");
            Ok(())
        }
        Err(err) => Err(StoreError::new(format!(
            "Step Functions {operation} failed: {}",
            DisplayErrorContext(err)
        ))),
    }
}

#[async_trait]
impl WorkflowCallback for StepFunctionsCallback {
    async fn resume(&self, token: &str, result: &TaskResult) -> Result<(), StoreError> {
        match result {
            TaskResult::Success(output) => settled(
                self.client
                    .send_task_success()
                    .task_token(token)
                    .output(output.to_string())
                    .send()
                    .await,
                "SendTaskSuccess",
            ),
            TaskResult::Failure { error, cause } => settled(
                self.client
                    .send_task_failure()
                    .task_token(token)
                    .error(error)
                    .cause(cause)
                    .send()
                    .await,
                "SendTaskFailure",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::types::error::{InvalidOutput, InvalidToken, TaskDoesNotExist, TaskTimedOut};

    #[test]
    fn a_task_that_ended_is_told_apart_from_a_bad_request() {
        assert!(
            SendTaskSuccessError::TaskTimedOut(TaskTimedOut::builder().build()).execution_ended()
        );
        assert!(
            SendTaskFailureError::TaskDoesNotExist(TaskDoesNotExist::builder().build())
                .execution_ended()
        );
        assert!(
            SendTaskFailureError::InvalidToken(InvalidToken::builder().build()).execution_ended()
        );
        assert!(
            !SendTaskSuccessError::InvalidOutput(InvalidOutput::builder().build())
                .execution_ended()
        );
    }
}

//! Resuming a workflow that waits with a task token (Step Functions SendTaskSuccess).

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use ewf_domain::StoreError;
use ewf_domain::ports::WorkflowCallback;
use serde_json::Value;

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
fn execution_ended(err: &SendTaskSuccessError) -> bool {
    err.is_task_timed_out() || err.is_invalid_token() || err.is_task_does_not_exist()
}

#[async_trait]
impl WorkflowCallback for StepFunctionsCallback {
    async fn resume(&self, token: &str, output: &Value) -> Result<(), StoreError> {
        let result = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(execution_ended) => {
                tracing::warn!(error = %DisplayErrorContext(&err), "the workflow no longer waits for this task; nothing to resume");
                Ok(())
            }
            Err(err) => Err(StoreError::new(format!(
                "Step Functions SendTaskSuccess failed: {}",
                DisplayErrorContext(err)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::types::error::{InvalidOutput, TaskDoesNotExist, TaskTimedOut};

    #[test]
    fn a_task_that_ended_is_told_apart_from_a_bad_request() {
        assert!(execution_ended(&SendTaskSuccessError::TaskTimedOut(
            TaskTimedOut::builder().build()
        )));
        assert!(execution_ended(&SendTaskSuccessError::TaskDoesNotExist(
            TaskDoesNotExist::builder().build()
        )));
        assert!(!execution_ended(&SendTaskSuccessError::InvalidOutput(
            InvalidOutput::builder().build()
        )));
    }
}

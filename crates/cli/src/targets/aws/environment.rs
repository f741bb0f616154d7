//! The functions' settings: an environment variable of a deployed function, changed
//! without losing a concurrent writer's change.

use super::errors::aws_error;
use super::{AwsTarget, POLL};
use crate::error::{CliError, Result};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::{Environment, LastUpdateStatus};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a function configuration update may take.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times a configuration update is tried when another writer got in first.
const UPDATE_ATTEMPTS: u32 = 3;

impl AwsTarget {
    pub(super) async fn configuration(
        &self,
        function: &str,
    ) -> Result<GetFunctionConfigurationOutput> {
        self.lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|err| aws_error("GetFunctionConfiguration", err))
    }

    /// The function's configuration once no update is in progress: Lambda refuses an
    /// update while another one (e.g. a deploy's) is being applied.
    async fn settled_configuration(
        &self,
        function: &str,
    ) -> Result<GetFunctionConfigurationOutput> {
        let deadline = Instant::now() + UPDATE_TIMEOUT;
        loop {
            let config = self.configuration(function).await?;
            if config.last_update_status != Some(LastUpdateStatus::InProgress) {
                return Ok(config);
            }
            if Instant::now() >= deadline {
                return Err(CliError::service(format!(
                    "the update of {function} is still in progress"
                ))
                .hint("check it with `aws lambda get-function-configuration`"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Merges `name=value` into the function's environment (an update replaces all of
    /// it). The update names the revision it read, so that a concurrent writer's change
    /// is not lost: Lambda refuses it, and it is read and tried again.
    pub(super) async fn set_variable(
        &self,
        function: &str,
        name: &str,
        value: String,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            let config = self.settled_configuration(function).await?;
            let mut variables = variables(&config);
            variables.insert(name.to_owned(), value.clone());
            let updated = self
                .lambda
                .update_function_configuration()
                .function_name(function)
                .set_revision_id(config.revision_id)
                .environment(
                    Environment::builder()
                        .set_variables(Some(variables))
                        .build(),
                )
                .send()
                .await;
            match updated {
                Ok(_) => break,
                // Another writer's update came between the read and this one.
                Err(err)
                    if attempt < UPDATE_ATTEMPTS
                        && matches!(
                            err.code(),
                            Some("PreconditionFailedException" | "ResourceConflictException")
                        ) =>
                {
                    attempt += 1;
                }
                Err(err) => return Err(aws_error("UpdateFunctionConfiguration", err)),
            }
        }
        let config = self.settled_configuration(function).await?;
        if config.last_update_status == Some(LastUpdateStatus::Failed) {
            let reason = config.last_update_status_reason.unwrap_or_default();
            return Err(
                CliError::service(format!("the update of {function} failed: {reason}"))
                    .hint("fix the cause and run set-fail-probability again"),
            );
        }
        Ok(())
    }
}

pub(super) fn variables(config: &GetFunctionConfigurationOutput) -> HashMap<String, String> {
    config
        .environment
        .as_ref()
        .and_then(|environment| environment.variables.clone())
        .unwrap_or_default()
}

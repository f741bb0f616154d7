//! AWS errors classified for the user: credentials and permissions are configuration
//! (exit 4), a missing resource is not found, the rest a service error.

use crate::error::CliError;
use crate::targets::causes;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use ewf_aws::is_access_denied;
use ewf_domain::StoreError;

const CREDENTIALS_HINT: &str =
    "check your credentials and permissions (--profile, `aws sso login`)";

/// An AWS error, classified: credentials and permissions are configuration (exit 4),
/// everything else a service error.
pub(super) fn aws_error<E, R>(action: &str, err: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // The service's own words when there are some; the whole chain otherwise.
    let message = match (err.code(), err.message()) {
        (Some(code), Some(text)) => format!("{action} failed: {code}: {text}"),
        _ => format!("{action} failed: {}", causes(&err)),
    };
    match err.code() {
        Some(code) if is_access_denied(Some(code)) => {
            CliError::config(message).hint(CREDENTIALS_HINT)
        }
        Some(
            "ResourceNotFoundException" | "ExecutionDoesNotExist" | "StateMachineDoesNotExist",
        ) => CliError::not_found(message).hint("check the stack's resources with `ewf stack`"),
        _ => CliError::service(message)
            .hint("retry; check --region and --endpoint-url if it persists"),
    }
}

/// A DynamoDB adapter's error: refused credentials or permissions (exit 4), as the
/// adapter classified it from the error's code, or the rest.
pub(super) fn store_error(err: StoreError) -> CliError {
    if err.access_denied {
        CliError::config(err.message).hint(CREDENTIALS_HINT)
    } else {
        CliError::service(err.message)
            .hint("retry; check the stack with `ewf stack` if it persists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_permission_errors_are_configuration_errors() {
        let denied = store_error(StoreError::access_denied(
            "DynamoDB GetItem on table Orders failed: service error: unhandled error (AccessDeniedException): User is not authorized",
        ));
        assert_eq!(denied.exit, crate::error::Exit::Config);
        assert!(
            denied.message.starts_with("DynamoDB GetItem"),
            "{}",
            denied.message
        );
        assert!(denied.message.contains("credentials"), "{}", denied.message);
        let throttled = store_error(StoreError::new(
            "DynamoDB GetItem on table Orders failed: service error: ProvisionedThroughputExceededException",
        ));
        assert_eq!(throttled.exit, crate::error::Exit::Service);
    }
}

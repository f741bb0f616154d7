//! Finding the stack: the SDK's configuration as the AWS CLI would load it, and the
//! stack's outputs (its physical names and endpoints).

use super::errors::aws_error;
use super::tls::CaBundle;
use crate::error::{CliError, Result};
use crate::targets::{AwsSettings, causes};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::collections::BTreeMap;

pub(super) async fn load_config(
    settings: &AwsSettings,
    ca_bundle: Option<&CaBundle>,
) -> Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(bundle) = ca_bundle {
        loader = loader.http_client(bundle.sdk_client()?);
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok(loader.load().await)
}

/// Why the stack's outputs were not read: its endpoint could not be reached (no
/// connection, or none in time), or it answered with an error.
pub(super) enum OutputsError {
    Unreached(String),
    Refused(CliError),
}
use OutputsError::{Refused, Unreached};

impl From<CliError> for OutputsError {
    fn from(err: CliError) -> Self {
        Refused(err)
    }
}

pub(super) async fn stack_outputs(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
    region: &str,
) -> Result<BTreeMap<String, String>, OutputsError> {
    let described = cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|err| {
            if let SdkError::DispatchFailure(failure) = &err
                && (failure.is_io() || failure.is_timeout())
            {
                Unreached(causes(&err))
            } else if err.code() == Some("ValidationError") {
                Refused(
                    CliError::config(format!("stack {stack} not found in {region}")).hint(
                        "deploy it with `ewf deploy`, or check --stack, --region and --profile",
                    ),
                )
            } else {
                Refused(aws_error("DescribeStacks", err))
            }
        })?;
    let stack = described
        .stacks
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            CliError::config(format!("stack {stack} not found in {region}"))
                .hint("deploy it with `ewf deploy`")
        })?;
    Ok(stack
        .outputs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|output| Some((output.output_key?, output.output_value?)))
        .collect())
}

pub(super) fn required_output(
    outputs: &BTreeMap<String, String>,
    stack: &str,
    key: &str,
) -> Result<String> {
    outputs
        .get(key)
        .cloned()
        .ok_or_else(|| missing_output(stack, key))
}

pub(super) fn missing_output(stack: &str, key: &str) -> CliError {
    CliError::config(format!("stack {stack} has no output {key}"))
        .hint("deploy this version of the template with `ewf deploy`")
}

//! Calls to the stack's HTTP API, signed with SigV4 (the routes use AWS_IAM authorization).

use super::causes;
use crate::error::{CliError, Result};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// How long one API call may take, and connecting for it: a hung call must not hang `ewf`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SignedHttp {
    client: reqwest::Client,
    /// Asked for every request rather than once: temporary credentials (SSO, an assumed
    /// role) can expire during a long wait or demo, and the SDK's provider caches them
    /// and renews them when they do.
    credentials: SharedCredentialsProvider,
    region: String,
}

/// A response: the status and the JSON body (or the text, when it is not JSON).
pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl SignedHttp {
    pub fn new(credentials: SharedCredentialsProvider, region: String) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| {
                CliError::config(format!("cannot set up HTTPS: {err}"))
                    .hint("check the system's TLS configuration (EWF_LOG=debug shows more)")
            })?;
        Ok(Self {
            client,
            credentials,
            region,
        })
    }

    /// The current credentials, from the SDK's provider (cached until they expire).
    pub async fn credentials(&self) -> Result<Credentials> {
        self.credentials.provide_credentials().await.map_err(|err| {
            // The provider chain's story is long (every provider it tried): keep it for the log.
            tracing::debug!(error = %DisplayErrorContext(&err), "no credentials");
            no_credentials()
        })
    }

    pub async fn get(&self, url: &str) -> Result<Response> {
        let credentials = self.credentials().await?;
        let headers =
            signed_headers(&credentials, &self.region, SystemTime::now(), url).map_err(|err| {
                CliError::config(format!("cannot sign the request to {url}: {err}"))
                    .hint("check the HttpApiUrl output with `ewf stack`")
            })?;
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|err| failed(url, &err))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|err| failed(url, &err))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Response { status, body })
    }
}

pub fn no_credentials() -> CliError {
    CliError::config("no AWS credentials found")
        .hint("run `aws configure` or `aws sso login`, or pass --profile (EWF_LOG=debug shows why)")
}

/// A request that got no (whole) answer, saying whether it timed out.
fn failed(url: &str, err: &reqwest::Error) -> CliError {
    let message = if err.is_timeout() {
        format!("no answer from {url} within {}s", REQUEST_TIMEOUT.as_secs())
    } else {
        // reqwest's own message leaves out why, e.g. that the connection was refused.
        format!("cannot reach {url}: {}", causes(err))
    };
    CliError::service(message)
        .hint("retry; if it persists, check your network and the HttpApiUrl output (`ewf stack`)")
}

/// The headers that sign a GET of `url` for API Gateway (`execute-api`) in `region` at
/// `time`: a function of its inputs only, so that the signing can be tested.
fn signed_headers(
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
    url: &str,
) -> Result<Vec<(String, String)>, String> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|err| err.to_string())?
        .into();
    let signable = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|err| err.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|err| err.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

impl Response {
    /// The body of a successful response, or the error the API answered with.
    pub fn into_success(self, request: &str) -> Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let message = self
            .body
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(
                || format!("{request}: HTTP {}: {}", self.status, self.body),
                |message| format!("{request}: {message}"),
            );
        Err(match self.status {
            400 => CliError::new(crate::error::Exit::Usage, message).hint("check the ids given"),
            403 => CliError::config(message)
                .hint("the API refused the signed request: check your credentials and their execute-api:Invoke permission"),
            404 => CliError::not_found(message).hint("check the ids given"),
            _ => CliError::service(message).hint("check the order with `ewf order describe`"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_get_is_signed_for_execute_api_in_the_region_with_the_session_token() {
        let credentials =
            Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "test");
        // 2024-01-02T03:04:05Z
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645);
        let url = "https://abc123.execute-api.eu-west-2.amazonaws.com/customer/describe/customer-1";
        let sign = |region: &str| -> HashMap<String, String> {
            signed_headers(&credentials, region, time, url)
                .unwrap()
                .into_iter()
                .collect()
        };
        let headers = sign("eu-west-2");
        assert_eq!(headers["x-amz-date"], "20240102T030405Z");
        assert_eq!(headers["x-amz-security-token"], "token");
        let authorization = &headers["authorization"];
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/eu-west-2/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=";
        let signature = authorization
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{authorization}"));
        assert_eq!(signature.len(), 64, "{signature}");
        assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
        // The same request signed for another region is another signature.
        assert_ne!(sign("us-east-1")["authorization"], *authorization);
    }
}

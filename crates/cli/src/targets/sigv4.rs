//! Calls to the stack's HTTP API, signed with SigV4 (the routes use AWS_IAM authorization).

use crate::error::{CliError, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::Value;
use std::time::SystemTime;

pub struct SignedHttp {
    client: reqwest::Client,
    credentials: Credentials,
    region: String,
}

/// A response: the status and the JSON body (or the text, when it is not JSON).
pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl SignedHttp {
    pub fn new(credentials: Credentials, region: String) -> Self {
        Self {
            client: reqwest::Client::new(),
            credentials,
            region,
        }
    }

    pub async fn get(&self, url: &str) -> Result<Response> {
        let unsigned = |err: &dyn std::fmt::Display| {
            CliError::config(format!("cannot sign the request to {url}: {err}"))
                .hint("check the HttpApiUrl output with `ewf stack`")
        };
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| unsigned(&err))?
            .into();
        let signable =
            SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
                .map_err(|err| unsigned(&err))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|err| unsigned(&err))?
            .into_parts();
        let mut request = self.client.get(url);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|err| {
            CliError::service(format!("cannot reach {url}: {err}"))
                .hint("check your network and the stack's HttpApiUrl")
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|err| {
            CliError::service(format!("no answer from {url}: {err}")).hint("retry")
        })?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Response { status, body })
    }
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

//! Calls to the stack's HTTP API, signed with SigV4 (the routes use AWS_IAM authorization).

use super::tls::CaBundle;
use crate::error::{CliError, Result};
use crate::targets::causes;
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

/// The HTTP API reached through an emulator's endpoint, which serves every API on its
/// one address and tells them apart by the Host header: the URL keeps the API's host
/// name (for the Host header and the signature), with the endpoint's scheme and port,
/// and the name resolves to the endpoint's address.
#[derive(Clone, Debug, PartialEq)]
pub struct Through {
    /// The API's base URL as `ewf` calls it.
    pub base: String,
    api_host: String,
    endpoint_host: String,
    port: u16,
}

impl Through {
    pub fn new(api_url: &str, endpoint: &str) -> Result<Self> {
        let parse = |what: &str, url: &str| {
            reqwest::Url::parse(url).map_err(|err| {
                CliError::config(format!("the {what} {url:?} is not a URL: {err}"))
                    .hint("check --endpoint-url, or give the API's own with --api-url")
            })
        };
        let api = parse("HTTP API URL", api_url)?;
        let endpoint_url = parse("endpoint URL", endpoint)?;
        let host = |url: &reqwest::Url, what: &str| {
            url.host_str().map(str::to_owned).ok_or_else(|| {
                CliError::config(format!("the {what} {url} has no host"))
                    .hint("check --endpoint-url, or give the API's own with --api-url")
            })
        };
        let (api_host, endpoint_host) = (
            host(&api, "HTTP API URL")?,
            host(&endpoint_url, "endpoint URL")?,
        );
        let port = endpoint_url.port_or_known_default().unwrap_or(80);
        let base = format!(
            "{}://{api_host}:{port}{}",
            endpoint_url.scheme(),
            api.path().trim_end_matches('/')
        );
        Ok(Self {
            base,
            api_host,
            endpoint_host,
            port,
        })
    }

    fn resolve(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder> {
        use std::net::ToSocketAddrs;
        let address = (self.endpoint_host.as_str(), self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addresses| addresses.next())
            .ok_or_else(|| {
                CliError::config(format!(
                    "cannot resolve the endpoint host {}",
                    self.endpoint_host
                ))
                .hint("check --endpoint-url")
            })?;
        Ok(builder.resolve(&self.api_host, address))
    }
}

impl SignedHttp {
    pub fn new(
        credentials: SharedCredentialsProvider,
        region: String,
        ca_bundle: Option<&CaBundle>,
        through: Option<&Through>,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(bundle) = ca_bundle {
            for certificate in bundle.certificates()? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(through) = through {
            builder = through.resolve(builder)?;
        }
        let client = builder.build().map_err(|err| match ca_bundle {
            Some(bundle) => bundle.invalid(&causes(&err)),
            None => CliError::config(format!("cannot set up HTTPS: {err}"))
                .hint("check the system's TLS configuration (EWF_LOG=debug shows more)"),
        })?;
        Ok(Self {
            client,
            credentials,
            region,
        })
    }

    /// The current credentials, from the SDK's provider (cached until they expire).
    pub async fn credentials(&self) -> Result<Credentials> {
        credentials_of(&self.credentials).await
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

/// The provider's current credentials (cached by the SDK until they expire).
pub async fn credentials_of(provider: &SharedCredentialsProvider) -> Result<Credentials> {
    provider.provide_credentials().await.map_err(|err| {
        // The provider chain's story is long (every provider it tried): keep it for the log.
        tracing::debug!(error = %DisplayErrorContext(&err), "no credentials");
        no_credentials()
    })
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
    fn through_an_endpoint_the_api_keeps_its_host_name_on_the_endpoints_scheme_and_port() {
        let api = "https://abc123.execute-api.eu-west-2.amazonaws.com";
        let through = Through::new(api, "http://127.0.0.1:4566").unwrap();
        assert_eq!(
            through.base,
            "http://abc123.execute-api.eu-west-2.amazonaws.com:4566"
        );
        assert_eq!(
            (through.endpoint_host.as_str(), through.port),
            ("127.0.0.1", 4566)
        );
        // A stage in the API's URL stays; the endpoint's default port is spelled out.
        let staged = Through::new(&format!("{api}/v1/"), "https://localhost").unwrap();
        assert_eq!(
            staged.base,
            "https://abc123.execute-api.eu-west-2.amazonaws.com:443/v1"
        );
        let bad = Through::new(api, "127.0.0.1:4566").unwrap_err();
        assert_eq!(bad.exit, crate::error::Exit::Config);
    }

    #[tokio::test]
    async fn a_call_through_an_endpoint_reaches_it_addressed_to_the_api() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = vec![0; 4096];
            let read = stream.read(&mut head).await.unwrap();
            let body = r#"{"ok":true}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head[..read]).to_lowercase()
        });
        let through = Through::new(
            "https://abc123.execute-api.eu-west-2.amazonaws.com",
            &endpoint,
        )
        .unwrap();
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let http = SignedHttp::new(
            SharedCredentialsProvider::new(credentials),
            "eu-west-2".into(),
            None,
            Some(&through),
        )
        .unwrap();
        let response = http
            .get(&format!("{}/customer/describe/customer-1", through.base))
            .await
            .unwrap();
        assert_eq!(
            (response.status, response.body),
            (200, serde_json::json!({"ok": true}))
        );
        let head = server.await.unwrap();
        assert!(
            head.starts_with("get /customer/describe/customer-1 http/1.1"),
            "{head}"
        );
        let port = endpoint.rsplit(':').next().unwrap();
        assert!(
            head.contains(&format!(
                "host: abc123.execute-api.eu-west-2.amazonaws.com:{port}"
            )),
            "{head}"
        );
        assert!(head.contains("authorization: aws4-hmac-sha256"), "{head}");
    }

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

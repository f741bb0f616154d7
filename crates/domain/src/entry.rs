//! The three ways a function is called, decoded in one place, and the one place where
//! a service's result becomes the reply its caller expects:
//!
//! - an API Gateway HTTP API request (payload format 2.0): always a response, errors as
//!   JSON bodies with their status codes;
//! - an EventBridge event: success, or a function error so that the event is retried
//!   and finally dead-lettered;
//! - a direct invocation from the state machine: the result, or a function error whose
//!   `errorType` is the error name that `Catch` matches.

use crate::events::DetailType;
use crate::{ServiceError, Timestamp};
use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An HTTP request, reduced to what the services route on.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    /// The URL-decoded path segments, without the stage.
    pub segments: Vec<String>,
    pub body: Option<String>,
}

impl HttpRequest {
    /// Builds a request from a method and a raw (percent-encoded) path.
    pub fn new(method: &str, raw_path: &str, body: Option<String>) -> Result<Self, ServiceError> {
        let segments = raw_path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                percent_decode_str(segment)
                    .decode_utf8()
                    .map(|decoded| decoded.into_owned())
                    .map_err(|_| ServiceError::bad_input("path", "is not valid UTF-8 once decoded"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { method: method.to_ascii_uppercase(), segments, body })
    }

    fn from_api_gateway(request: ApiGatewayV2httpRequest) -> Result<Self, ServiceError> {
        let raw_path = request.raw_path.unwrap_or_default();
        // A named stage prefixes the path; the $default stage does not.
        let path = match request.request_context.stage.as_deref() {
            Some(stage) if stage != "$default" => raw_path
                .strip_prefix(&format!("/{stage}"))
                .unwrap_or(&raw_path)
                .to_owned(),
            _ => raw_path,
        };
        if request.is_base64_encoded {
            return Err(ServiceError::bad_input("body", "must be JSON text"));
        }
        Self::new(request.request_context.http.method.as_str(), &path, request.body)
    }

    /// The path segment at `index`, or a 404-style error naming the route.
    pub fn segment(&self, index: usize) -> Option<&str> {
        self.segments.get(index).map(String::as_str)
    }
}

/// An EventBridge event, reduced to what the services use.
#[derive(Clone, Debug, PartialEq)]
pub struct EventInput {
    pub id: String,
    pub time: Timestamp,
    pub source: String,
    pub detail_type: String,
    pub detail: Value,
}

impl EventInput {
    /// The detail-type as one of ours, or bad input.
    pub fn known_type(&self) -> Result<DetailType, ServiceError> {
        self.detail_type
            .parse()
            .map_err(|expected| ServiceError::bad_input("detail-type", expected))
    }
}

/// A decoded function input.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Http(HttpRequest),
    Event(EventInput),
    Invoke(Value),
}

impl Input {
    /// Tells the three shapes apart: an HTTP API request has `requestContext` and
    /// `rawPath`, an EventBridge event has `detail-type`, anything else is a direct
    /// invocation.
    pub fn from_json(payload: Value) -> Result<Self, ServiceError> {
        if payload.get("requestContext").is_some() && payload.get("rawPath").is_some() {
            let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
                .map_err(|err| ServiceError::bad_input("request", err.to_string()))?;
            return HttpRequest::from_api_gateway(request).map(Input::Http);
        }
        if payload.get("detail-type").is_some() {
            let event: EventBridgeEvent<Value> = serde_json::from_value(payload)
                .map_err(|err| ServiceError::bad_input("event", err.to_string()))?;
            return Ok(Input::Event(EventInput {
                id: event.id.unwrap_or_default(),
                time: event.time.unwrap_or_else(chrono::Utc::now),
                source: event.source,
                detail_type: event.detail_type,
                detail: event.detail,
            }));
        }
        Ok(Input::Invoke(payload))
    }
}

/// What a command returns: the HTTP status on success (200, or 201 for a creation) and
/// the JSON result.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: impl Serialize) -> Self {
        Self { status: 200, body: serde_json::to_value(body).unwrap_or(Value::Null) }
    }

    pub fn created(body: impl Serialize) -> Self {
        Self { status: 201, ..Self::ok(body) }
    }
}

/// A Lambda function error, as the runtime reports it and Step Functions matches it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{error_type}: {error_message}")]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
}

impl From<&ServiceError> for FunctionError {
    fn from(err: &ServiceError) -> Self {
        Self { error_type: err.name(), error_message: err.to_string() }
    }
}

/// A service behind one Lambda function: decodes any input into its command type and
/// executes it.
#[async_trait]
pub trait Function: Send + Sync {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError>;
}

/// Calls a function with a raw payload and encodes its result for the caller: the
/// Lambda runtime, the local bus, the local state machine and the local HTTP server all
/// go through here.
pub async fn invoke(function: &dyn Function, payload: Value) -> Result<Value, FunctionError> {
    let input = match Input::from_json(payload) {
        Ok(input) => input,
        Err(err) => return Err(FunctionError::from(&err)),
    };
    let is_http = matches!(input, Input::Http(_));
    let result = function.handle(input).await;
    if let Err(err) = &result {
        if err.is_transient() {
            tracing::error!(error = %err, name = %err.name(), "request failed");
        } else {
            tracing::warn!(error = %err, name = %err.name(), "request refused");
        }
    }
    match result {
        Ok(reply) if is_http => Ok(http_response(reply.status, &reply.body)),
        Err(err) if is_http => Ok(http_response(err.status(), &err.body())),
        Ok(reply) => Ok(reply.body),
        Err(err) => Err(FunctionError::from(&err)),
    }
}

/// An HTTP API (payload format 2.0) response with a JSON body.
pub fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_and_url_decoded() {
        let request =
            HttpRequest::new("get", "/delivery/estimate/St%20Paul%27s%20Churchyard%2C%20London", None)
                .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.segments, ["delivery", "estimate", "St Paul's Churchyard, London"]);
    }

    #[test]
    fn the_three_shapes_are_told_apart() {
        let event = json!({
            "version": "0", "id": "e-1", "detail-type": "OrderCreated", "source": "Order",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": {"orderId": "o"}
        });
        let Input::Event(event) = Input::from_json(event).unwrap() else { panic!("not an event") };
        assert_eq!(event.known_type().unwrap(), DetailType::OrderCreated);
        assert!(matches!(Input::from_json(json!({"action": "reserve"})).unwrap(), Input::Invoke(_)));
    }
}

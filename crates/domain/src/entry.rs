//! The three ways a function is called, decoded in one place, and the one place where
//! a service's result becomes the reply its caller expects:
//!
//! - an API Gateway HTTP API request (payload format 2.0): always a response, errors as
//!   JSON bodies with their status codes;
//! - an EventBridge event: success, or a function error so that the event is retried
//!   and finally dead-lettered;
//! - a direct invocation from the state machine: the result, or a function error whose
//!   `errorType` is the error name that `Catch` matches.

use crate::events::{BusEvent, DetailType, FunctionName};
use crate::{OrderDetail, RecordedError, ServiceError, Timestamp};
use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

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
        Ok(Self {
            method: method.to_ascii_uppercase(),
            segments,
            body,
        })
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
        Self::new(
            request.request_context.http.method.as_str(),
            &path,
            request.body,
        )
    }

    /// The path segment at `index`.
    pub fn segment(&self, index: usize) -> Option<&str> {
        self.segments.get(index).map(String::as_str)
    }

    /// The action of a `GET /<service>/<action>/...` request; any other method,
    /// service, or a path without an action is RouteNotFound.
    pub fn action(&self, service: &str) -> Result<&str, ServiceError> {
        match self.segments.as_slice() {
            [first, action, ..] if self.method == "GET" && first == service => Ok(action),
            _ => Err(self.route_not_found()),
        }
    }

    /// The `N` parameters after `/<service>/<action>`: a missing one is bad input naming
    /// its field, more than `N` is bad input on the path.
    pub fn params<const N: usize>(
        &self,
        fields: [&'static str; N],
    ) -> Result<[&str; N], ServiceError> {
        let values = self.segments.get(2..).unwrap_or_default();
        if let Some(missing) = fields.get(values.len()) {
            return Err(ServiceError::bad_input(missing, "is missing from the path"));
        }
        let values: &[String; N] = values.try_into().map_err(|_| {
            ServiceError::bad_input("path", format!("takes {N} parameters after the action"))
        })?;
        Ok(values.each_ref().map(String::as_str))
    }

    /// 404 RouteNotFound, naming the method and path.
    pub fn route_not_found(&self) -> ServiceError {
        ServiceError::not_found("Route", self)
    }
}

impl fmt::Display for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} /{}", self.method, self.segments.join("/"))
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

    /// Reads the detail as `T`, naming the event when it does not fit.
    pub fn parse_detail<T: DeserializeOwned>(&self) -> Result<T, ServiceError> {
        BusEvent::parse_detail(&self.detail_type, &self.detail)
    }

    /// The error for an event that `service` has no rule for.
    pub fn not_handled_by(&self, service: FunctionName) -> ServiceError {
        ServiceError::bad_input(
            "detail-type",
            format!("{service} does not handle {}", self.detail_type),
        )
    }
}

/// A direct invocation's payload, `{"action": ..., "order": ..., ...extra}`, read field
/// by field so that an error names the field at fault.
#[derive(Clone, Copy, Debug)]
pub struct Invocation<'a>(pub &'a Value);

impl<'a> Invocation<'a> {
    pub fn action(&self) -> Result<&'a str, ServiceError> {
        self.0
            .get("action")
            .ok_or_else(|| ServiceError::bad_input("action", "is required"))?
            .as_str()
            .ok_or_else(|| ServiceError::bad_input("action", "must be a string"))
    }

    /// The order detail the workflow carries.
    pub fn order(&self) -> Result<OrderDetail, ServiceError> {
        self.field("order")
    }

    /// A required field.
    pub fn field<T: DeserializeOwned>(&self, name: &'static str) -> Result<T, ServiceError> {
        let value = self
            .0
            .get(name)
            .ok_or_else(|| ServiceError::bad_input(name, "is required"))?;
        T::deserialize(value).map_err(|err| ServiceError::bad_input(name, err.to_string()))
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
    /// Whether a payload is an HTTP API request: it has `requestContext` and `rawPath`.
    fn is_http(payload: &Value) -> bool {
        payload.get("requestContext").is_some() && payload.get("rawPath").is_some()
    }

    /// Tells the three shapes apart: an HTTP API request (see `is_http`), an
    /// EventBridge event has `detail-type`, anything else is a direct invocation.
    pub fn from_json(payload: Value) -> Result<Self, ServiceError> {
        if Self::is_http(&payload) {
            let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
                .map_err(|err| ServiceError::bad_input("request", err.to_string()))?;
            return HttpRequest::from_api_gateway(request).map(Input::Http);
        }
        if payload.get("detail-type").is_some() {
            // The detail is moved out and back in, not copied: the envelope is what
            // needs reading.
            let mut payload = payload;
            let detail = payload.get_mut("detail").map_or(Value::Null, Value::take);
            let event: EventBridgeEvent<Value> = serde_json::from_value(payload)
                .map_err(|err| ServiceError::bad_input("event", err.to_string()))?;
            return Ok(Input::Event(EventInput {
                id: event.id.unwrap_or_default(),
                time: event.time.unwrap_or_else(chrono::Utc::now),
                source: event.source,
                detail_type: event.detail_type,
                detail,
            }));
        }
        Ok(Input::Invoke(payload))
    }
}

/// A service's command, decoded from whichever of the three inputs arrived.
pub trait Decode: Sized {
    fn from_http(request: &HttpRequest) -> Result<Self, ServiceError>;
    fn from_event(event: &EventInput) -> Result<Self, ServiceError>;
    fn from_invoke(invocation: Invocation) -> Result<Self, ServiceError>;

    fn decode(input: &Input) -> Result<Self, ServiceError> {
        match input {
            Input::Http(request) => Self::from_http(request),
            Input::Event(event) => Self::from_event(event),
            Input::Invoke(payload) => Self::from_invoke(Invocation(payload)),
        }
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
        Self {
            status: 200,
            body: serde_json::to_value(body)
                .expect("replies are plain data: no maps with keys other than strings"),
        }
    }

    pub fn created(body: impl Serialize) -> Self {
        Self {
            status: 201,
            ..Self::ok(body)
        }
    }

    /// The reply of a workflow step: the detail it recorded, or its recorded refusal as
    /// the error.
    pub fn outcome(outcome: Result<impl Serialize, RecordedError>) -> Result<Self, ServiceError> {
        outcome.map(Self::ok).map_err(ServiceError::from)
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
        Self {
            error_type: err.name(),
            error_message: err.to_string(),
        }
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
    // A request that cannot be decoded is still answered as HTTP: the caller's fault
    // is a 400, never API Gateway's 500 for a function error.
    let is_http = Input::is_http(&payload);
    let result = match Input::from_json(payload) {
        Ok(input) => function.handle(input).await,
        Err(err) => Err(err),
    };
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
        let request = HttpRequest::new(
            "get",
            "/delivery/estimate/St%20Paul%27s%20Churchyard%2C%20London",
            None,
        )
        .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.segments,
            ["delivery", "estimate", "St Paul's Churchyard, London"]
        );
    }

    #[test]
    fn the_three_shapes_are_told_apart() {
        let event = json!({
            "version": "0", "id": "e-1", "detail-type": "OrderCreated", "source": "Order",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": {"orderId": "o"}
        });
        let Input::Event(event) = Input::from_json(event).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(event.known_type().unwrap(), DetailType::OrderCreated);
        assert!(matches!(
            Input::from_json(json!({"action": "reserve"})).unwrap(),
            Input::Invoke(_)
        ));
    }

    #[test]
    fn routes_name_the_missing_field_or_are_not_found() {
        let get = |path| HttpRequest::new("GET", path, None).unwrap();
        let request = get("/order/describe/customer-1/o-1");
        assert_eq!(request.action("order").unwrap(), "describe");
        assert_eq!(
            request.params(["customerId", "orderId"]).unwrap(),
            ["customer-1", "o-1"]
        );
        let missing = get("/order/describe/customer-1");
        let err = missing.params(["customerId", "orderId"]).unwrap_err();
        assert_eq!(err.field(), Some("orderId"));
        let extra = get("/order/describe/a/b/c");
        assert_eq!(
            extra.params(["customerId", "orderId"]).unwrap_err().field(),
            Some("path")
        );
        for (method, path) in [
            ("GET", "/order"),
            ("POST", "/order/create/c/i"),
            ("GET", "/payment/pay/1"),
        ] {
            let err = HttpRequest::new(method, path, None)
                .unwrap()
                .action("order")
                .unwrap_err();
            assert_eq!(
                (err.status(), err.name()),
                (404, "RouteNotFound".to_owned()),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn invocation_errors_name_the_field() {
        let payload = json!({"action": 3, "order": {"orderId": "o-1"}});
        let invocation = Invocation(&payload);
        assert_eq!(invocation.action().unwrap_err().field(), Some("action"));
        assert_eq!(invocation.order().unwrap_err().field(), Some("order"));
        assert_eq!(
            invocation.field::<String>("status").unwrap_err().field(),
            Some("status")
        );
    }
}

//! `ewf local serve`: the HTTP API and `POST /order` on localhost, so the seed's curl
//! commands work against the local stack. Requests reach the services as API Gateway
//! (payload format 2.0) events, through the same decoding as on AWS.

use crate::stack::{LocalError, LocalStack};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ewf_domain::entry::http_response;
use ewf_domain::events::FunctionName;
use ewf_domain::{CustomerId, ItemId, Mode, ServiceError};
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;

/// Serves until `shutdown` completes.
pub async fn serve(
    stack: LocalStack,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    // Between requests, the stack still runs what falls due (retries, timeouts, the
    // sweep of orders past their deadline), as AWS would.
    let ticking = stack.clone();
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            if let Err(err) = ticking.drain().await {
                tracing::error!(error = %err, "local stack drain failed");
            }
        }
    });
    let app = Router::new().fallback(route).with_state(stack);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|err| LocalError::Workflow(format!("http server: {err}")));
    ticker.abort();
    served
}

/// How often the server runs the stack's due work between requests.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Binds 127.0.0.1 (never another interface) on `port` (0: any free port).
pub async fn bind(port: u16) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

async fn route(State(stack): State<LocalStack>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path();
    let reply = if method == Method::POST && path.trim_end_matches('/') == "/order" {
        start_workflow(&stack, &body).await
    } else {
        match function_for(path) {
            Some(function) if method == Method::GET => {
                match stack
                    .invoke(function, api_gateway_request(&method, path))
                    .await
                {
                    Ok(response) => response,
                    Err(err) => error_response(&ServiceError::Unavailable(err.to_string())),
                }
            }
            _ => http_response(
                404,
                &json!({ "error": "RouteNotFound", "message": format!("no route {method} {path}") }),
            ),
        }
    };
    // Let the saga run on after the reply, as the bus would on AWS.
    let background = stack.clone();
    tokio::spawn(async move {
        if let Err(err) = background.drain().await {
            tracing::error!(error = %err, "local bus drain failed");
        }
    });
    into_http(reply)
}

/// The function behind a path's first segment, as the template's routes map them.
fn function_for(path: &str) -> Option<FunctionName> {
    match path.trim_start_matches('/').split('/').next()? {
        "customer" => Some(FunctionName::Customer),
        "order" => Some(FunctionName::Order),
        "inventory" => Some(FunctionName::Inventory),
        "payment" => Some(FunctionName::Payment),
        "delivery" => Some(FunctionName::Delivery),
        _ => None,
    }
}

/// A request in the shape API Gateway HTTP APIs send (payload format 2.0).
fn api_gateway_request(method: &Method, raw_path: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.as_str(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "ewf-local"
            },
            "requestId": "local",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
}

/// The body of `POST /order`, `{"customerId": ..., "itemId": ...}`; an error names the
/// field at fault.
fn create_order_request(body: &[u8]) -> Result<(CustomerId, ItemId), ServiceError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|err| ServiceError::bad_input("body", format!("must be a JSON object: {err}")))?;
    let field = |name: &'static str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| ServiceError::bad_input(name, "is required, as a string"))
    };
    Ok((
        field(CustomerId::FIELD)?.parse()?,
        field(ItemId::FIELD)?.parse()?,
    ))
}

/// `POST /order`: StartExecution, answered as API Gateway's service integration does.
async fn start_workflow(stack: &LocalStack, body: &[u8]) -> Value {
    let (customer, item) = match create_order_request(body) {
        Ok(request) => request,
        Err(err) => return error_response(&err),
    };
    let started = match stack.start_order(Mode::Workflow, &customer, &item).await {
        Ok(order_id) => stack.execution(&order_id),
        Err(err) => Err(err),
    };
    match started {
        Ok(Some(execution)) => http_response(
            200,
            &json!({
                "executionArn": execution.execution_arn,
                "startDate": execution.start_date,
                "orderId": execution.name,
            }),
        ),
        Ok(None) => error_response(&ServiceError::Unavailable("the execution vanished".into())),
        Err(LocalError::Service(err)) => error_response(&err),
        Err(err) => error_response(&ServiceError::Unavailable(err.to_string())),
    }
}

fn error_response(err: &ServiceError) -> Value {
    http_response(err.status(), &err.body())
}

/// Turns an API Gateway-style response into a real HTTP response.
fn into_http(response: Value) -> Response {
    let status = response["statusCode"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = response["body"].as_str().unwrap_or_default().to_owned();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

//! `ewf local serve`: the HTTP API and `POST /order` on localhost, so the seed's curl
//! commands work against the local stack. Requests reach the services as API Gateway
//! (payload format 2.0) events, through the same decoding as on AWS.

use crate::stack::{LocalError, LocalStack};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ewf_domain::entry::http_response;
use ewf_domain::events::FunctionName;
use ewf_domain::{CustomerId, ItemId, Mode, ServiceError};
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

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
    tokio::pin!(shutdown);
    let served = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, app.clone()));
                }
                // A refused connection (too many open files, a reset) ends only itself.
                Err(err) => tracing::warn!(error = %err, "accept failed"),
            },
        }
    };
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

/// Largest request line and headers accepted (API Gateway's own limit is 10 KB).
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body accepted (`POST /order` needs some 60 bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its request line and headers.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection, one request. The request line and headers are read and checked here
/// first, so that what the HTTP library would refuse with an empty or plain-text answer
/// (too large, malformed) is refused here with a JSON body like every other answer;
/// what passes is handed to the HTTP library unchanged.
async fn connection(mut stream: TcpStream, app: Router) {
    let read = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await;
    let refused = match read {
        Ok(Ok(head)) => Ok(head),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err(Refusal(
            408,
            "RequestTimeout",
            format!(
                "no complete request line and headers within {}s",
                HEAD_TIMEOUT.as_secs()
            ),
        )),
    };
    let head = match refused {
        Ok(head) => head,
        Err(Refusal(status, error, message)) => {
            let body = json!({ "error": error, "message": message }).to_string();
            let answer = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                StatusCode::from_u16(status)
                    .map_or("", |code| code.canonical_reason().unwrap_or("")),
                body.len()
            );
            // The client may be gone already; there is no one else to tell.
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let io = hyper_util::rt::TokioIo::new(Rewound { head, stream });
    let service = hyper_util::service::TowerToHyperService::new(app);
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_HEAD.max(8192) * 2)
        .serve_connection(io, service)
        .await;
    if let Err(err) = served {
        tracing::debug!(error = %err, "connection ended early");
    }
}

/// Why a request was refused before it reached a route: status, error name, message.
struct Refusal(u16, &'static str, String);

/// Reads the request line and headers (and whatever of the body came with them), and
/// checks them as the HTTP library will.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, Refusal> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 4096];
    loop {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|err| Refusal(400, "BadRequest", format!("cannot read the request: {err}")))?;
        if read == 0 {
            return Err(Refusal(
                400,
                "BadRequest",
                "the request ended before its headers".into(),
            ));
        }
        head.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                check_head(&request)?;
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if head.len() <= MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(Refusal(
                    431,
                    "RequestTooLarge",
                    format!("the request line and headers exceed {MAX_HEAD} bytes"),
                ));
            }
            Err(err) => {
                return Err(Refusal(
                    400,
                    "BadRequest",
                    format!("malformed request: {err}"),
                ));
            }
        }
    }
}

/// What the HTTP library would refuse in a head that parsed.
fn check_head(request: &httparse::Request<'_, '_>) -> Result<(), Refusal> {
    let bad = |what: String| Refusal(400, "BadRequest", what);
    let method = request.method.unwrap_or_default();
    Method::from_bytes(method.as_bytes())
        .map_err(|_| bad(format!("malformed method {method:?}")))?;
    let target = request.path.unwrap_or_default();
    if !target.starts_with('/') || target.parse::<Uri>().is_err() {
        return Err(bad("malformed request target".into()));
    }
    let mut length = None;
    for found in request.headers.iter() {
        let name = HeaderName::from_bytes(found.name.as_bytes())
            .map_err(|_| bad(format!("malformed header name {:?}", found.name)))?;
        HeaderValue::from_bytes(found.value)
            .map_err(|_| bad(format!("malformed value of header {name}")))?;
        if name == header::TRANSFER_ENCODING {
            return Err(Refusal(
                411,
                "LengthRequired",
                "send the body with a content-length".into(),
            ));
        }
        if name == header::CONTENT_LENGTH {
            let value = std::str::from_utf8(found.value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| bad("malformed content-length".into()))?;
            if length.replace(value).is_some_and(|first| first != value) {
                return Err(bad("conflicting content-length headers".into()));
            }
        }
    }
    if length.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(Refusal(
            413,
            "BodyTooLarge",
            format!("the body exceeds {MAX_BODY} bytes"),
        ));
    }
    Ok(())
}

/// The connection with the bytes already read put back in front.
struct Rewound {
    head: Vec<u8>,
    stream: TcpStream,
}

impl AsyncRead for Rewound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.head.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let taken = self.head.len().min(buf.remaining());
        buf.put_slice(&self.head[..taken]);
        self.head.drain(..taken);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The routes: `POST /order`, and `GET` of a service's routes. Every answer is JSON.
async fn route(State(stack): State<LocalStack>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, path) = (parts.method, parts.uri.path().to_owned());
    let reply = if path.trim_end_matches('/') == "/order" && method == Method::POST {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(body) => start_workflow(&stack, &body).await,
            Err(err) => refusal(413, "BodyTooLarge", format!("the body was refused: {err}")),
        }
    } else {
        match function_for(&path) {
            Some(function) if method == Method::GET => {
                match stack
                    .invoke(function, api_gateway_request(&method, &path))
                    .await
                {
                    Ok(response) => response,
                    Err(err) => error_response(&ServiceError::Unavailable(err.to_string())),
                }
            }
            Some(_) => refusal(
                405,
                "MethodNotAllowed",
                format!("{method} {path}: the service routes answer GET only"),
            ),
            None => refusal(404, "RouteNotFound", format!("no route {method} {path}")),
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

fn refusal(status: u16, error: &str, message: String) -> Value {
    http_response(status, &json!({ "error": error, "message": message }))
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

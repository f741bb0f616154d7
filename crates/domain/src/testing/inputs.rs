//! The three input shapes as they really arrive, built from canonical fixtures, and a
//! way to send them through [`entry::invoke`] as the Lambda runtime does.

use crate::OrderDetail;
use crate::entry::{self, Function};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Display;

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("the fixtures are JSON")
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("a test value serialises")
}

/// An API Gateway HTTP API (payload format 2.0) request, as the `$default` route of
/// the `$default` stage delivers it, for `method` and a raw (percent-encoded) path.
/// The services route on `rawPath`, so no route key or path parameters are needed.
pub fn http_request(method: &str, raw_path: &str) -> Value {
    let mut request = fixture(include_str!("fixtures/http-request.json"));
    request["rawPath"] = raw_path.into();
    request["requestContext"]["http"]["path"] = raw_path.into();
    request["requestContext"]["http"]["method"] = method.into();
    request
}

/// An EventBridge event with this detail-type (one of ours or any other), source and
/// detail.
pub fn event(detail_type: impl Display, source: &str, detail: &impl Serialize) -> Value {
    let mut event = fixture(include_str!("fixtures/event.json"));
    event["detail-type"] = detail_type.to_string().into();
    event["source"] = source.into();
    event["detail"] = to_json(detail);
    event
}

/// A direct invocation by the workflow: `{"action": action, "order": order}`.
pub fn invocation(action: &str, order: &impl Serialize) -> Value {
    let mut payload = fixture(include_str!("fixtures/invoke.json"));
    payload["action"] = action.into();
    payload["order"] = to_json(order);
    payload
}

/// The order the fixtures carry: customer-1's new order of item-1.
pub fn order() -> OrderDetail {
    let event = fixture(include_str!("fixtures/event.json"));
    serde_json::from_value(event["detail"].clone()).expect("the fixture detail is an order")
}

/// Sends an HTTP request to a function: the status code and the JSON body.
pub async fn send(function: &dyn Function, method: &str, raw_path: &str) -> (u16, Value) {
    let response = entry::invoke(function, http_request(method, raw_path))
        .await
        .expect("an HTTP request always has a response");
    assert_eq!(response["headers"]["content-type"], "application/json");
    let status = response["statusCode"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok());
    let body = response["body"]
        .as_str()
        .and_then(|body| serde_json::from_str(body).ok());
    (status.expect("a status code"), body.expect("a JSON body"))
}

/// Sends a GET request to a function: the status code and the JSON body.
pub async fn get(function: &dyn Function, raw_path: &str) -> (u16, Value) {
    send(function, "GET", raw_path).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Input;
    use crate::events::DetailType;

    #[test]
    fn the_builders_make_the_three_shapes_the_entry_tells_apart() {
        let Input::Http(request) =
            Input::from_json(http_request("DELETE", "/order/describe/c%201/o")).unwrap()
        else {
            panic!("not an HTTP request")
        };
        assert_eq!(request.to_string(), "DELETE /order/describe/c 1/o");

        let Input::Event(event) =
            Input::from_json(event(DetailType::ItemReserved, "Inventory", &order())).unwrap()
        else {
            panic!("not an event")
        };
        assert_eq!(event.known_type().unwrap(), DetailType::ItemReserved);
        assert_eq!(event.source, "Inventory");
        assert_eq!(event.parse_detail::<OrderDetail>().unwrap(), order());

        let Input::Invoke(payload) = Input::from_json(invocation("reserve", &order())).unwrap()
        else {
            panic!("not a direct invocation")
        };
        let invocation = entry::Invocation(&payload);
        assert_eq!(invocation.action().unwrap(), "reserve");
        assert_eq!(invocation.order().unwrap(), order());
    }
}

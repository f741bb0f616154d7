//! The three input shapes as they really arrive, built from canonical fixtures, and a
//! way to send them through [`entry::invoke`] as the Lambda runtime does.

use crate::entry::{self, Decode, Function, Input};
use crate::events::{DetailType, FunctionName, LOGISTICS_SOURCE, targets};
use crate::sample::SampleData;
use crate::{
    Estimate, Failure, OrderDetail, OrderStatus, PAYMENT_METHOD, Payment, PaymentId, PaymentStatus,
};
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

/// The fixtures' order with all that an order carries along the saga: its item,
/// customer, delivery estimate, payment and a failure.
pub fn grown_order() -> OrderDetail {
    let sample = SampleData::builtin();
    let customer = sample.customers[0].clone();
    let now = chrono::Utc::now();
    OrderDetail {
        item: Some(sample.items[0].clone()),
        delivery: Some(Estimate {
            origin: "depot".into(),
            address: customer.address.clone(),
            distance: "4.87".parse().expect("a distance"),
            duration: 1234,
            price: Estimate::price_for(1234),
        }),
        customer: Some(customer),
        payment: Some(Payment {
            payment_id: PaymentId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").expect("a payment id"),
            amount: "412.33".parse().expect("an amount"),
            method: PAYMENT_METHOD.into(),
            status: PaymentStatus::Paid,
            created_at: now,
            updated_at: now,
        }),
        failure: Some(Failure {
            status: OrderStatus::Failed,
            reason: "a test failure".into(),
        }),
        ..order()
    }
}

/// Holds a service's event decoder to the routing table: of every detail-type, it
/// decodes exactly those that `RULES` sends to `service` (from the delivery partner for
/// its reports, from another service otherwise).
pub fn assert_decodes_exactly_its_rules<C: Decode>(service: FunctionName) {
    let detail = grown_order();
    for detail_type in DetailType::ALL {
        let source = match detail_type {
            DetailType::Delivered | DetailType::DeliveryCanceled => LOGISTICS_SOURCE,
            _ => "Order",
        };
        let Ok(Input::Event(input)) = Input::from_json(event(detail_type, source, &detail)) else {
            panic!("{detail_type} is not read as an event");
        };
        let routed = targets(*detail_type).any(|target| target == service);
        match C::from_event(&input) {
            Ok(_) => assert!(
                routed,
                "{service} decodes {detail_type}, which no rule sends it"
            ),
            Err(err) => assert!(
                !routed,
                "{service} refuses {detail_type}, which its rule sends it: {err}"
            ),
        }
    }
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

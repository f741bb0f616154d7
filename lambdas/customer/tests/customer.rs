use ewf_customer::CustomerService;
use ewf_domain::entry::{FunctionError, invoke};
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::sample::SampleData;
use ewf_domain::testing::{self, RecordingBus, event, get, invocation, send};
use ewf_domain::{CustomerId, OrderDetail};
use ewf_sqlite::SqliteStores;
use serde_json::{Value, json};
use std::sync::Arc;

struct Harness {
    bus: Arc<RecordingBus>,
    service: CustomerService,
}

impl Harness {
    async fn new() -> Self {
        let stores = SqliteStores::in_memory().unwrap();
        for customer in &SampleData::builtin().customers {
            stores.customers().put(customer).await.unwrap();
        }
        let bus = Arc::new(RecordingBus::default());
        Self {
            service: CustomerService::new(stores.customers(), bus.clone()),
            bus,
        }
    }

    async fn on_item_described(&self, detail: &Value) -> Result<Value, FunctionError> {
        invoke(&self.service, event("ItemDescribed", "Inventory", detail)).await
    }
}

fn customer(id: &str) -> Value {
    let customers = SampleData::builtin().customers;
    let found = customers
        .iter()
        .find(|customer| customer.customer_id.as_str() == id)
        .unwrap();
    serde_json::to_value(found).unwrap()
}

/// The fixtures' order as the inventory describes it (with its item), for a customer.
fn described_order(customer_id: &str) -> Value {
    let detail = OrderDetail {
        customer_id: CustomerId::parse(customer_id).unwrap(),
        item: Some(SampleData::builtin().items[0].clone()),
        ..testing::order()
    };
    serde_json::to_value(detail).unwrap()
}

#[tokio::test]
async fn http_describe_answers_the_customer_or_an_error() {
    let h = Harness::new().await;
    let (status, body) = get(&h.service, "/customer/describe/customer-2").await;
    assert_eq!((status, &body), (200, &customer("customer-2")));

    for (path, status, error) in [
        ("/customer/describe/customer-404", 404, "CustomerNotFound"),
        ("/customer/describe/customer%201", 400, "BadInput"),
        // Not UTF-8 once decoded: the request is refused before any route is chosen.
        ("/customer/describe/%FF", 400, "BadInput"),
        ("/customer/delete/customer-1", 404, "UnknownAction"),
        ("/customer/describe", 400, "BadInput"),
        ("/customer", 404, "RouteNotFound"),
        ("/order/describe/customer-1", 404, "RouteNotFound"),
    ] {
        let (got, body) = get(&h.service, path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path}"
        );
    }
    for path in ["/customer/describe/customer%201", "/customer/describe"] {
        assert_eq!(
            get(&h.service, path).await.1["field"],
            "customerId",
            "{path}"
        );
    }
    let (status, _) = send(&h.service, "DELETE", "/customer/describe/customer-1").await;
    assert_eq!(status, 404);

    let mut binary = testing::http_request("GET", "/customer/describe/customer-1");
    binary["isBase64Encoded"] = true.into();
    binary["body"] = "e30=".into();
    let response = invoke(&h.service, binary).await.unwrap();
    assert_eq!(response["statusCode"], 400);
}

#[tokio::test]
async fn item_described_adds_the_customer() {
    let h = Harness::new().await;
    let detail = described_order("customer-3");
    h.on_item_described(&detail).await.unwrap();
    let mut described = detail.clone();
    described["customer"] = customer("customer-3");
    let expected = vec![BusEvent::new(
        FunctionName::Customer,
        DetailType::CustomerDescribed,
        &described,
    )];
    assert_eq!(h.bus.take(), expected);
    // The item described upstream travels on.
    assert_eq!(expected[0].detail["item"]["price"], "399.99");
}

#[tokio::test]
async fn an_unknown_customer_fails_the_order_so_that_the_item_is_released() {
    let h = Harness::new().await;
    let detail = described_order("customer-404");
    h.on_item_described(&detail).await.unwrap();
    let mut failed = detail.clone();
    failed["failure"] = json!({"status": "FAILED", "reason": "Customer customer-404 not found"});
    let expected = vec![BusEvent::new(
        FunctionName::Customer,
        DetailType::ErrorCustomerDescribed,
        &failed,
    )];
    assert_eq!(h.bus.take(), expected);
}

#[tokio::test]
async fn a_redelivered_event_publishes_the_same_event_again() {
    let h = Harness::new().await;
    let detail = described_order("customer-1");
    let first = h.on_item_described(&detail).await.unwrap();
    let published = h.bus.take();
    assert_eq!(h.on_item_described(&detail).await.unwrap(), first);
    assert_eq!(h.bus.take(), published);
}

#[tokio::test]
async fn a_failed_publish_fails_the_invocation_and_the_retry_publishes() {
    let h = Harness::new().await;
    let detail = described_order("customer-1");
    h.bus.fail_next(1);
    let err = h.on_item_described(&detail).await.unwrap_err();
    assert_eq!(err.error_type, "ServiceUnavailable");
    assert!(h.bus.published().is_empty());
    h.on_item_described(&detail).await.unwrap();
    assert_eq!(h.bus.take().len(), 1);
}

#[tokio::test]
async fn other_events_and_bad_details_are_refused_once_not_retried() {
    let h = Harness::new().await;
    // Not the customer's to act on, or naming no order: acknowledged, nothing follows.
    for (detail_type, source, detail) in [
        ("OrderCreated", "Order", described_order("customer-1")),
        ("ItemDescribed", "Inventory", json!({"orderId": "o-1"})),
    ] {
        let reply = invoke(&h.service, event(detail_type, source, &detail))
            .await
            .unwrap();
        assert_eq!(reply["refused"]["error"], "BadInput", "{detail_type}");
    }
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn workflow_describe_replies_with_the_customer_and_publishes_nothing() {
    let h = Harness::new().await;
    let detail = described_order("customer-2");
    let reply = invoke(&h.service, invocation("describe", &detail))
        .await
        .unwrap();
    let mut expected = detail.clone();
    expected["customer"] = customer("customer-2");
    assert_eq!(reply, expected);
    assert!(h.bus.published().is_empty());

    for (payload, error) in [
        (
            invocation("describe", &described_order("customer-404")),
            "CustomerNotFound",
        ),
        (invocation("update", &detail), "UnknownAction"),
        (json!({"action": "describe"}), "BadInput"),
    ] {
        let err = invoke(&h.service, payload).await.unwrap_err();
        assert_eq!(err.error_type, error);
    }
}

#[test]
fn the_event_decoder_takes_exactly_what_the_routing_table_sends() {
    ewf_domain::testing::assert_decodes_exactly_its_rules::<ewf_customer::Command>(
        ewf_domain::events::FunctionName::Customer,
    );
}

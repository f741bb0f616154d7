//! The delivery service through its three entries: API Gateway requests, EventBridge
//! events and direct invocations from the workflow, over SQLite stores, the sample
//! gazetteer and a recording workflow callback.

use ewf_delivery::DeliveryService;
use ewf_domain::entry::invoke;
use ewf_domain::events::{BusEvent, DetailType};
use ewf_domain::ports::TaskResult;
use ewf_domain::testing::{self, FixedClock, RecordingBus, RecordingCallback, event};
use ewf_domain::{
    Address, Customer, CustomerId, Delivery, DeliveryStatus, OrderDetail, OrderId, OrderStatus,
};
use ewf_sqlite::SqliteStores;
use ewf_sqlite::gazetteer::Gazetteer;
use serde_json::{Value, json};
use std::sync::Arc;

const ORDER: &str = "01JDXKQ3Z8J1V6N3R0W2T5Y7AB";
const TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAbqF0VDY8dVpvHbsKNNgTlmj0gBdNf3tGeNqSoz1bJbwdlkkYLc6FaI0sdnhEnOwpdXhwe9dH0KhAD6A2bh+L5ZUdeTjNuDEb5jB8fsDDz7CEE8gXRpH8A==";
const MUSEUM: &str = "Great Russell St, London WC1B 3DG, UK";

/// The fixtures' order ([`ORDER`]), placed by customer-2 (the British Museum).
fn order() -> OrderDetail {
    OrderDetail {
        customer_id: CustomerId::parse("customer-2").unwrap(),
        ..testing::order()
    }
}

fn order_ref() -> Value {
    serde_json::to_value(order().order_ref()).unwrap()
}

fn logistics(detail_type: DetailType) -> Value {
    event(detail_type, "Logistics", &order_ref())
}

/// A direct invocation for the order, with the task token `await` takes.
fn invocation(action: &str) -> Value {
    let mut payload = testing::invocation(action, &order());
    payload["taskToken"] = TOKEN.into();
    payload
}

/// The order as the customer service leaves it: the customer and their address known.
fn described(address: &str) -> OrderDetail {
    let mut detail = order();
    detail.customer = Some(Customer {
        customer_id: detail.customer_id.clone(),
        name: "British Museum".into(),
        email: "someone@example.net".into(),
        address: Address::parse(address).unwrap(),
        description: String::new(),
    });
    detail
}

/// The order with its delivery estimated, as the inventory passes it on after the sale.
fn estimated() -> OrderDetail {
    let mut detail = described(MUSEUM);
    detail.delivery = Some(
        Gazetteer::sample()
            .estimate(&Address::parse(MUSEUM).unwrap())
            .unwrap(),
    );
    detail
}

struct Harness {
    stores: SqliteStores,
    bus: Arc<RecordingBus>,
    callback: Arc<RecordingCallback>,
    service: DeliveryService,
}

impl Harness {
    fn new() -> Self {
        let stores = SqliteStores::in_memory().unwrap();
        let bus = Arc::new(RecordingBus::default());
        let callback = Arc::new(RecordingCallback::default());
        let service = DeliveryService::new(
            stores.deliveries(),
            stores.ledger(),
            bus.clone(),
            Arc::new(Gazetteer::sample()),
            callback.clone(),
            Arc::new(FixedClock::default()),
        );
        Self {
            stores,
            bus,
            callback,
            service,
        }
    }

    async fn delivery(&self) -> Option<Delivery> {
        let customer = CustomerId::parse("customer-2").unwrap();
        self.stores
            .deliveries()
            .get(&customer, &OrderId::parse(ORDER).unwrap())
            .await
            .unwrap()
    }

    /// Starts the delivery as the workflow does.
    /// Starts the order's delivery for the workflow.
    async fn start(&self) {
        let mut start = invocation("start");
        start["order"] = serde_json::to_value(estimated()).unwrap();
        invoke(&self.service, start).await.unwrap();
    }

    /// Starts the order's delivery for the choreography (on ItemRemoved).
    async fn start_for_events(&self) {
        let item_removed = event(DetailType::ItemRemoved, "Inventory", &estimated());
        invoke(&self.service, item_removed).await.unwrap();
        self.bus.take();
    }

    fn resumed(&self) -> Vec<(String, TaskResult)> {
        self.callback.resumed()
    }
}

/// The workflow's waiting task, succeeded with the delivery status or failed with
/// DeliveryCanceled.
fn resumed_with(status: &str) -> (String, TaskResult) {
    let result = match status {
        "CANCELED" => TaskResult::Failure {
            error: "DeliveryCanceled".into(),
            cause: format!("the delivery of order {} was canceled", order().order_id),
        },
        _ => TaskResult::Success(json!({ "status": status })),
    };
    (TOKEN.to_owned(), result)
}

fn was(detail_type: DetailType) -> BusEvent {
    BusEvent::from_source("Delivery", detail_type, &order_ref())
}

#[tokio::test]
async fn an_address_with_an_apostrophe_and_commas_is_estimated() {
    let harness = Harness::new();
    let (status, body) = testing::get(
        &harness.service,
        "/delivery/estimate/St%20Paul%27s%20Churchyard%2C%20London%20EC4M%208AD%2C%20UK",
    )
    .await;
    assert_eq!(status, 200);
    let address = Address::parse("St Paul's Churchyard, London EC4M 8AD, UK").unwrap();
    let expected = Gazetteer::sample().estimate(&address).unwrap();
    assert_eq!(body, serde_json::to_value(&expected).unwrap());
    assert_eq!(body["address"], "St Paul's Churchyard, London EC4M 8AD, UK");
}

#[tokio::test]
async fn http_errors_name_the_problem() {
    let harness = Harness::new();
    let cases = [
        (
            "/delivery/estimate/1%20Nowhere%20Lane",
            404,
            "AddressNotFound",
            None,
        ),
        (
            "/delivery/estimate/line%0Abreak",
            400,
            "BadInput",
            Some("address"),
        ),
        ("/delivery/estimate", 400, "BadInput", Some("address")),
        (
            "/delivery/start/customer-2/01JDXKQ3Z8J1V6N3R0W2T5Y7AB",
            400,
            "BadInput",
            Some("address"),
        ),
        (
            "/delivery/describe/customer-2/01JDXKQ3Z8J1V6N3R0W2T5Y7AB",
            404,
            "DeliveryNotFound",
            None,
        ),
        (
            "/delivery/delivered/customer-2/01JDXKQ3Z8J1V6N3R0W2T5Y7AB",
            404,
            "DeliveryNotFound",
            None,
        ),
        (
            "/delivery/cancel/customer%27/01JDXKQ3Z8J1V6N3R0W2T5Y7AB",
            400,
            "BadInput",
            Some("customerId"),
        ),
        (
            "/delivery/describe/customer-2/a/b",
            400,
            "BadInput",
            Some("path"),
        ),
        (
            "/delivery/teleport/customer-2/01JDXKQ3Z8J1V6N3R0W2T5Y7AB",
            404,
            "UnknownAction",
            None,
        ),
    ];
    for (path, status, error, field) in cases {
        let (got, body) = testing::get(&harness.service, path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path}"
        );
        assert_eq!(body["field"].as_str(), field, "{path}");
    }
    assert!(harness.delivery().await.is_none());
}

#[tokio::test]
async fn http_start_then_delivered_announces_and_a_repeat_announces_again() {
    let harness = Harness::new();
    let path = format!(
        "/delivery/start/customer-2/{ORDER}/St%20Paul%27s%20Churchyard%2C%20London%20EC4M%208AD%2C%20UK"
    );
    let (status, started) = testing::get(&harness.service, &path).await;
    assert_eq!(status, 200);
    assert_eq!(started["status"], "DELIVERING");
    assert_eq!(
        started["address"],
        "St Paul's Churchyard, London EC4M 8AD, UK"
    );
    let (status, body) = testing::get(&harness.service, &path).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("DeliveryExists"))
    );
    let (_, described) = testing::get(
        &harness.service,
        &format!("/delivery/describe/customer-2/{ORDER}"),
    )
    .await;
    assert_eq!(described, started);
    assert!(harness.bus.published().is_empty());

    let (status, delivered) = testing::get(
        &harness.service,
        &format!("/delivery/delivered/customer-2/{ORDER}"),
    )
    .await;
    assert_eq!(
        (status, delivered["status"].as_str()),
        (200, Some("DELIVERED"))
    );
    assert_eq!(harness.bus.take(), [was(DetailType::DeliveryWasDelivered)]);

    // Finished already: refused, and the outcome is announced again, in case the
    // first announcement failed after the delivery was marked.
    for action in ["delivered", "cancel"] {
        let (status, body) = testing::get(
            &harness.service,
            &format!("/delivery/{action}/customer-2/{ORDER}"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("DeliveryFinished")),
            "{action}"
        );
        assert_eq!(
            harness.bus.take(),
            [was(DetailType::DeliveryWasDelivered)],
            "{action}"
        );
    }
    assert_eq!(
        harness.delivery().await.unwrap().status,
        DeliveryStatus::Delivered
    );
}

#[tokio::test]
async fn http_cancel_announces_the_cancellation() {
    let harness = Harness::new();
    harness.start_for_events().await;
    let (status, body) = testing::get(
        &harness.service,
        &format!("/delivery/cancel/customer-2/{ORDER}"),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("CANCELED")));
    assert_eq!(
        harness.bus.published(),
        [was(DetailType::DeliveryWasCanceled)]
    );
}

#[tokio::test]
async fn customer_described_announces_the_estimate() {
    let harness = Harness::new();
    let customer_described = event(
        DetailType::CustomerDescribed,
        "Customer",
        &described(MUSEUM),
    );
    invoke(&harness.service, customer_described.clone())
        .await
        .unwrap();
    let expected = BusEvent::new(
        ewf_domain::events::FunctionName::Delivery,
        DetailType::DeliveryEstimated,
        &estimated(),
    );
    assert_eq!(harness.bus.take(), std::slice::from_ref(&expected));
    invoke(&harness.service, customer_described).await.unwrap();
    assert_eq!(harness.bus.take(), [expected]);
}

#[tokio::test]
async fn an_address_that_cannot_be_reached_is_announced_as_a_failure() {
    let harness = Harness::new();
    let mut no_customer = described(MUSEUM);
    no_customer.customer = None;
    for detail in [described("1 Nowhere Lane"), no_customer] {
        invoke(
            &harness.service,
            event(DetailType::CustomerDescribed, "Customer", &detail),
        )
        .await
        .unwrap();
        let published = harness.bus.take();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].detail_type, DetailType::ErrorDeliveryEstimated);
        let announced: OrderDetail = serde_json::from_value(published[0].detail.clone()).unwrap();
        let failure = announced.failure.unwrap();
        assert_eq!(failure.status, OrderStatus::Failed);
        assert!(!failure.reason.is_empty());
        assert!(announced.delivery.is_none());
    }
}

#[tokio::test]
async fn item_removed_starts_the_delivery_once() {
    let harness = Harness::new();
    let item_removed = event(DetailType::ItemRemoved, "Inventory", &estimated());
    invoke(&harness.service, item_removed.clone())
        .await
        .unwrap();
    let delivery = harness.delivery().await.unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Delivering);
    assert_eq!(delivery.address.as_str(), MUSEUM);
    let started = harness.bus.take();
    assert_eq!(
        started,
        [BusEvent::from_source(
            "Delivery",
            DetailType::DeliveryStarted,
            &estimated()
        )]
    );

    invoke(&harness.service, item_removed).await.unwrap();
    assert_eq!(harness.delivery().await.unwrap(), delivery);
    assert_eq!(harness.bus.take(), started);
}

#[tokio::test]
async fn logistics_reports_finish_the_delivery_once() {
    let harness = Harness::new();
    harness.start_for_events().await;
    harness.bus.fail_next(1);
    let err = invoke(&harness.service, logistics(DetailType::Delivered))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "ServiceUnavailable");
    // The write happened with its step: the retry only announces.
    assert_eq!(
        harness.delivery().await.unwrap().status,
        DeliveryStatus::Delivered
    );
    for _ in 0..2 {
        invoke(&harness.service, logistics(DetailType::Delivered))
            .await
            .unwrap();
        assert_eq!(harness.bus.take(), [was(DetailType::DeliveryWasDelivered)]);
    }

    // Too late to cancel: ignored, not retried.
    invoke(&harness.service, logistics(DetailType::DeliveryCanceled))
        .await
        .unwrap();
    assert_eq!(
        harness.delivery().await.unwrap().status,
        DeliveryStatus::Delivered
    );
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn a_report_on_an_unknown_delivery_is_ignored() {
    let harness = Harness::new();
    invoke(&harness.service, logistics(DetailType::DeliveryCanceled))
        .await
        .unwrap();
    assert!(harness.bus.published().is_empty());
    assert!(harness.delivery().await.is_none());
}

#[tokio::test]
async fn only_logistics_reports_deliveries() {
    let harness = Harness::new();
    harness.start().await;
    // Refused, and acknowledged: retrying would refuse them again.
    let forged = event(DetailType::Delivered, "Order", &order_ref());
    let other = event(DetailType::PaymentMade, "Payment", &estimated());
    for refused in [forged, other] {
        let reply = invoke(&harness.service, refused).await.unwrap();
        assert_eq!(reply["refused"]["error"], "BadInput");
    }
    assert!(harness.bus.published().is_empty());
    assert_eq!(
        harness.delivery().await.unwrap().status,
        DeliveryStatus::Delivering
    );
}

#[tokio::test]
async fn await_then_delivered_resumes_the_workflow() {
    let harness = Harness::new();
    harness.start().await;
    assert_eq!(
        invoke(&harness.service, invocation("await")).await.unwrap(),
        serde_json::to_value(order()).unwrap()
    );
    assert!(harness.resumed().is_empty());

    // The token lets its holder steer the workflow: it is never shown.
    let (_, described) = testing::get(
        &harness.service,
        &format!("/delivery/describe/customer-2/{ORDER}"),
    )
    .await;
    assert!(described.get("taskToken").is_none());

    let delivered = invoke(&harness.service, invocation("delivered"))
        .await
        .unwrap();
    assert_eq!(delivered["status"], "DELIVERED");
    assert!(delivered.get("taskToken").is_none());
    assert_eq!(harness.resumed(), [resumed_with("DELIVERED")]);
    assert!(harness.bus.published().is_empty());

    // A repeat is refused but resumes again, in case the first resumption was lost.
    let (status, body) = testing::get(
        &harness.service,
        &format!("/delivery/delivered/customer-2/{ORDER}"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("DeliveryFinished"))
    );
    assert_eq!(
        harness.resumed(),
        [resumed_with("DELIVERED"), resumed_with("DELIVERED")]
    );
}

#[tokio::test]
async fn delivered_then_await_resumes_at_once() {
    let harness = Harness::new();
    harness.start().await;
    invoke(&harness.service, invocation("delivered"))
        .await
        .unwrap();
    invoke(&harness.service, logistics(DetailType::DeliveryCanceled))
        .await
        .unwrap();
    // Between its start and its wait, a workflow's delivery is nobody's to announce:
    // the choreography must not take it for one of its own.
    assert!(harness.bus.published().is_empty());
    invoke(&harness.service, invocation("await")).await.unwrap();
    assert_eq!(harness.resumed(), [resumed_with("DELIVERED")]);
}

#[tokio::test]
async fn a_logistics_report_resumes_a_waiting_workflow_instead_of_announcing() {
    let harness = Harness::new();
    harness.start().await;
    invoke(&harness.service, invocation("await")).await.unwrap();
    invoke(&harness.service, logistics(DetailType::DeliveryCanceled))
        .await
        .unwrap();
    assert_eq!(harness.resumed(), [resumed_with("CANCELED")]);
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn cancel_by_invocation_names_the_order_at_the_top_level() {
    let harness = Harness::new();
    harness.start().await;
    invoke(&harness.service, invocation("await")).await.unwrap();
    let cancel = json!({"action": "cancel", "customerId": "customer-2", "orderId": ORDER});
    assert_eq!(
        invoke(&harness.service, cancel.clone()).await.unwrap()["status"],
        "CANCELED"
    );
    assert_eq!(harness.resumed(), [resumed_with("CANCELED")]);
    assert_eq!(
        invoke(&harness.service, cancel)
            .await
            .unwrap_err()
            .error_type,
        "DeliveryFinished"
    );
}

#[tokio::test]
async fn the_workflow_estimates_and_starts_the_delivery() {
    let harness = Harness::new();
    let mut estimate = invocation("estimate");
    estimate["order"] = serde_json::to_value(described(MUSEUM)).unwrap();
    let reply = invoke(&harness.service, estimate.clone()).await.unwrap();
    assert_eq!(reply, serde_json::to_value(estimated()).unwrap());

    estimate["order"] = serde_json::to_value(described("1 Nowhere Lane")).unwrap();
    assert_eq!(
        invoke(&harness.service, estimate)
            .await
            .unwrap_err()
            .error_type,
        "AddressNotFound"
    );

    for _ in 0..2 {
        harness.start().await;
        assert_eq!(
            harness.delivery().await.unwrap().status,
            DeliveryStatus::Delivering
        );
    }
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn bad_invocations_name_the_field() {
    let harness = Harness::new();
    let mut no_token = invocation("await");
    no_token.as_object_mut().unwrap().remove("taskToken");
    let mut blank_token = invocation("await");
    blank_token["taskToken"] = " ".into();
    let mut no_customer = invocation("estimate");
    no_customer["order"] = serde_json::to_value(estimated()).unwrap();
    no_customer["order"]
        .as_object_mut()
        .unwrap()
        .remove("customer");
    for (payload, name, field) in [
        (no_token, "BadInput", "taskToken"),
        (blank_token, "BadInput", "taskToken"),
        (no_customer, "BadInput", "customer"),
        (
            json!({"action": "delivered", "orderId": ORDER}),
            "BadInput",
            "order",
        ),
        (invocation("teleport"), "UnknownAction", "teleport"),
        (invocation("await"), "DeliveryNotFound", ORDER),
    ] {
        let err = invoke(&harness.service, payload).await.unwrap_err();
        assert_eq!(err.error_type, name);
        assert!(err.error_message.contains(field), "{}", err.error_message);
    }
    assert!(harness.resumed().is_empty());
}

#[test]
fn the_event_decoder_takes_exactly_what_the_routing_table_sends() {
    ewf_domain::testing::assert_decodes_exactly_its_rules::<ewf_delivery::Command>(
        ewf_domain::events::FunctionName::Delivery,
    );
}

//! The event store: every event of the bus kept once, and an order's timeline read back
//! in time order.

use async_trait::async_trait;
use ewf_domain::entry::{FunctionError, invoke};
use ewf_domain::ports::EventStore;
use ewf_domain::testing::{self, http_request};
use ewf_domain::{StoreError, StoredEvent};
use ewf_event_store::EventStoreService;
use ewf_sqlite::SqliteStores;
use serde_json::{Value, json};
use std::sync::Arc;

const ORDER: &str = "01JDXKQ3Z8J1V6N3R0W2T5Y7AB";

/// The fixtures' OrderCreated event.
fn fixture() -> Value {
    testing::event("OrderCreated", "Order", &testing::order())
}

fn event(id: &str, time: &str, detail_type: &str, detail: Value) -> Value {
    let mut event = testing::event(detail_type, "Order", &detail);
    event["id"] = id.into();
    event["time"] = time.into();
    event
}

/// The detail made another event's by a field naming `id`: the store keeps one event
/// per content.
fn distinct(detail: &Value, id: &str) -> Value {
    let mut detail = detail.clone();
    detail["sequence"] = id.into();
    detail
}

struct Harness {
    stores: SqliteStores,
    service: EventStoreService,
}

impl Harness {
    fn new() -> Self {
        let stores = SqliteStores::in_memory().unwrap();
        let service = EventStoreService::new(stores.events());
        Self { stores, service }
    }

    async fn call(&self, payload: Value) -> Result<Value, FunctionError> {
        invoke(&self.service, payload).await
    }

    async fn timeline(&self) -> Vec<StoredEvent> {
        self.stores.events().for_order(ORDER).await.unwrap()
    }
}

#[tokio::test]
async fn an_event_is_stored_under_its_customer_and_time() {
    let harness = Harness::new();
    let reply = harness.call(fixture()).await.unwrap();
    assert_eq!(reply["stored"], true);
    let stored = harness.timeline().await;
    let expected_detail = fixture()["detail"].clone();
    assert_eq!(stored.len(), 1);
    let event = &stored[0];
    assert_eq!(event.who, "C#customer-1");
    assert_eq!(
        event.time_what,
        "2026-01-01T12:00:00.000000000Z#00#OrderCreated#6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    );
    assert_eq!(
        (event.event_source.as_str(), event.detail_type.as_str()),
        ("Order", "OrderCreated")
    );
    assert_eq!(event.event_id, "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_eq!(event.order_id.as_deref(), Some(ORDER));
    assert_eq!(
        serde_json::from_str::<Value>(&event.event_detail).unwrap(),
        expected_detail
    );
    assert_eq!(event.event_time.to_rfc3339(), "2026-01-01T12:00:00+00:00");
}

#[tokio::test]
async fn a_redelivered_event_is_stored_once() {
    let harness = Harness::new();
    assert_eq!(harness.call(fixture()).await.unwrap()["stored"], true);
    assert_eq!(harness.call(fixture()).await.unwrap()["stored"], false);
    assert_eq!(harness.timeline().await.len(), 1);
}

#[tokio::test]
async fn a_re_emitted_event_with_a_new_id_and_time_is_stored_once() {
    let harness = Harness::new();
    let detail = fixture()["detail"].clone();
    let first = event(
        "e-1",
        "2026-01-01T12:00:00Z",
        "OrderCreated",
        detail.clone(),
    );
    let again = event(
        "e-2",
        "2026-01-01T12:00:05Z",
        "OrderCreated",
        detail.clone(),
    );
    let other = event("e-3", "2026-01-01T12:00:06Z", "ItemReserved", detail);
    assert_eq!(harness.call(first).await.unwrap()["stored"], true);
    assert_eq!(harness.call(again).await.unwrap()["stored"], false);
    assert_eq!(harness.call(other).await.unwrap()["stored"], true);
    let ids: Vec<_> = harness
        .timeline()
        .await
        .into_iter()
        .map(|event| event.event_id)
        .collect();
    assert_eq!(ids, ["e-1", "e-3"]);
}

#[tokio::test]
async fn events_not_about_a_customer_are_kept_under_the_item_or_the_source() {
    let harness = Harness::new();
    let about_item = event(
        "e-item",
        "2026-01-01T12:00:00Z",
        "ItemReturned",
        json!({"itemId": "item-3", "orderId": ORDER}),
    );
    let about_nothing = event(
        "e-none",
        "2026-01-01T12:00:01Z",
        "StockCounted",
        json!({"orderId": ORDER, "customerId": ""}),
    );
    harness.call(about_item).await.unwrap();
    harness.call(about_nothing).await.unwrap();
    let who: Vec<_> = harness
        .timeline()
        .await
        .into_iter()
        .map(|event| event.who)
        .collect();
    assert_eq!(who, ["P#item-3", "S#Order"]);
}

#[tokio::test]
async fn an_orders_timeline_is_in_time_order_and_same_millisecond_events_both_stay() {
    let harness = Harness::new();
    let detail = fixture()["detail"].clone();
    let arrivals = [
        ("e-3", "2026-01-01T12:00:02.250Z", "PaymentMade"),
        ("e-1", "2026-01-01T12:00:00Z", "OrderCreated"),
        ("e-2b", "2026-01-01T12:00:01.007Z", "ItemReserved"),
        ("e-2a", "2026-01-01T12:00:01.007Z", "ItemReserved"),
        ("e-0", "2026-01-01T11:59:59.999Z", "Unrelated"),
    ];
    for (id, time, detail_type) in arrivals {
        let detail = if id == "e-0" {
            json!({"customerId": "customer-1", "orderId": "other"})
        } else {
            distinct(&detail, id)
        };
        harness
            .call(event(id, time, detail_type, detail))
            .await
            .unwrap();
    }
    let ids: Vec<_> = harness
        .timeline()
        .await
        .into_iter()
        .map(|event| event.event_id)
        .collect();
    assert_eq!(ids, ["e-1", "e-2a", "e-2b", "e-3"]);
}

#[tokio::test]
async fn events_published_within_one_millisecond_keep_their_order() {
    let harness = Harness::new();
    let detail = fixture()["detail"].clone();
    // Ids in the reverse of time order, so that only the time can sort them.
    let arrivals = [
        ("e-a", "2026-01-01T12:00:01.000999999Z"),
        ("e-b", "2026-01-01T12:00:01.000000100Z"),
        ("e-d", "2026-01-01T12:00:01Z"),
        ("e-e", "2026-01-01T12:00:00.999999999Z"),
    ];
    for (id, time) in arrivals {
        harness
            .call(event(id, time, "ItemReserved", distinct(&detail, id)))
            .await
            .unwrap();
    }
    let timeline = harness.timeline().await;
    let ids: Vec<_> = timeline
        .iter()
        .map(|event| event.event_id.as_str())
        .collect();
    assert_eq!(ids, ["e-e", "e-d", "e-b", "e-a"]);
    assert!(
        timeline[1]
            .time_what
            .starts_with("2026-01-01T12:00:01.000000000Z#")
    );
}

#[tokio::test]
async fn events_stamped_in_the_same_second_keep_the_order_of_the_saga() {
    // EventBridge stamps events to the second: a whole saga may share one time.
    let harness = Harness::new();
    let detail = fixture()["detail"].clone();
    let arrivals = [
        ("e-1", "DeliveryStarted"),
        ("e-2", "OrderCreated"),
        ("e-3", "PaymentMade"),
        ("e-4", "ItemReserved"),
        ("e-5", "ItemRemoved"),
        ("e-6", "ItemDescribed"),
    ];
    for (id, detail_type) in arrivals {
        let event = event(
            id,
            "2026-01-01T12:00:00Z",
            detail_type,
            distinct(&detail, id),
        );
        harness.call(event).await.unwrap();
    }
    let types: Vec<_> = harness
        .timeline()
        .await
        .into_iter()
        .map(|event| event.detail_type)
        .collect();
    assert_eq!(
        types,
        [
            "OrderCreated",
            "ItemReserved",
            "ItemDescribed",
            "PaymentMade",
            "ItemRemoved",
            "DeliveryStarted"
        ]
    );
}

#[tokio::test]
async fn only_events_are_accepted() {
    let harness = Harness::new();
    let mut nameless = fixture();
    nameless["id"] = "".into();
    // Refused and acknowledged: retrying would refuse it again.
    assert_eq!(
        harness.call(nameless).await.unwrap()["refused"]["error"],
        "BadInput"
    );
    let err = harness.call(json!({"action": "store"})).await.unwrap_err();
    assert_eq!(err.error_type, "UnknownAction");
    let request = http_request("GET", "/events");
    assert_eq!(harness.call(request).await.unwrap()["statusCode"], 404);
    assert!(harness.timeline().await.is_empty());
}

/// A store whose writes fail, like DynamoDB throttling.
struct Unavailable;

#[async_trait]
impl EventStore for Unavailable {
    async fn append(&self, _: &StoredEvent) -> Result<bool, StoreError> {
        Err(StoreError::new("throttled"))
    }

    async fn for_order(&self, _: &str) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_store_failure_fails_the_invocation_so_the_event_is_retried() {
    let service = EventStoreService::new(Arc::new(Unavailable));
    let err = invoke(&service, fixture()).await.unwrap_err();
    assert_eq!(err.error_type, "ServiceUnavailable");
    assert!(err.error_message.contains("throttled"));
}

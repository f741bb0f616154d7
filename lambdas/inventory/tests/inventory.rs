use ewf_domain::entry::invoke;
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::sample::SampleData;
use ewf_domain::testing::{self, RecordingBus, get, invocation, send};
use ewf_domain::{Item, ItemId, OrderDetail};
use ewf_inventory::InventoryService;
use ewf_sqlite::SqliteStores;
use serde_json::{Value, json};
use std::sync::Arc;

const SOLD_OUT: &str = "item-0";

struct Harness {
    stores: SqliteStores,
    bus: Arc<RecordingBus>,
    service: InventoryService,
}

impl Harness {
    /// The sample items, plus one with no stock left.
    async fn new() -> Self {
        let stores = SqliteStores::in_memory().unwrap();
        let mut items = SampleData::builtin().items;
        items.push(Item {
            item_id: ItemId::parse(SOLD_OUT).unwrap(),
            available: 0,
            ..items[0].clone()
        });
        for item in &items {
            stores.inventory().put(item, true).await.unwrap();
        }
        let bus = Arc::new(RecordingBus::default());
        let service = InventoryService::new(stores.inventory(), stores.ledger(), bus.clone());
        Self {
            stores,
            bus,
            service,
        }
    }

    /// (available, reserved)
    async fn stock(&self, id: &str) -> (i64, i64) {
        let item = self
            .stores
            .inventory()
            .get(&ItemId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        (item.available, item.reserved)
    }

    async fn item(&self, id: &str) -> Item {
        self.stores
            .inventory()
            .get(&ItemId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    async fn on(&self, detail_type: &str, detail: &Value) -> Value {
        invoke(&self.service, event(detail_type, detail))
            .await
            .unwrap()
    }
}

/// The fixtures' order, for another order id and item.
fn order(order_id: &str, item_id: &str) -> Value {
    let mut detail = serde_json::to_value(testing::order()).unwrap();
    detail["orderId"] = order_id.into();
    detail["itemId"] = item_id.into();
    detail
}

/// An event as its publisher sends it.
fn event(detail_type: &str, detail: &Value) -> Value {
    let source = match detail_type {
        "ItemReserved" => "Inventory",
        "PaymentMade" | "PaymentFailed" => "Payment",
        "ErrorCustomerDescribed" => "Customer",
        "ErrorDeliveryEstimated" | "DeliveryStarted" => "Delivery",
        _ => "Order",
    };
    testing::event(detail_type, source, detail)
}

fn announced(detail_type: DetailType, detail: &Value) -> Vec<BusEvent> {
    vec![BusEvent::new(FunctionName::Inventory, detail_type, detail)]
}

fn with_failure(detail: &Value, status: &str, reason: &str) -> Value {
    let mut detail = detail.clone();
    detail["failure"] = json!({ "status": status, "reason": reason });
    detail
}

#[tokio::test]
async fn http_actions_move_stock_and_reply_with_the_item() {
    let h = Harness::new().await;
    let (status, body) = get(&h.service, "/inventory/describe/item-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "Big Smartphone");
    assert_eq!(body["price"], "399.99");

    for (action, expected) in [
        ("reserve", (9, 1)),
        ("unreserve", (10, 0)),
        ("reserve", (9, 1)),
        ("remove", (9, 0)),
        ("return", (10, 0)),
    ] {
        let (status, body) = get(&h.service, &format!("/inventory/{action}/item-1")).await;
        assert_eq!(status, 200, "{action}");
        assert_eq!(
            (
                body["available"].as_i64().unwrap(),
                body["reserved"].as_i64().unwrap()
            ),
            expected
        );
        assert_eq!(h.stock("item-1").await, expected, "{action}");
    }
    // Manual actions are not saga steps: nothing goes on the bus.
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn http_actions_refused_by_a_guard_answer_409_with_their_code() {
    let h = Harness::new().await;
    for (path, code) in [
        ("/inventory/reserve/item-0", "ItemNotAvailable"),
        ("/inventory/unreserve/item-1", "NothingReserved"),
        ("/inventory/remove/item-1", "NothingReserved"),
    ] {
        let (status, body) = get(&h.service, path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some(code)),
            "{path}"
        );
    }
    assert_eq!(h.stock(SOLD_OUT).await, (0, 0));
    assert_eq!(h.stock("item-1").await, (10, 0));
}

#[tokio::test]
async fn http_bad_requests_are_4xx_never_500() {
    let h = Harness::new().await;
    for (path, status, error) in [
        ("/inventory/describe/item-404", 404, "ItemNotFound"),
        ("/inventory/reserve/item-404", 404, "ItemNotFound"),
        ("/inventory/explode/item-1", 404, "UnknownAction"),
        ("/inventory/describe/it%27em", 400, "BadInput"),
        ("/inventory/reserve", 400, "BadInput"),
        ("/inventory/reserve/item-1/2", 400, "BadInput"),
        ("/inventory", 404, "RouteNotFound"),
        ("/customer/describe/item-1", 404, "RouteNotFound"),
    ] {
        let (got, body) = get(&h.service, path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path}"
        );
    }
    for (path, field) in [
        ("/inventory/describe/it%27em", "itemId"),
        ("/inventory/reserve", "itemId"),
        ("/inventory/reserve/item-1/2", "path"),
    ] {
        assert_eq!(get(&h.service, path).await.1["field"], field, "{path}");
    }
    let (status, _) = send(&h.service, "POST", "/inventory/reserve/item-1").await;
    assert_eq!(status, 404);
    assert_eq!(h.stock("item-1").await, (10, 0));
    // Path segments are URL-decoded.
    assert_eq!(
        get(&h.service, "/inventory/describe/item%2D2").await.1["itemId"],
        "item-2"
    );
}

#[tokio::test]
async fn order_created_reserves_the_item() {
    let h = Harness::new().await;
    let detail = order("o-1", "item-1");
    h.on("OrderCreated", &detail).await;
    assert_eq!(h.bus.take(), announced(DetailType::ItemReserved, &detail));
    assert_eq!(h.stock("item-1").await, (9, 1));
}

#[tokio::test]
async fn order_created_for_an_item_out_of_stock_or_unknown_is_not_available() {
    let h = Harness::new().await;
    for (item, reason) in [
        (SOLD_OUT, "item item-0 is not available"),
        ("item-404", "Item item-404 not found"),
    ] {
        let detail = order(&format!("o-{item}"), item);
        h.on("OrderCreated", &detail).await;
        let failed = with_failure(&detail, "ITEM_NOT_AVAILABLE", reason);
        assert_eq!(
            h.bus.take(),
            announced(DetailType::ItemNotAvailable, &failed)
        );
    }
    assert_eq!(h.stock(SOLD_OUT).await, (0, 0));
}

#[tokio::test]
async fn item_reserved_is_described_with_the_item() {
    let h = Harness::new().await;
    let detail = order("o-1", "item-3");
    h.on("ItemReserved", &detail).await;
    let mut described = detail.clone();
    described["item"] = serde_json::to_value(h.item("item-3").await).unwrap();
    assert_eq!(
        h.bus.take(),
        announced(DetailType::ItemDescribed, &described)
    );
    // The detail still reads as an order detail downstream.
    serde_json::from_value::<OrderDetail>(described).unwrap();
}

#[tokio::test]
async fn payment_made_removes_the_reserved_item() {
    let h = Harness::new().await;
    let detail = order("o-1", "item-1");
    h.on("OrderCreated", &detail).await;
    h.bus.take();
    h.on("PaymentMade", &detail).await;
    assert_eq!(h.bus.take(), announced(DetailType::ItemRemoved, &detail));
    assert_eq!(h.stock("item-1").await, (9, 0));

    // A reservation released by hand before the payment was heard of: the paid order
    // fails, and ErrorItemRemoved has its payment refunded.
    let released = order("o-2", "item-1");
    h.on("OrderCreated", &released).await;
    let (status, _) = testing::get(&h.service, "/inventory/unreserve/item-1").await;
    assert_eq!(status, 200);
    h.bus.take();
    h.on("PaymentMade", &released).await;
    let failed = with_failure(&released, "FAILED", "item item-1 has nothing reserved");
    assert_eq!(
        h.bus.take(),
        announced(DetailType::ErrorItemRemoved, &failed)
    );
    assert_eq!(h.stock("item-1").await, (9, 0));
}

#[tokio::test]
async fn every_failure_after_the_reservation_releases_it_and_keeps_the_failure() {
    let h = Harness::new().await;
    for (failure, status) in [
        ("PaymentFailed", "PAYMENT_FAILED"),
        ("ErrorCustomerDescribed", "FAILED"),
        ("ErrorDeliveryEstimated", "FAILED"),
    ] {
        let detail = order(&format!("o-{failure}"), "item-2");
        h.on("OrderCreated", &detail).await;
        assert_eq!(h.stock("item-2").await, (4, 1));
        let failed = with_failure(&detail, status, "it went wrong");
        h.bus.take();
        h.on(failure, &failed).await;
        assert_eq!(
            h.bus.take(),
            announced(DetailType::ItemUnreserved, &failed),
            "{failure}"
        );
        assert_eq!(h.stock("item-2").await, (5, 0), "{failure}");
    }
}

#[tokio::test]
async fn order_canceled_returns_the_item() {
    let h = Harness::new().await;
    let mut detail = order("o-1", "item-1");
    h.on("OrderCreated", &detail).await;
    h.on("PaymentMade", &detail).await;
    assert_eq!(h.stock("item-1").await, (9, 0));
    h.bus.take();
    detail["paymentId"] = "01KDX8Q7V3M2N4P6R8S0T2W4Y7".into();
    h.on("OrderCanceled", &detail).await;
    assert_eq!(h.bus.take(), announced(DetailType::ItemReturned, &detail));
    assert_eq!(h.stock("item-1").await, (10, 0));
}

#[tokio::test]
async fn compensations_undo_only_what_the_order_did() {
    let h = Harness::new().await;
    // Another order holds a reservation that no other order's compensation may take.
    h.on("OrderCreated", &order("o-other", "item-2")).await;
    assert_eq!(h.stock("item-2").await, (4, 1));
    h.bus.take();

    // Nothing reserved, nothing sold: the compensation completes and moves nothing.
    let failed = with_failure(&order("o-1", "item-2"), "FAILED", "it went wrong");
    h.on("PaymentFailed", &failed).await;
    assert_eq!(h.bus.take(), announced(DetailType::ItemUnreserved, &failed));
    h.on("OrderCanceled", &failed).await;
    assert_eq!(h.bus.take(), announced(DetailType::ItemReturned, &failed));
    assert_eq!(h.stock("item-2").await, (4, 1));

    // Its reservation, arriving late, is refused: the order was compensated.
    h.on("OrderCreated", &failed).await;
    let late = h.bus.take();
    assert_eq!(late[0].detail_type, DetailType::ItemNotAvailable);
    assert_eq!(late[0].detail["failure"]["status"], "ITEM_NOT_AVAILABLE");
    assert_eq!(h.stock("item-2").await, (4, 1));

    // The workflow alike: a release after a reservation that never happened.
    let detail = order("wf-1", "item-2");
    invoke(&h.service, invocation("unreserve", &detail))
        .await
        .unwrap();
    let err = invoke(&h.service, invocation("reserve", &detail))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "OrderCompensated");
    assert_eq!(h.stock("item-2").await, (4, 1));

    // A reservation that was sold is released by returning the item, once, however
    // many compensations ask for it.
    let sold = order("o-2", "item-2");
    h.on("OrderCreated", &sold).await;
    h.on("PaymentMade", &sold).await;
    assert_eq!(h.stock("item-2").await, (3, 1));
    h.on("PaymentFailed", &with_failure(&sold, "FAILED", "late"))
        .await;
    assert_eq!(h.stock("item-2").await, (4, 1));
    h.on("OrderCanceled", &sold).await;
    h.on("OrderCanceled", &sold).await;
    assert_eq!(h.stock("item-2").await, (4, 1));

    // The workflow alike: a removal that ran though its task failed, then the release.
    let removed = order("wf-2", "item-2");
    for (action, stock) in [
        ("reserve", (3, 2)),
        ("remove", (3, 1)),
        ("unreserve", (4, 1)),
        ("unreserve", (4, 1)),
        ("return", (4, 1)),
    ] {
        invoke(&h.service, invocation(action, &removed))
            .await
            .unwrap();
        assert_eq!(h.stock("item-2").await, stock, "{action}");
    }
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing_and_replays_the_same_events() {
    let h = Harness::new().await;
    let detail = order("o-1", "item-1");
    for detail_type in ["OrderCreated", "PaymentMade", "OrderCanceled"] {
        let first = h.on(detail_type, &detail).await;
        let state = h.stock("item-1").await;
        let published = h.bus.take();
        assert_eq!(h.on(detail_type, &detail).await, first, "{detail_type}");
        assert_eq!(h.bus.take(), published, "{detail_type}");
        assert_eq!(h.stock("item-1").await, state, "{detail_type}");
    }
    assert_eq!(h.stock("item-1").await, (10, 0));
}

#[tokio::test]
async fn a_refused_reservation_is_replayed_even_once_stock_is_back() {
    let h = Harness::new().await;
    let detail = order("o-1", SOLD_OUT);
    h.on("OrderCreated", &detail).await;
    let refused = h.bus.take();
    assert_eq!(refused[0].detail_type, DetailType::ItemNotAvailable);
    get(&h.service, &format!("/inventory/return/{SOLD_OUT}")).await;
    h.on("OrderCreated", &detail).await;
    assert_eq!(h.bus.take(), refused);
    assert_eq!(h.stock(SOLD_OUT).await, (1, 0));
}

#[tokio::test]
async fn a_failed_publish_is_retried_and_publishes_the_recorded_events_once() {
    let h = Harness::new().await;
    let detail = order("o-1", "item-1");
    h.bus.fail_next(1);
    let err = invoke(&h.service, event("OrderCreated", &detail))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "ServiceUnavailable");
    assert!(h.bus.published().is_empty());
    assert_eq!(h.stock("item-1").await, (9, 1));

    h.on("OrderCreated", &detail).await;
    assert_eq!(h.bus.take(), announced(DetailType::ItemReserved, &detail));
    assert_eq!(h.stock("item-1").await, (9, 1));
}

#[tokio::test]
async fn events_for_others_or_with_a_bad_detail_are_refused_once_not_retried() {
    let h = Harness::new().await;
    let mut no_item = order("o-1", "item-1");
    no_item.as_object_mut().unwrap().remove("itemId");
    for (detail_type, detail) in [
        ("DeliveryStarted", order("o-1", "item-1")),
        ("NoSuchEvent", order("o-1", "item-1")),
        ("OrderCreated", no_item),
        (
            "OrderCreated",
            json!({"customerId": "customer-1", "orderId": "o 1", "itemId": "item-1"}),
        ),
    ] {
        let reply = invoke(&h.service, event(detail_type, &detail))
            .await
            .unwrap();
        assert_eq!(
            reply["refused"]["error"], "BadInput",
            "{detail_type} {detail}"
        );
    }
    assert_eq!(h.stock("item-1").await, (10, 0));
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn workflow_steps_reply_with_the_order_and_publish_nothing() {
    let h = Harness::new().await;
    let detail = order("wf-1", "item-2");
    for (action, expected) in [("reserve", (4, 1)), ("remove", (4, 0)), ("return", (5, 0))] {
        let reply = invoke(&h.service, invocation(action, &detail))
            .await
            .unwrap();
        assert_eq!(reply, detail, "{action}");
        // A retried task replays its step.
        assert_eq!(
            invoke(&h.service, invocation(action, &detail))
                .await
                .unwrap(),
            detail,
            "{action}"
        );
        assert_eq!(h.stock("item-2").await, expected, "{action}");
    }

    let described = invoke(&h.service, invocation("describe", &detail))
        .await
        .unwrap();
    assert_eq!(
        described["item"],
        serde_json::to_value(h.item("item-2").await).unwrap()
    );
    assert_eq!(described["orderId"], "wf-1");
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn workflow_release_undoes_the_reservation() {
    let h = Harness::new().await;
    let detail = order("wf-1", "item-3");
    invoke(&h.service, invocation("reserve", &detail))
        .await
        .unwrap();
    // The workflow passes the caught error along with the order.
    let mut caught = detail.clone();
    caught["error"] =
        json!({"Error": "CustomerNotFound", "Cause": "Customer customer-1 not found"});
    invoke(&h.service, invocation("unreserve", &caught))
        .await
        .unwrap();
    assert_eq!(h.stock("item-3").await, (100, 0));
}

#[tokio::test]
async fn workflow_refusals_are_typed_function_errors() {
    let h = Harness::new().await;
    let mut no_order = invocation("reserve", &order("wf-1", "item-1"));
    no_order.as_object_mut().unwrap().remove("order");
    for (payload, error) in [
        (
            invocation("reserve", &order("wf-1", SOLD_OUT)),
            "ItemNotAvailable",
        ),
        (
            invocation("reserve", &order("wf-2", "item-404")),
            "ItemNotFound",
        ),
        (
            invocation("describe", &order("wf-3", "item-404")),
            "ItemNotFound",
        ),
        (
            invocation("restock", &order("wf-5", "item-1")),
            "UnknownAction",
        ),
        (no_order, "BadInput"),
    ] {
        let err = invoke(&h.service, payload.clone()).await.unwrap_err();
        assert_eq!(err.error_type, error, "{payload}");
    }
    // A refusal is recorded: the retry refuses alike although stock came back.
    get(&h.service, &format!("/inventory/return/{SOLD_OUT}")).await;
    let err = invoke(&h.service, invocation("reserve", &order("wf-1", SOLD_OUT)))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "ItemNotAvailable");
    assert_eq!(h.stock(SOLD_OUT).await, (1, 0));
}

#[test]
fn the_event_decoder_takes_exactly_what_the_routing_table_sends() {
    ewf_domain::testing::assert_decodes_exactly_its_rules::<ewf_inventory::Command>(
        ewf_domain::events::FunctionName::Inventory,
    );
}

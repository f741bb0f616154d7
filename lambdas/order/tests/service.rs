//! The order service through its three entries: API Gateway requests, EventBridge events
//! and direct invocations from the workflow, over SQLite stores.

use ewf_domain::entry::invoke;
use ewf_domain::events::{BusEvent, DetailType};
use ewf_domain::ports::Clock;
use ewf_domain::testing::{
    self, FixedClock, RecordingBus, ScriptedRandom, event, http_request, invocation,
};
use ewf_domain::{
    Address, Customer, CustomerId, Estimate, Failure, Item, ItemId, Mode, Money, Order,
    OrderDetail, OrderId, OrderStatus, Payment, PaymentId, PaymentStatus,
};
use ewf_order::OrderService;
use ewf_sqlite::SqliteStores;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The order of the fixtures.
const ORDER: &str = "01JDXKQ3Z8J1V6N3R0W2T5Y7AB";

fn created() -> OrderDetail {
    testing::order()
}

/// The detail as it is after the payment: item, customer, delivery and payment known.
fn paid() -> OrderDetail {
    let now = FixedClock::default().now();
    let address = Address::parse("Great Russell St, London WC1B 3DG, UK").unwrap();
    OrderDetail {
        item: Some(Item {
            item_id: ItemId::parse("item-1").unwrap(),
            name: "Big Smartphone".into(),
            description: String::new(),
            price: "399.99".parse().unwrap(),
            available: 9,
            reserved: 1,
        }),
        customer: Some(Customer {
            customer_id: CustomerId::parse("customer-1").unwrap(),
            name: "British Museum".into(),
            email: "someone@example.net".into(),
            address: address.clone(),
            description: String::new(),
        }),
        delivery: Some(Estimate {
            origin: "60 Holborn Viaduct, London EC1A 2FD, UK".into(),
            address,
            distance: "2.1".parse().unwrap(),
            duration: 420,
            price: Estimate::price_for(420),
        }),
        payment: Some(Payment {
            payment_id: PaymentId::parse("01JDXKR0000000000000000001").unwrap(),
            amount: "404.19".parse().unwrap(),
            method: "CREDIT_CARD".into(),
            status: PaymentStatus::Paid,
            created_at: now,
            updated_at: now,
        }),
        ..created()
    }
}

fn failed(status: OrderStatus, reason: &str) -> OrderDetail {
    OrderDetail {
        failure: Some(Failure {
            status,
            reason: reason.into(),
        }),
        ..created()
    }
}

/// The choreography's deadline in these tests.
const DEADLINE: Duration = Duration::from_secs(60);

struct Harness {
    stores: SqliteStores,
    bus: Arc<RecordingBus>,
    clock: Arc<FixedClock>,
    service: OrderService,
}

impl Harness {
    fn new() -> Self {
        let stores = SqliteStores::in_memory().unwrap();
        let bus = Arc::new(RecordingBus::default());
        let clock = Arc::new(FixedClock::default());
        let service = OrderService::new(
            stores.orders(),
            stores.ledger(),
            bus.clone(),
            clock.clone(),
            Arc::new(ScriptedRandom::default()),
            DEADLINE,
        );
        Self {
            stores,
            bus,
            clock,
            service,
        }
    }

    /// What a scheduled sweep answers.
    async fn sweep(&self) -> Value {
        let mut schedule = event(DetailType::OrderCreated, "aws.events", &json!({}));
        schedule["detail-type"] = "Scheduled Event".into();
        invoke(&self.service, schedule).await.unwrap()
    }

    async fn order(&self) -> Option<Order> {
        let customer = CustomerId::parse("customer-1").unwrap();
        self.stores
            .orders()
            .get(&customer, &OrderId::parse(ORDER).unwrap())
            .await
            .unwrap()
    }

    async fn status(&self) -> OrderStatus {
        self.order().await.unwrap().order_status
    }

    /// Sends events in turn; each must succeed.
    async fn send(&self, events: &[Value]) {
        for event in events {
            invoke(&self.service, event.clone()).await.unwrap();
        }
    }
}

#[tokio::test]
async fn http_create_announces_the_order_then_records_it() {
    let harness = Harness::new();
    let (status, body) = testing::get(&harness.service, "/order/create/customer-1/item-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["orderStatus"], "CREATED");
    assert_eq!(body["mode"], "events");
    let order_id = OrderId::parse(body["orderId"].as_str().unwrap()).unwrap();

    let published = harness.bus.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].detail_type, DetailType::OrderCreated);
    assert_eq!(published[0].source, "Order");
    let detail: OrderDetail = serde_json::from_value(published[0].detail.clone()).unwrap();
    assert_eq!(detail.order_id, order_id);
    assert_eq!(detail.item_id.as_str(), "item-1");

    let (status, described) = testing::get(
        &harness.service,
        &format!("/order/describe/customer-1/{order_id}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(described, body);
}

#[tokio::test]
async fn two_orders_in_the_same_millisecond_get_different_ids() {
    let harness = Harness::new();
    let (_, first) = testing::get(&harness.service, "/order/create/customer-1/item-1").await;
    let (_, second) = testing::get(&harness.service, "/order/create/customer-1/item-1").await;
    assert_ne!(first["orderId"], second["orderId"]);
}

#[tokio::test]
async fn a_failed_publish_creates_nothing() {
    let harness = Harness::new();
    harness.bus.fail_next(1);
    let (status, body) = testing::get(&harness.service, "/order/create/customer-1/item-1").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "ServiceUnavailable");
    assert!(harness.bus.published().is_empty());
    // ScriptedRandom hands out 1 first: the id the order would have had.
    let order_id = OrderId::generate(FixedClock::default().now(), 1);
    let (status, _) = testing::get(
        &harness.service,
        &format!("/order/describe/customer-1/{order_id}"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn http_errors_name_the_problem() {
    let harness = Harness::new();
    let cases = [
        (
            "/order/describe/customer-1/nothing-here",
            404,
            "OrderNotFound",
            None,
        ),
        (
            "/order/describe/customer-1",
            400,
            "BadInput",
            Some("orderId"),
        ),
        (
            "/order/create/customer%201/item-1",
            400,
            "BadInput",
            Some("customerId"),
        ),
        (
            "/order/create/customer-1/item'1",
            400,
            "BadInput",
            Some("itemId"),
        ),
        (
            "/order/create/customer-1/item-1/extra",
            400,
            "BadInput",
            Some("path"),
        ),
        (
            "/order/explode/customer-1/item-1",
            404,
            "UnknownAction",
            None,
        ),
        ("/inventory/describe/item-1", 404, "RouteNotFound", None),
        ("/order", 404, "RouteNotFound", None),
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
    let response = invoke(
        &harness.service,
        http_request("POST", "/order/create/customer-1/item-1"),
    )
    .await
    .unwrap();
    assert_eq!(response["statusCode"], 404);
    assert!(harness.order().await.is_none());
}

#[tokio::test]
async fn order_created_records_the_order_once() {
    let harness = Harness::new();
    let created_event = event(DetailType::OrderCreated, "Order", &created());
    harness.send(std::slice::from_ref(&created_event)).await;
    let first = harness.order().await.unwrap();
    assert_eq!(
        (first.order_status, first.mode),
        (OrderStatus::Created, Mode::Events)
    );

    harness
        .send(&[
            event(DetailType::ItemReserved, "Inventory", &created()),
            created_event,
        ])
        .await;
    assert_eq!(harness.status().await, OrderStatus::Reserved);
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn the_happy_path_records_every_status_and_announces_the_delivery() {
    let harness = Harness::new();
    harness
        .send(&[event(DetailType::OrderCreated, "Order", &created())])
        .await;
    let steps = [
        (DetailType::ItemReserved, "Inventory", OrderStatus::Reserved),
        (DetailType::PaymentMade, "Payment", OrderStatus::Paid),
        (
            DetailType::DeliveryStarted,
            "Delivery",
            OrderStatus::Delivering,
        ),
    ];
    for (detail_type, source, status) in steps {
        let detail = if detail_type == DetailType::ItemReserved {
            created()
        } else {
            paid()
        };
        harness.send(&[event(detail_type, source, &detail)]).await;
        assert_eq!(harness.status().await, status, "after {detail_type}");
    }
    let order = harness.order().await.unwrap();
    assert_eq!(order.item_price, Some("399.99".parse().unwrap()));
    assert_eq!(order.delivery_price, Some("4.20".parse::<Money>().unwrap()));
    assert_eq!(order.total_price, Some("404.19".parse().unwrap()));
    assert_eq!(
        order.payment_id.unwrap().as_str(),
        "01JDXKR0000000000000000001"
    );
    assert_eq!(
        order.delivery_address.unwrap().as_str(),
        "Great Russell St, London WC1B 3DG, UK"
    );

    let delivered = event(
        DetailType::DeliveryWasDelivered,
        "Delivery",
        &json!({"customerId": "customer-1", "orderId": ORDER}),
    );
    harness.send(std::slice::from_ref(&delivered)).await;
    assert_eq!(harness.status().await, OrderStatus::Delivered);
    let first = harness.bus.take();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].detail_type, DetailType::OrderDelivered);
    assert_eq!(first[0].detail["paymentId"], "01JDXKR0000000000000000001");

    // Redelivered: the same state and the same announcement, replayed from the ledger.
    harness.send(&[delivered]).await;
    assert_eq!(harness.status().await, OrderStatus::Delivered);
    assert_eq!(harness.bus.take(), first);
}

#[tokio::test]
async fn late_events_never_move_an_order_back() {
    let harness = Harness::new();
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::DeliveryStarted, "Delivery", &paid()),
        ])
        .await;
    let before = harness.order().await.unwrap();
    harness
        .send(&[
            event(DetailType::ItemReserved, "Inventory", &created()),
            event(DetailType::PaymentMade, "Payment", &paid()),
            event(
                DetailType::PaymentFailed,
                "Payment",
                &failed(OrderStatus::PaymentFailed, "declined"),
            ),
        ])
        .await;
    assert_eq!(harness.order().await.unwrap(), before);
    assert_eq!(before.order_status, OrderStatus::Delivering);
}

#[tokio::test]
async fn a_status_event_for_an_order_not_yet_recorded_is_retried() {
    let harness = Harness::new();
    for late in [
        event(DetailType::ItemReserved, "Inventory", &created()),
        event(
            DetailType::DeliveryWasDelivered,
            "Delivery",
            &json!({"customerId": "customer-1", "orderId": ORDER}),
        ),
    ] {
        let err = invoke(&harness.service, late).await.unwrap_err();
        assert_eq!(err.error_type, "ServiceUnavailable");
    }
    assert!(harness.order().await.is_none());
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn a_payment_failure_ends_with_the_failure_and_its_reason() {
    let harness = Harness::new();
    let failure = failed(OrderStatus::PaymentFailed, "payment of 404.19 failed");
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::ItemReserved, "Inventory", &created()),
            event(DetailType::PaymentFailed, "Payment", &failure),
        ])
        .await;
    assert_eq!(harness.status().await, OrderStatus::Compensating);
    harness
        .send(&[event(DetailType::ItemUnreserved, "Inventory", &failure)])
        .await;
    let order = harness.order().await.unwrap();
    assert_eq!(order.order_status, OrderStatus::PaymentFailed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("payment of 404.19 failed")
    );
}

#[tokio::test]
async fn other_failures_compensate_then_fail() {
    for detail_type in [
        DetailType::ErrorCustomerDescribed,
        DetailType::ErrorDeliveryEstimated,
    ] {
        let harness = Harness::new();
        let failure = failed(OrderStatus::Failed, "Address 1 Nowhere Lane not found");
        harness
            .send(&[
                event(DetailType::OrderCreated, "Order", &created()),
                event(detail_type, "Customer", &failure),
            ])
            .await;
        assert_eq!(
            harness.status().await,
            OrderStatus::Compensating,
            "{detail_type}"
        );
        harness
            .send(&[event(DetailType::ItemUnreserved, "Inventory", &failure)])
            .await;
        assert_eq!(harness.status().await, OrderStatus::Failed, "{detail_type}");
    }
}

#[tokio::test]
async fn a_paid_item_that_could_not_be_removed_fails_the_order_once_refunded() {
    let harness = Harness::new();
    let failure = OrderDetail {
        failure: failed(OrderStatus::Failed, "item item-1 has nothing reserved").failure,
        ..paid()
    };
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::PaymentMade, "Payment", &paid()),
        ])
        .await;
    // The order stays PAID while the refund is under way (statuses only move forward).
    assert_eq!(harness.status().await, OrderStatus::Paid);
    harness
        .send(&[event(DetailType::PaymentCanceled, "Payment", &failure)])
        .await;
    let order = harness.order().await.unwrap();
    assert_eq!(order.order_status, OrderStatus::Failed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("item item-1 has nothing reserved")
    );
}

#[tokio::test]
async fn every_status_listener_changes_nothing_the_second_time() {
    let order_ref = json!({"customerId": "customer-1", "orderId": ORDER});
    let declined = failed(OrderStatus::PaymentFailed, "declined");
    let unroutable = failed(OrderStatus::Failed, "Address 1 Nowhere Lane not found");
    let paths = [
        vec![
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::ItemReserved, "Inventory", &created()),
            event(DetailType::PaymentMade, "Payment", &paid()),
            event(DetailType::DeliveryStarted, "Delivery", &paid()),
            event(DetailType::DeliveryWasDelivered, "Delivery", &order_ref),
        ],
        vec![
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::PaymentFailed, "Payment", &declined),
            event(DetailType::ItemUnreserved, "Inventory", &declined),
        ],
        vec![
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::ErrorCustomerDescribed, "Customer", &unroutable),
            event(DetailType::ErrorDeliveryEstimated, "Delivery", &unroutable),
            event(DetailType::ItemUnreserved, "Inventory", &unroutable),
        ],
        vec![
            event(DetailType::OrderCreated, "Order", &created()),
            event(
                DetailType::ItemNotAvailable,
                "Inventory",
                &failed(OrderStatus::ItemNotAvailable, "none left"),
            ),
        ],
        vec![
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::PaymentMade, "Payment", &paid()),
            event(DetailType::DeliveryStarted, "Delivery", &paid()),
            event(DetailType::DeliveryWasCanceled, "Delivery", &order_ref),
            event(DetailType::PaymentCanceled, "Payment", &paid()),
        ],
    ];
    for path in paths {
        let harness = Harness::new();
        for sent in path {
            let first = invoke(&harness.service, sent.clone()).await;
            let (order, published) = (harness.order().await, harness.bus.take());
            let second = invoke(&harness.service, sent.clone()).await;
            let name = &sent["detail-type"];
            assert_eq!(second, first, "{name}");
            assert_eq!(harness.order().await, order, "{name}");
            assert_eq!(harness.bus.take(), published, "{name}");
        }
    }
}

#[tokio::test]
async fn a_completed_compensation_without_a_final_status_is_refused() {
    let harness = Harness::new();
    harness
        .send(&[event(DetailType::OrderCreated, "Order", &created())])
        .await;
    let odd = failed(OrderStatus::Paid, "odd");
    for (detail_type, source, detail) in [
        (DetailType::ItemUnreserved, "Inventory", created()),
        (DetailType::ItemUnreserved, "Inventory", odd.clone()),
        (DetailType::PaymentCanceled, "Payment", odd),
    ] {
        let reply = invoke(&harness.service, event(detail_type, source, &detail))
            .await
            .unwrap();
        assert_eq!(reply["refused"]["error"], "BadInput", "{detail_type}");
    }
    assert_eq!(harness.status().await, OrderStatus::Created);
}

#[tokio::test]
async fn an_unavailable_item_ends_the_order_with_its_reason() {
    let harness = Harness::new();
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(
                DetailType::ItemNotAvailable,
                "Inventory",
                &failed(OrderStatus::ItemNotAvailable, "item-1 is out of stock"),
            ),
        ])
        .await;
    let order = harness.order().await.unwrap();
    assert_eq!(order.order_status, OrderStatus::ItemNotAvailable);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("item-1 is out of stock")
    );
}

#[tokio::test]
async fn a_canceled_delivery_announces_order_canceled_from_the_record() {
    let harness = Harness::new();
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::PaymentMade, "Payment", &paid()),
            event(DetailType::DeliveryStarted, "Delivery", &paid()),
        ])
        .await;
    let canceled = event(
        DetailType::DeliveryWasCanceled,
        "Delivery",
        &json!({"customerId": "customer-1", "orderId": ORDER}),
    );
    harness.bus.fail_next(1);
    assert_eq!(
        invoke(&harness.service, canceled.clone())
            .await
            .unwrap_err()
            .error_type,
        "ServiceUnavailable"
    );
    // The status moved with its step; the retry replays the announcement.
    assert_eq!(harness.status().await, OrderStatus::Canceling);
    harness.send(&[canceled]).await;
    let published = harness.bus.take();
    let expected = json!({
        "customerId": "customer-1", "orderId": ORDER, "itemId": "item-1",
        "paymentId": "01JDXKR0000000000000000001"
    });
    assert_eq!(
        published,
        [BusEvent::from_source(
            "Order",
            DetailType::OrderCanceled,
            &expected
        )]
    );

    harness
        .send(&[event(
            DetailType::PaymentCanceled,
            "Payment",
            &serde_json::from_value::<OrderDetail>(expected).unwrap(),
        )])
        .await;
    assert_eq!(harness.status().await, OrderStatus::Canceled);
    // A delivery that was canceled cannot be delivered after all.
    harness
        .send(&[event(
            DetailType::DeliveryWasDelivered,
            "Delivery",
            &json!({"customerId": "customer-1", "orderId": ORDER}),
        )])
        .await;
    assert_eq!(harness.status().await, OrderStatus::Canceled);
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn events_the_order_does_not_handle_are_refused_once_not_retried() {
    let harness = Harness::new();
    let mut unknown = event(DetailType::OrderCreated, "Order", &created());
    unknown["detail-type"] = "OrderCreate".into();
    for refused in [
        event(DetailType::ItemDescribed, "Inventory", &created()),
        unknown,
        event(
            DetailType::OrderCreated,
            "Order",
            &json!({"orderId": ORDER}),
        ),
    ] {
        let reply = invoke(&harness.service, refused).await.unwrap();
        assert_eq!(reply["refused"]["error"], "BadInput");
    }
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn the_workflow_creates_and_advances_its_order() {
    let harness = Harness::new();
    // The workflow names its orders after its executions.
    let fixture_detail = OrderDetail {
        order_id: OrderId::parse("2f0c9a4e-5b7d-4e21-9c3a-8d6f1b2e4a70").unwrap(),
        ..created()
    };
    let create = invocation("create", &fixture_detail);
    let reply = invoke(&harness.service, create.clone()).await.unwrap();
    assert_eq!(reply, serde_json::to_value(&fixture_detail).unwrap());
    let order_id = fixture_detail.order_id.clone();
    let read = || async {
        harness
            .stores
            .orders()
            .get(&fixture_detail.customer_id, &order_id)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        (read().await.mode, read().await.order_status),
        (Mode::Workflow, OrderStatus::Created)
    );

    // A retried create changes nothing.
    invoke(&harness.service, create).await.unwrap();
    assert_eq!(read().await.order_status, OrderStatus::Created);

    let grown = OrderDetail {
        order_id: order_id.clone(),
        ..paid()
    };
    let mut advance = invocation("advance", &grown);
    advance["status"] = "DELIVERING".into();
    assert_eq!(
        invoke(&harness.service, advance.clone()).await.unwrap(),
        serde_json::to_value(&grown).unwrap()
    );
    let order = read().await;
    assert_eq!(order.order_status, OrderStatus::Delivering);
    assert_eq!(order.total_price, Some("404.19".parse().unwrap()));

    advance["status"] = "DELIVERED".into();
    invoke(&harness.service, advance.clone()).await.unwrap();
    advance["status"] = "DELIVERING".into();
    invoke(&harness.service, advance).await.unwrap();
    assert_eq!(read().await.order_status, OrderStatus::Delivered);
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn the_workflow_records_failures_by_error_name() {
    // The detail as the workflow holds it at the payment step: priced, not yet paid.
    let priced = OrderDetail {
        payment: None,
        ..paid()
    };
    let order_payment = PaymentId::of_order(&priced.order_id);
    let declined = format!("payment {order_payment} of 404.19 declined");
    let lambda_cause = json!({"errorType": "PaymentFailed", "errorMessage": declined}).to_string();
    let cases = [
        (
            json!({"Error": "PaymentFailed", "Cause": lambda_cause}),
            OrderStatus::PaymentFailed,
            declined.as_str(),
        ),
        // The declined payment comes from the detail, whatever the message says.
        (
            json!({"Error": "PaymentFailed"}),
            OrderStatus::PaymentFailed,
            "PaymentFailed",
        ),
        (
            json!({"Error": "ItemNotAvailable", "Cause": "no stock"}),
            OrderStatus::ItemNotAvailable,
            "no stock",
        ),
        (
            json!({"Error": "ItemNotFound"}),
            OrderStatus::ItemNotAvailable,
            "ItemNotFound",
        ),
        (
            json!({"Error": "States.Timeout", "Cause": ""}),
            OrderStatus::Failed,
            "States.Timeout",
        ),
        (
            json!({"Error": "AddressNotFound", "Cause": "{\"not\": \"a function error\"}"}),
            OrderStatus::Failed,
            "{\"not\": \"a function error\"}",
        ),
    ];
    for (error, status, reason) in cases {
        let harness = Harness::new();
        invoke(&harness.service, invocation("create", &created()))
            .await
            .unwrap();
        let mut fail = invocation("fail", &priced);
        fail["error"] = error.clone();
        assert_eq!(
            invoke(&harness.service, fail).await.unwrap(),
            serde_json::to_value(&priced).unwrap()
        );
        let order = harness.order().await.unwrap();
        assert_eq!(order.order_status, status, "{error}");
        assert_eq!(order.failure_reason.as_deref(), Some(reason), "{error}");
        // The declined payment and its amount, as the choreography records them.
        let declined_payment = (status == OrderStatus::PaymentFailed)
            .then(|| (order_payment.clone(), "404.19".parse().unwrap()));
        assert_eq!(
            order.payment_id.zip(order.total_price),
            declined_payment,
            "{error}"
        );
    }
}

#[tokio::test]
async fn bad_invocations_name_the_field() {
    let harness = Harness::new();
    let mut advance = invocation("advance", &created());
    advance["status"] = "SHIPPED".into();
    let mut no_order = invocation("create", &created());
    no_order.as_object_mut().unwrap().remove("order");
    let mut bad_error = invocation("fail", &created());
    bad_error["error"] = json!({"Cause": "no name"});
    for (payload, name, field) in [
        (advance, "BadInput", "status"),
        (no_order, "BadInput", "order"),
        (bad_error, "BadInput", "error"),
        (json!({"order": {}}), "BadInput", "action"),
        (
            invocation("explode", &created()),
            "UnknownAction",
            "explode",
        ),
    ] {
        let err = invoke(&harness.service, payload).await.unwrap_err();
        assert_eq!(err.error_type, name);
        assert!(err.error_message.contains(field), "{}", err.error_message);
    }
}

#[tokio::test]
async fn an_order_of_the_choreography_past_its_deadline_is_timed_out_once() {
    let harness = Harness::new();
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::ItemReserved, "Inventory", &created()),
        ])
        .await;
    harness.bus.take();
    // Not overdue yet.
    harness.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(harness.sweep().await["timedOut"], json!([]));
    harness.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(harness.sweep().await["timedOut"], json!([ORDER]));
    let published = harness.bus.take();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].detail_type, DetailType::OrderTimedOut);
    assert_eq!(
        published[0].detail["failure"],
        json!({"status": "FAILED", "reason": "timed out in payment"})
    );
    // Announced once: the compensation is under way.
    assert_eq!(harness.sweep().await["timedOut"], json!([]));
    assert!(harness.bus.published().is_empty());
    // Its compensation ends it as its failure says.
    let refunded = OrderDetail {
        failure: Some(Failure {
            status: OrderStatus::Failed,
            reason: "timed out in payment".into(),
        }),
        ..created()
    };
    harness
        .send(&[event(DetailType::PaymentCanceled, "Payment", &refunded)])
        .await;
    let order = harness.order().await.unwrap();
    assert_eq!(order.order_status, OrderStatus::Failed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("timed out in payment")
    );
}

#[tokio::test]
async fn settled_orders_and_workflow_orders_are_never_timed_out() {
    let harness = Harness::new();
    harness
        .send(&[
            event(DetailType::OrderCreated, "Order", &created()),
            event(DetailType::DeliveryStarted, "Delivery", &created()),
        ])
        .await;
    let workflow = OrderDetail {
        order_id: OrderId::parse("wf-1").unwrap(),
        ..created()
    };
    invoke(&harness.service, invocation("create", &workflow))
        .await
        .unwrap();
    harness.bus.take();
    harness.clock.advance(chrono::Duration::days(1));
    assert_eq!(harness.sweep().await["timedOut"], json!([]));
    assert!(harness.bus.published().is_empty());
}

#[tokio::test]
async fn the_workflow_records_what_its_compensation_left_undone() {
    let lambda_cause = |message: &str| {
        json!({"errorType": "ServiceUnavailable", "errorMessage": message}).to_string()
    };
    let undone = |field: &str, message: &str| {
        let mut detail = serde_json::to_value(paid()).unwrap();
        detail[field] = json!({"Error": "ServiceUnavailable", "Cause": lambda_cause(message)});
        detail
    };
    // A canceled delivery whose refund failed after its retries.
    let harness = Harness::new();
    invoke(&harness.service, invocation("create", &paid()))
        .await
        .unwrap();
    let mut canceled = json!({"action": "advance", "status": "CANCELED"});
    canceled["order"] = undone("refundError", "payments are down");
    invoke(&harness.service, canceled).await.unwrap();
    let order = harness.order().await.unwrap();
    assert_eq!(order.order_status, OrderStatus::CompensationFailed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("delivery canceled; payment not refunded: payments are down")
    );

    // A failure whose release failed: the failure's reason, then what is left undone.
    let harness = Harness::new();
    invoke(&harness.service, invocation("create", &paid()))
        .await
        .unwrap();
    let mut failed = json!({"action": "fail", "error": {"Error": "CustomerNotFound", "Cause": "Customer customer-1 not found"}});
    failed["order"] = undone("releaseError", "inventory is down");
    invoke(&harness.service, failed).await.unwrap();
    let order = harness.order().await.unwrap();
    assert_eq!(order.order_status, OrderStatus::CompensationFailed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("Customer customer-1 not found; item not released: inventory is down")
    );
}

#[test]
fn the_event_decoder_takes_exactly_what_the_routing_table_sends() {
    ewf_domain::testing::assert_decodes_exactly_its_rules::<ewf_order::Command>(
        ewf_domain::events::FunctionName::Order,
    );
}

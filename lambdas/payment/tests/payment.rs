use ewf_domain::entry::{FunctionError, invoke};
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::ports::Clock;
use ewf_domain::sample::SampleData;
use ewf_domain::testing::{self, FixedClock, RecordingBus, ScriptedRandom, get, invocation, send};
use ewf_domain::{Estimate, OrderDetail, OrderId, Payment, PaymentId, PaymentStatus};
use ewf_payment::PaymentService;
use ewf_sqlite::SqliteStores;
use serde_json::{Value, json};
use std::sync::Arc;

/// Draws at or above this pay; below it, the payment fails.
const FAIL_PROBABILITY: f64 = 0.2;
const PAYS: f64 = 0.7;
const FAILS: f64 = 0.1;

struct Harness {
    stores: SqliteStores,
    bus: Arc<RecordingBus>,
    clock: Arc<FixedClock>,
    service: PaymentService,
}

impl Harness {
    /// A payment service whose random draws are `units`, then 0.5 (pays).
    fn new(units: &[f64]) -> Self {
        let stores = SqliteStores::in_memory().unwrap();
        let bus = Arc::new(RecordingBus::default());
        let clock = Arc::new(FixedClock::default());
        let service = PaymentService::new(
            stores.payments(),
            stores.ledger(),
            bus.clone(),
            clock.clone(),
            Arc::new(ScriptedRandom::with_units(units)),
            FAIL_PROBABILITY,
        );
        Self {
            stores,
            bus,
            clock,
            service,
        }
    }

    /// The id of the n-th payment made by hand: ScriptedRandom counts its id bits from 1.
    fn nth_payment_id(&self, n: u128) -> PaymentId {
        PaymentId::generate(self.clock.now(), n)
    }

    async fn payment(&self, id: &PaymentId) -> Option<Payment> {
        self.stores.payments().get(id).await.unwrap()
    }

    async fn on(&self, detail_type: &str, detail: &Value) -> Result<Value, FunctionError> {
        // DeliveryEstimated comes from the delivery service, the refunds' events from the
        // inventory.
        let source = if detail_type == "ItemReturned" {
            "Inventory"
        } else {
            "Delivery"
        };
        invoke(&self.service, testing::event(detail_type, source, detail)).await
    }
}

/// The fixtures' order as the delivery service leaves it: its item (399.99) and its
/// delivery (12.34) priced.
fn priced_order(order_id: &str) -> Value {
    let sample = SampleData::builtin();
    let customer = sample.customers[0].clone();
    let delivery = Estimate {
        origin: "60 Holborn Viaduct, London EC1A 2FD, UK".into(),
        address: customer.address.clone(),
        distance: "4.87".parse().unwrap(),
        duration: 1234,
        price: Estimate::price_for(1234),
    };
    let detail = OrderDetail {
        order_id: OrderId::parse(order_id).unwrap(),
        item: Some(sample.items[0].clone()),
        customer: Some(customer),
        delivery: Some(delivery),
        ..testing::order()
    };
    serde_json::to_value(detail).unwrap()
}

/// The workflow's `pay` task: the order and its total, as the state machine adds it up.
fn pay(order: &Value) -> Value {
    let mut payload = invocation("pay", order);
    payload["amount"] = "412.33".into();
    payload
}

/// The id of an order's payment.
fn order_payment(order_id: &str) -> PaymentId {
    PaymentId::of_order(&OrderId::parse(order_id).unwrap())
}

fn paid_payment(h: &Harness, payment_id: &PaymentId, status: &str) -> Value {
    let now = h.clock.now();
    json!({
        "paymentId": payment_id,
        "amount": "412.33",
        "method": "CREDIT_CARD",
        "status": status,
        "createdAt": ewf_domain::time::format(&now),
        "updatedAt": ewf_domain::time::format(&now),
    })
}

#[tokio::test]
async fn http_pay_creates_a_paid_payment_with_201() {
    let h = Harness::new(&[PAYS]);
    let (status, body) = get(&h.service, "/payment/pay/412.33").await;
    assert_eq!(
        (status, &body),
        (201, &paid_payment(&h, &h.nth_payment_id(1), "PAID"))
    );
    let id = h.nth_payment_id(1);
    let (status, described) = get(&h.service, &format!("/payment/describe/{id}")).await;
    assert_eq!((status, described), (200, body));
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn http_pay_declined_answers_402_and_records_the_failed_payment() {
    let h = Harness::new(&[FAILS]);
    let (status, body) = get(&h.service, "/payment/pay/412.33").await;
    let id = h.nth_payment_id(1);
    assert_eq!(
        (status, body["error"].as_str()),
        (402, Some("PaymentFailed"))
    );
    assert_eq!(body["paymentId"], id.as_str(), "{body}");
    assert_eq!(body["message"], format!("payment {id} of 412.33 declined"));
    assert_eq!(h.payment(&id).await.unwrap().status, PaymentStatus::Failed);
}

#[tokio::test]
async fn http_cancel_cancels_a_paid_payment_only() {
    let h = Harness::new(&[PAYS, FAILS]);
    get(&h.service, "/payment/pay/412.33").await;
    get(&h.service, "/payment/pay/412.33").await;
    let (paid, failed) = (h.nth_payment_id(1), h.nth_payment_id(2));

    let (status, body) = get(&h.service, &format!("/payment/cancel/{paid}")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("CANCELED")));
    for id in [&paid, &failed] {
        let (status, body) = get(&h.service, &format!("/payment/cancel/{id}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("PaymentNotPaid")),
            "{id}"
        );
    }
    assert_eq!(
        h.payment(&failed).await.unwrap().status,
        PaymentStatus::Failed
    );
}

#[tokio::test]
async fn http_bad_requests_are_4xx_never_500() {
    let h = Harness::new(&[]);
    for (path, status, error, field) in [
        ("/payment/pay/abc", 400, "BadInput", Some("amount")),
        ("/payment/pay/0", 400, "BadInput", Some("amount")),
        ("/payment/pay/1.001", 400, "BadInput", Some("amount")),
        ("/payment/pay/1.500", 400, "BadInput", Some("amount")),
        ("/payment/pay/1e2", 400, "BadInput", Some("amount")),
        ("/payment/pay/%201", 400, "BadInput", Some("amount")),
        (
            "/payment/describe/not%20an%20id",
            400,
            "BadInput",
            Some("paymentId"),
        ),
        (
            "/payment/describe/01KDX8Q7V3M2N4P6R8S0T2W4Y6",
            404,
            "PaymentNotFound",
            None,
        ),
        (
            "/payment/cancel/01KDX8Q7V3M2N4P6R8S0T2W4Y6",
            404,
            "PaymentNotFound",
            None,
        ),
        (
            "/payment/refund/01KDX8Q7V3M2N4P6R8S0T2W4Y6",
            404,
            "UnknownAction",
            None,
        ),
        ("/payment/pay", 400, "BadInput", Some("amount")),
        ("/payment/cancel", 400, "BadInput", Some("paymentId")),
        ("/payment", 404, "RouteNotFound", None),
    ] {
        let (got, body) = get(&h.service, path).await;
        assert_eq!(
            (got, body["error"].as_str(), body["field"].as_str()),
            (status, Some(error), field),
            "{path}"
        );
    }
    let (status, body) = send(&h.service, "POST", "/payment/pay/412.33").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("RouteNotFound"))
    );
    assert!(h.payment(&h.nth_payment_id(1)).await.is_none());
}

#[tokio::test]
async fn delivery_estimated_pays_item_and_delivery() {
    let h = Harness::new(&[PAYS]);
    let detail = priced_order("o-1");
    h.on("DeliveryEstimated", &detail).await.unwrap();
    let mut paid = detail.clone();
    paid["payment"] = paid_payment(&h, &order_payment("o-1"), "PAID");
    assert_eq!(
        h.bus.take(),
        vec![BusEvent::new(
            FunctionName::Payment,
            DetailType::PaymentMade,
            &paid
        )]
    );
    assert_eq!(
        h.payment(&order_payment("o-1")).await.unwrap().status,
        PaymentStatus::Paid
    );
}

#[tokio::test]
async fn a_declined_payment_emits_payment_failed() {
    let h = Harness::new(&[FAILS]);
    let detail = priced_order("o-1");
    h.on("DeliveryEstimated", &detail).await.unwrap();
    let published = h.bus.take();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].detail_type, DetailType::PaymentFailed);
    assert_eq!(
        published[0].detail["payment"],
        paid_payment(&h, &order_payment("o-1"), "FAILED")
    );
    let failure = &published[0].detail["failure"];
    assert_eq!(failure["status"], "PAYMENT_FAILED");
    assert!(
        failure["reason"].as_str().unwrap().contains("412.33"),
        "{failure}"
    );
    assert_eq!(
        h.payment(&order_payment("o-1")).await.unwrap().status,
        PaymentStatus::Failed
    );
}

#[tokio::test]
async fn a_redelivered_event_replays_the_recorded_payment_without_drawing_again() {
    // The second draw would fail the payment: a replay must not take it.
    let h = Harness::new(&[PAYS, FAILS]);
    let detail = priced_order("o-1");
    let first = h.on("DeliveryEstimated", &detail).await.unwrap();
    let published = h.bus.take();
    assert_eq!(h.on("DeliveryEstimated", &detail).await.unwrap(), first);
    assert_eq!(h.bus.take(), published);
    assert_eq!(published[0].detail_type, DetailType::PaymentMade);
    assert_eq!(
        h.payment(&order_payment("o-1")).await.unwrap().status,
        PaymentStatus::Paid
    );

    h.on("DeliveryEstimated", &priced_order("o-2"))
        .await
        .unwrap();
    assert_eq!(h.bus.take()[0].detail_type, DetailType::PaymentFailed);
}

#[tokio::test]
async fn a_failed_publish_is_retried_and_publishes_the_recorded_payment() {
    let h = Harness::new(&[FAILS]);
    let detail = priced_order("o-1");
    h.bus.fail_next(1);
    assert_eq!(
        h.on("DeliveryEstimated", &detail)
            .await
            .unwrap_err()
            .error_type,
        "ServiceUnavailable"
    );
    assert!(h.bus.published().is_empty());

    h.on("DeliveryEstimated", &detail).await.unwrap();
    let published = h.bus.take();
    assert_eq!(published[0].detail_type, DetailType::PaymentFailed);
    assert_eq!(
        published[0].detail["payment"]["paymentId"],
        json!(order_payment("o-1"))
    );
    // The retry replayed the payment the first attempt made.
    assert_eq!(
        h.payment(&order_payment("o-1")).await.unwrap().status,
        PaymentStatus::Failed
    );
}

#[tokio::test]
async fn item_returned_cancels_the_payment_once_after_a_cancellation_or_a_failure() {
    let h = Harness::new(&[PAYS, PAYS]);
    // A canceled delivery, then a failure after the payment (its item is back).
    for (n, failed) in [(1, false), (2, true)] {
        let refund = "ItemReturned";
        get(&h.service, "/payment/pay/412.33").await;
        let id = h.nth_payment_id(n);
        let mut returned = priced_order(&format!("o-{n}"));
        returned["paymentId"] = json!(id);
        if failed {
            returned["failure"] = json!({ "status": "FAILED", "reason": "nothing reserved" });
        }

        let first = h.on(refund, &returned).await.unwrap();
        // The detail, with its failure, goes on: it tells the order how it ends.
        let expected = vec![BusEvent::new(
            FunctionName::Payment,
            DetailType::PaymentCanceled,
            &returned,
        )];
        assert_eq!(h.bus.take(), expected, "{refund}");
        assert_eq!(
            h.payment(&id).await.unwrap().status,
            PaymentStatus::Canceled,
            "{refund}"
        );

        assert_eq!(h.on(refund, &returned).await.unwrap(), first, "{refund}");
        assert_eq!(h.bus.take(), expected, "{refund}");
    }
}

#[tokio::test]
async fn an_order_that_cannot_be_paid_fails_its_saga_and_other_events_are_acknowledged() {
    let h = Harness::new(&[]);
    let mut undelivered = priced_order("o-1");
    undelivered.as_object_mut().unwrap().remove("delivery");
    let mut overflowing = priced_order("o-1");
    overflowing["item"]["price"] = json!("79228162514264337593543950335");
    let mut over_the_limit = priced_order("o-1");
    over_the_limit["item"]["price"] = json!("999999.99");
    for detail in [undelivered, overflowing, over_the_limit] {
        h.on("DeliveryEstimated", &detail).await.unwrap();
        let published = h.bus.take();
        assert_eq!(published.len(), 1, "{detail}");
        assert_eq!(published[0].detail_type, DetailType::ErrorPaymentMade);
        let failure = &published[0].detail["failure"];
        assert_eq!(failure["status"], "FAILED");
        assert!(
            failure["reason"].as_str().unwrap().starts_with("invalid "),
            "{failure}"
        );
        assert_eq!(published[0].detail["orderId"], "o-1");
    }
    // Nothing was paid for any of them.
    assert_eq!(h.payment(&order_payment("o-1")).await, None);
    // An event that is not the payment's to act on is acknowledged, not retried.
    let reply = h.on("PaymentMade", &priced_order("o-1")).await.unwrap();
    assert_eq!(reply["refused"]["error"], "BadInput");
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn a_refund_with_nothing_to_refund_completes_the_compensation() {
    let h = Harness::new(&[PAYS]);
    // No payment of the order's own, or one that is gone: nothing to refund, and the
    // choreography still hears that the compensation is done.
    let mut gone = priced_order("o-2");
    gone["paymentId"] = "01KDX8Q7V3M2N4P6R8S0T2W4Y6".into();
    for returned in [priced_order("o-1"), gone] {
        h.on("ItemReturned", &returned).await.unwrap();
        assert_eq!(
            h.bus.take(),
            [BusEvent::new(
                FunctionName::Payment,
                DetailType::PaymentCanceled,
                &returned
            )]
        );
    }
    // The workflow refunds an order whose payment timed out before it ran: nothing to
    // refund, and the payment, arriving late, is not made.
    let detail = priced_order("wf-1");
    assert_eq!(
        invoke(&h.service, invocation("cancel", &detail))
            .await
            .unwrap(),
        detail
    );
    let err = invoke(&h.service, pay(&detail)).await.unwrap_err();
    assert_eq!(err.error_type, "OrderCompensated");
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn workflow_pay_replies_with_the_payment_and_publishes_nothing() {
    let h = Harness::new(&[PAYS, FAILS]);
    let detail = priced_order("wf-1");
    let reply = invoke(&h.service, pay(&detail)).await.unwrap();
    let mut expected = detail.clone();
    expected["payment"] = paid_payment(&h, &order_payment("wf-1"), "PAID");
    assert_eq!(reply, expected);
    // A retried task replays the step.
    assert_eq!(invoke(&h.service, pay(&detail)).await.unwrap(), expected);
    assert!(h.bus.published().is_empty());

    let declined = invoke(&h.service, pay(&priced_order("wf-2")))
        .await
        .unwrap_err();
    assert_eq!(declined.error_type, "PaymentFailed");
    assert_eq!(
        h.payment(&order_payment("wf-2")).await.unwrap().status,
        PaymentStatus::Failed
    );
    let again = invoke(&h.service, pay(&priced_order("wf-2")))
        .await
        .unwrap_err();
    assert_eq!(again, declined);
}

#[tokio::test]
async fn workflow_cancel_cancels_the_order_payment() {
    let h = Harness::new(&[PAYS]);
    let paid = invoke(&h.service, pay(&priced_order("wf-1")))
        .await
        .unwrap();
    // The workflow hands back the order it holds, with the delivery outcome.
    let mut held = paid.clone();
    held["outcome"] = json!({"status": "CANCELED"});
    assert_eq!(
        invoke(&h.service, invocation("cancel", &held))
            .await
            .unwrap(),
        paid
    );
    assert_eq!(
        h.payment(&order_payment("wf-1")).await.unwrap().status,
        PaymentStatus::Canceled
    );
    assert_eq!(
        invoke(&h.service, invocation("cancel", &held))
            .await
            .unwrap(),
        paid
    );
    assert!(h.bus.published().is_empty());
}

#[tokio::test]
async fn workflow_refusals_are_typed_function_errors() {
    let h = Harness::new(&[]);
    let mut no_amount = pay(&priced_order("wf-1"));
    no_amount.as_object_mut().unwrap().remove("amount");
    let mut negative = pay(&priced_order("wf-1"));
    negative["amount"] = json!(-1);
    for (payload, error) in [
        (no_amount, "BadInput"),
        (negative, "BadInput"),
        (invocation("refund", &priced_order("wf-1")), "UnknownAction"),
    ] {
        let err = invoke(&h.service, payload.clone()).await.unwrap_err();
        assert_eq!(err.error_type, error, "{payload}");
    }
}

#[tokio::test]
async fn an_order_pays_once_even_when_its_step_is_no_longer_on_record() {
    // The orders' payments, made under steps the ledger no longer holds.
    let h = Harness::new(&[FAILS, FAILS]);
    for order in ["wf-1", "o-1"] {
        let made: Payment =
            serde_json::from_value(paid_payment(&h, &order_payment(order), "PAID")).unwrap();
        h.stores.payments().create(&made, None).await.unwrap();
    }
    // The workflow's order and the choreography's go on with the payment made, and no
    // draw (here a decline) is taken.
    let mut paid = priced_order("wf-1");
    paid["payment"] = paid_payment(&h, &order_payment("wf-1"), "PAID");
    assert_eq!(
        invoke(&h.service, pay(&priced_order("wf-1")))
            .await
            .unwrap(),
        paid
    );
    h.on("DeliveryEstimated", &priced_order("o-1"))
        .await
        .unwrap();
    let published = h.bus.take();
    assert_eq!(published[0].detail_type, DetailType::PaymentMade);
    assert_eq!(
        published[0].detail["payment"]["paymentId"],
        json!(order_payment("o-1"))
    );
    // A compensation refunds it.
    invoke(&h.service, invocation("cancel", &priced_order("wf-1")))
        .await
        .unwrap();
    assert_eq!(
        h.payment(&order_payment("wf-1")).await.unwrap().status,
        PaymentStatus::Canceled
    );
}

#[test]
fn the_event_decoder_takes_exactly_what_the_routing_table_sends() {
    ewf_domain::testing::assert_decodes_exactly_its_rules::<ewf_payment::Command>(
        ewf_domain::events::FunctionName::Payment,
    );
}

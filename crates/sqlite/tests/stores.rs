//! Each port's behaviour, its guards, and step recording, on a private in-memory database.

use ewf_domain::ports::Step;
use ewf_domain::{
    Address, Customer, CustomerId, Delivery, DeliveryStatus, Item, ItemId, Mode, Money, Order,
    OrderId, OrderStatus, OrderUpdate, Payment, PaymentId, PaymentStatus, StockMove, StoredEvent,
    Timestamp, WriteError,
};
use ewf_sqlite::SqliteStores;
use serde_json::json;

fn stores() -> SqliteStores {
    SqliteStores::in_memory().unwrap()
}

fn at(seconds: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(seconds, 123_456_789).unwrap()
}

fn step(key: &str, outcome: serde_json::Value) -> Step {
    Step {
        key: key.into(),
        outcome,
    }
}

fn item(available: i64, reserved: i64) -> Item {
    Item {
        item_id: ItemId::parse("item-1").unwrap(),
        name: "Big Smartphone".into(),
        description: "a phone".into(),
        price: "399.99".parse().unwrap(),
        available,
        reserved,
    }
}

fn payment(status: PaymentStatus) -> Payment {
    Payment {
        payment_id: PaymentId::parse("pay-1").unwrap(),
        amount: "412.33".parse().unwrap(),
        method: "CREDIT_CARD".into(),
        status,
        created_at: at(100),
        updated_at: at(100),
    }
}

fn customer_id() -> CustomerId {
    CustomerId::parse("customer-1").unwrap()
}

fn order_id() -> OrderId {
    OrderId::parse("order-1").unwrap()
}

fn delivery() -> Delivery {
    Delivery {
        customer_id: customer_id(),
        order_id: order_id(),
        address: Address::parse("St Paul's Churchyard, London").unwrap(),
        status: DeliveryStatus::Delivering,
        mode: Mode::Workflow,
        task_token: None,
        created_at: at(100),
        updated_at: at(100),
    }
}

fn order() -> Order {
    Order {
        customer_id: customer_id(),
        order_id: order_id(),
        mode: Mode::Events,
        order_status: OrderStatus::Created,
        item_id: ItemId::parse("item-1").unwrap(),
        item_price: None,
        delivery_price: None,
        total_price: None,
        payment_id: None,
        delivery_address: None,
        failure_reason: None,
        order_date: at(100),
        update_date: at(100),
    }
}

fn event(time_what: &str, order: &str) -> StoredEvent {
    StoredEvent {
        who: "C#customer-1".into(),
        time_what: time_what.into(),
        event_id: format!("id-{time_what}"),
        digest: format!("digest-{time_what}"),
        event_time: at(100),
        event_source: "Order".into(),
        detail_type: "OrderCreated".into(),
        event_detail: r#"{"orderId":"x"}"#.into(),
        order_id: Some(order.into()),
    }
}

#[tokio::test]
async fn customers_are_written_and_read_back() {
    let customers = stores().customers();
    let mut customer = Customer {
        customer_id: customer_id(),
        name: "Buckingham Palace".into(),
        email: "someone@example.net".into(),
        address: Address::parse("London SW1A 1AA, UK").unwrap(),
        description: String::new(),
    };
    assert_eq!(customers.get(&customer.customer_id).await.unwrap(), None);
    customers.put(&customer).await.unwrap();
    assert_eq!(
        customers.get(&customer.customer_id).await.unwrap(),
        Some(customer.clone())
    );
    customer.description = "a palace".into();
    customers.put(&customer).await.unwrap();
    assert_eq!(
        customers.get(&customer.customer_id).await.unwrap(),
        Some(customer)
    );
}

#[tokio::test]
async fn putting_an_item_keeps_its_stock_unless_told_to_overwrite() {
    let inventory = stores().inventory();
    let id = item(0, 0).item_id;
    assert_eq!(inventory.get(&id).await.unwrap(), None);
    assert!(inventory.put(&item(10, 0), false).await.unwrap());
    inventory
        .apply(&id, StockMove::Reserve, None)
        .await
        .unwrap();
    assert!(!inventory.put(&item(10, 0), false).await.unwrap());
    assert_eq!(inventory.get(&id).await.unwrap(), Some(item(9, 1)));
    assert!(inventory.put(&item(7, 0), true).await.unwrap());
    let stored = inventory.get(&id).await.unwrap().unwrap();
    assert_eq!(stored, item(7, 0));
    assert_eq!(stored.price.to_string(), "399.99");
}

#[tokio::test]
async fn stock_moves_follow_their_deltas() {
    let inventory = stores().inventory();
    let id = item(0, 0).item_id;
    inventory.put(&item(2, 0), true).await.unwrap();
    let moves = [
        (StockMove::Reserve, (1, 1)),
        (StockMove::Reserve, (0, 2)),
        (StockMove::Unreserve, (1, 1)),
        (StockMove::Remove, (1, 0)),
        (StockMove::Return, (2, 0)),
    ];
    for (movement, (available, reserved)) in moves {
        let moved = inventory.apply(&id, movement, None).await.unwrap();
        assert_eq!(
            (moved.available, moved.reserved),
            (available, reserved),
            "{movement:?}"
        );
    }
    assert_eq!(inventory.get(&id).await.unwrap(), Some(item(2, 0)));
}

#[tokio::test]
async fn stock_guards_refuse_to_go_negative_and_change_nothing() {
    let inventory = stores().inventory();
    let id = item(0, 0).item_id;
    inventory.put(&item(0, 0), true).await.unwrap();
    for movement in [StockMove::Reserve, StockMove::Unreserve, StockMove::Remove] {
        assert!(!movement.allowed(&item(0, 0)));
        let refused = inventory.apply(&id, movement, None).await;
        assert_eq!(refused, Err(WriteError::ConditionFailed), "{movement:?}");
    }
    assert_eq!(inventory.get(&id).await.unwrap(), Some(item(0, 0)));
    // Returning a sold item is always allowed.
    assert_eq!(
        inventory.apply(&id, StockMove::Return, None).await.unwrap(),
        item(1, 0)
    );
    let unknown = ItemId::parse("item-9").unwrap();
    assert_eq!(
        inventory.apply(&unknown, StockMove::Return, None).await,
        Err(WriteError::NotFound)
    );
}

#[tokio::test]
async fn a_step_done_twice_is_already_done_and_changes_state_once() {
    let stores = stores();
    let inventory = stores.inventory();
    let id = item(0, 0).item_id;
    inventory.put(&item(1, 0), true).await.unwrap();
    let first = step("Inventory#order-1#reserve", json!({"emit": "ItemReserved"}));
    inventory
        .apply(&id, StockMove::Reserve, Some(&first))
        .await
        .unwrap();
    // Same key, another outcome: the first outcome is what comes back, even though the
    // guard (no stock left) would now refuse the move.
    let again = step(
        "Inventory#order-1#reserve",
        json!({"emit": "ItemNotAvailable"}),
    );
    assert_eq!(
        inventory.apply(&id, StockMove::Reserve, Some(&again)).await,
        Err(WriteError::AlreadyDone(first.outcome.clone()))
    );
    assert_eq!(inventory.get(&id).await.unwrap(), Some(item(0, 1)));
    assert_eq!(
        stores.ledger().recorded(&first.key).await.unwrap(),
        Some(first.outcome)
    );
}

#[tokio::test]
async fn a_refused_write_records_no_step() {
    let stores = stores();
    let inventory = stores.inventory();
    inventory.put(&item(0, 0), true).await.unwrap();
    let refused = step("Inventory#order-1#reserve", json!("reserved"));
    assert_eq!(
        inventory
            .apply(&item(0, 0).item_id, StockMove::Reserve, Some(&refused))
            .await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(stores.ledger().recorded(&refused.key).await.unwrap(), None);
}

#[tokio::test]
async fn every_step_carrying_write_replays_its_first_outcome() {
    let stores = stores();
    let (payments, deliveries, orders) = (stores.payments(), stores.deliveries(), stores.orders());
    orders.create(&order()).await.unwrap();
    let replayed = |key: &str| (step(key, json!({"first": key})), step(key, json!("second")));

    let (first, second) = replayed("Payment#order-1#pay");
    payments
        .create(&payment(PaymentStatus::Paid), Some(&first))
        .await
        .unwrap();
    let retried = payments
        .create(&payment(PaymentStatus::Paid), Some(&second))
        .await;
    assert_eq!(retried, Err(WriteError::AlreadyDone(first.outcome)));

    let (first, second) = replayed("Payment#order-1#cancel");
    let id = payment(PaymentStatus::Paid).payment_id;
    payments.cancel(&id, at(200), Some(&first)).await.unwrap();
    let retried = payments.cancel(&id, at(300), Some(&second)).await;
    assert_eq!(retried, Err(WriteError::AlreadyDone(first.outcome)));
    assert_eq!(
        payments.get(&id).await.unwrap().unwrap().updated_at,
        at(200)
    );

    let (first, second) = replayed("Delivery#order-1#start");
    deliveries.start(&delivery(), Some(&first)).await.unwrap();
    let retried = deliveries.start(&delivery(), Some(&second)).await;
    assert_eq!(retried, Err(WriteError::AlreadyDone(first.outcome)));

    let (first, second) = replayed("Delivery#order-1#delivered");
    let (c, o) = (customer_id(), order_id());
    deliveries
        .finish(&c, &o, DeliveryStatus::Delivered, at(200), Some(&first))
        .await
        .unwrap();
    let retried = deliveries
        .finish(&c, &o, DeliveryStatus::Canceled, at(300), Some(&second))
        .await;
    assert_eq!(retried, Err(WriteError::AlreadyDone(first.outcome)));
    assert_eq!(
        deliveries.get(&c, &o).await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );

    let (first, second) = replayed("Order#order-1#delivered");
    let none = OrderUpdate::default();
    orders
        .advance(
            &c,
            &o,
            OrderStatus::Delivering,
            &none,
            at(200),
            Some(&first),
        )
        .await
        .unwrap();
    let retried = orders
        .advance(
            &c,
            &o,
            OrderStatus::Delivered,
            &none,
            at(300),
            Some(&second),
        )
        .await;
    assert_eq!(retried, Err(WriteError::AlreadyDone(first.outcome)));
    assert_eq!(
        orders.get(&c, &o).await.unwrap().unwrap().order_status,
        OrderStatus::Delivering
    );
}

#[tokio::test]
async fn the_ledger_keeps_the_first_outcome_of_a_step() {
    let ledger = stores().ledger();
    let first = step("Payment#order-1#pay", json!({"status": "FAILED"}));
    assert_eq!(ledger.recorded(&first.key).await.unwrap(), None);
    assert_eq!(ledger.record(&first).await.unwrap(), None);
    let second = step("Payment#order-1#pay", json!({"status": "PAID"}));
    assert_eq!(
        ledger.record(&second).await.unwrap(),
        Some(first.outcome.clone())
    );
    assert_eq!(
        ledger.recorded(&first.key).await.unwrap(),
        Some(first.outcome)
    );
}

#[tokio::test]
async fn payments_cancel_only_when_paid() {
    let payments = stores().payments();
    let paid = payment(PaymentStatus::Paid);
    assert_eq!(payments.get(&paid.payment_id).await.unwrap(), None);
    assert_eq!(
        payments.cancel(&paid.payment_id, at(200), None).await,
        Err(WriteError::NotFound)
    );
    payments.create(&paid, None).await.unwrap();
    assert_eq!(
        payments.create(&paid, None).await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(
        payments.get(&paid.payment_id).await.unwrap(),
        Some(paid.clone())
    );

    let canceled = payments
        .cancel(&paid.payment_id, at(200), None)
        .await
        .unwrap();
    assert_eq!(
        (canceled.status, canceled.updated_at),
        (PaymentStatus::Canceled, at(200))
    );
    assert_eq!(canceled.amount.to_string(), "412.33");
    assert_eq!(
        payments.cancel(&paid.payment_id, at(300), None).await,
        Err(WriteError::ConditionFailed)
    );

    let failed = Payment {
        payment_id: PaymentId::parse("pay-2").unwrap(),
        ..payment(PaymentStatus::Failed)
    };
    payments.create(&failed, None).await.unwrap();
    assert_eq!(
        payments.cancel(&failed.payment_id, at(300), None).await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(
        payments.get(&failed.payment_id).await.unwrap(),
        Some(failed)
    );
}

#[tokio::test]
async fn deliveries_finish_only_while_delivering() {
    let deliveries = stores().deliveries();
    let (c, o) = (customer_id(), order_id());
    assert_eq!(deliveries.get(&c, &o).await.unwrap(), None);
    let finish = |status| deliveries.finish(&c, &o, status, at(200), None);
    assert_eq!(
        finish(DeliveryStatus::Delivered).await,
        Err(WriteError::NotFound)
    );
    assert_eq!(
        deliveries.attach_token(&c, &o, "token-1").await,
        Err(WriteError::NotFound)
    );

    deliveries.start(&delivery(), None).await.unwrap();
    assert_eq!(
        deliveries.start(&delivery(), None).await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(deliveries.get(&c, &o).await.unwrap(), Some(delivery()));

    let waiting = deliveries.attach_token(&c, &o, "token-1").await.unwrap();
    assert_eq!(waiting.task_token.as_deref(), Some("token-1"));
    let finished = finish(DeliveryStatus::Canceled).await.unwrap();
    assert_eq!(
        (finished.status, finished.updated_at),
        (DeliveryStatus::Canceled, at(200))
    );
    assert_eq!(finished.task_token.as_deref(), Some("token-1"));
    assert_eq!(
        finish(DeliveryStatus::Delivered).await,
        Err(WriteError::ConditionFailed)
    );

    // A token attached after the outcome comes back with the finished delivery.
    let late = deliveries.attach_token(&c, &o, "token-2").await.unwrap();
    assert_eq!(
        (late.status, late.task_token.as_deref()),
        (DeliveryStatus::Canceled, Some("token-2"))
    );
}

#[tokio::test]
async fn orders_are_created_once_and_read_back_exactly() {
    let orders = stores().orders();
    let mut created = order();
    created.order_date = chrono::Utc::now();
    created.update_date = created.order_date;
    created.delivery_address = Some(Address::parse("Trafalgar Square, London WC2N 5DN").unwrap());
    assert_eq!(orders.get(&customer_id(), &order_id()).await.unwrap(), None);
    assert!(orders.create(&created).await.unwrap());
    assert!(!orders.create(&order()).await.unwrap());
    assert_eq!(
        orders.get(&customer_id(), &order_id()).await.unwrap(),
        Some(created)
    );
}

#[tokio::test]
async fn orders_advance_forward_applying_the_update() {
    let orders = stores().orders();
    let (c, o) = (customer_id(), order_id());
    let none = OrderUpdate::default();
    assert_eq!(
        orders
            .advance(&c, &o, OrderStatus::Reserved, &none, at(200), None)
            .await,
        Err(WriteError::NotFound)
    );
    orders.create(&order()).await.unwrap();

    let priced = OrderUpdate {
        item_price: Some("399.99".parse().unwrap()),
        delivery_price: Some("12.34".parse().unwrap()),
        total_price: Some("412.33".parse().unwrap()),
        payment_id: Some(PaymentId::parse("pay-1").unwrap()),
        delivery_address: Some(Address::parse("Great Russell St, London WC1B 3DG").unwrap()),
        failure_reason: None,
    };
    let paid = orders
        .advance(&c, &o, OrderStatus::Paid, &priced, at(200), None)
        .await
        .unwrap();
    let mut expected = order();
    priced.apply(&mut expected);
    expected.order_status = OrderStatus::Paid;
    expected.update_date = at(200);
    assert_eq!(paid, expected);

    // Fields the update leaves out keep their values.
    let reason = OrderUpdate {
        failure_reason: Some("delivery canceled".into()),
        ..none.clone()
    };
    let canceled = orders
        .advance(&c, &o, OrderStatus::Canceled, &reason, at(300), None)
        .await
        .unwrap();
    reason.apply(&mut expected);
    expected.order_status = OrderStatus::Canceled;
    expected.update_date = at(300);
    assert_eq!(canceled, expected);
    assert_eq!(canceled.total_price, Some(Money::new(41_233, 2)));
    assert_eq!(orders.get(&c, &o).await.unwrap(), Some(expected));
}

#[tokio::test]
async fn orders_never_move_backwards_or_sideways() {
    let orders = stores().orders();
    let (c, o) = (customer_id(), order_id());
    let none = OrderUpdate::default();
    orders.create(&order()).await.unwrap();
    orders
        .advance(&c, &o, OrderStatus::Reserved, &none, at(200), None)
        .await
        .unwrap();
    assert_eq!(
        orders
            .advance(&c, &o, OrderStatus::Reserved, &none, at(250), None)
            .await,
        Err(WriteError::ConditionFailed)
    );
    orders
        .advance(&c, &o, OrderStatus::Delivered, &none, at(300), None)
        .await
        .unwrap();
    for later in [
        OrderStatus::Reserved,
        OrderStatus::Delivering,
        OrderStatus::Canceled,
    ] {
        assert_eq!(
            orders.advance(&c, &o, later, &none, at(400), None).await,
            Err(WriteError::ConditionFailed),
            "{later}"
        );
    }
    let stored = orders.get(&c, &o).await.unwrap().unwrap();
    assert_eq!(
        (stored.order_status, stored.update_date),
        (OrderStatus::Delivered, at(300))
    );
}

#[tokio::test]
async fn events_are_stored_once_and_listed_in_time_order() {
    let events = stores().events();
    let late = event("2024-05-01T10:00:02.000Z#ItemReserved#b", "order-1");
    let early = event("2024-05-01T10:00:01.000Z#OrderCreated#a", "order-1");
    let other = event("2024-05-01T10:00:01.500Z#OrderCreated#c", "order-2");
    for stored in [&late, &early, &other] {
        assert!(events.append(stored).await.unwrap());
    }
    assert!(!events.append(&late).await.unwrap());
    assert_eq!(events.for_order("order-1").await.unwrap(), [early, late]);
    assert_eq!(events.for_order("order-3").await.unwrap(), []);
}

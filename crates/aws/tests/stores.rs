//! The DynamoDB stores and ledger against moto: every operation, its guards, and the
//! steps written in one transaction with the change they belong to.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use ewf_domain::ports::{
    CustomerStore, DeliveryStore, EventStore, InventoryStore, Ledger, OrderStore, PaymentStore,
    Step,
};
use ewf_domain::{
    Address, Customer, CustomerId, Delivery, DeliveryStatus, Item, ItemId, Mode, Money, Order,
    OrderId, OrderStatus, OrderUpdate, Payment, PaymentId, PaymentStatus, StockMove, StoredEvent,
    Timestamp, WriteError,
};
use serde_json::json;
use std::sync::Arc;
use support::Fixture;

fn at(rfc3339: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .to_utc()
}

fn money(text: &str) -> Money {
    text.parse().unwrap()
}

fn step(key: &str, outcome: serde_json::Value) -> Step {
    Step {
        key: key.into(),
        outcome,
    }
}

fn item(id: &str, available: i64) -> Item {
    Item {
        item_id: ItemId::parse(id).unwrap(),
        name: "Big Smartphone".into(),
        description: "A phone, but big".into(),
        price: money("399.90"),
        available,
        reserved: 0,
    }
}

fn customer(id: &str) -> Customer {
    Customer {
        customer_id: CustomerId::parse(id).unwrap(),
        name: "Buckingham Palace".into(),
        email: "someone@example.net".into(),
        address: Address::parse("St Paul's Churchyard, London EC4M 8AD, UK").unwrap(),
        description: String::new(),
    }
}

fn counts(item: &Item) -> (i64, i64) {
    (item.available, item.reserved)
}

#[tokio::test]
async fn customers_are_written_read_and_seeded_in_batches() {
    let fixture = Fixture::new().await;
    let customers = fixture.customers().await;
    let one = customer("customer-1");
    customers.put(&one).await.unwrap();
    assert_eq!(customers.get(&one.customer_id).await.unwrap(), Some(one));
    assert_eq!(
        customers
            .get(&CustomerId::parse("nobody").unwrap())
            .await
            .unwrap(),
        None
    );

    // More than one BatchWriteItem's worth.
    let many: Vec<_> = (0..30).map(|n| customer(&format!("seeded-{n}"))).collect();
    customers.batch_put(&many).await.unwrap();
    for seeded in &many {
        assert_eq!(
            customers.get(&seeded.customer_id).await.unwrap().as_ref(),
            Some(seeded)
        );
    }
}

#[tokio::test]
async fn items_keep_their_stock_unless_overwritten_and_their_price_exactly() {
    let fixture = Fixture::new().await;
    let inventory = fixture.inventory().await;
    let original = item("item-1", 10);
    assert!(inventory.put(&original, false).await.unwrap());
    let restocked = Item {
        available: 99,
        ..original.clone()
    };
    assert!(!inventory.put(&restocked, false).await.unwrap());
    assert_eq!(
        inventory.get(&original.item_id).await.unwrap(),
        Some(original.clone())
    );
    assert!(inventory.put(&restocked, true).await.unwrap());
    let stored = inventory.get(&original.item_id).await.unwrap().unwrap();
    assert_eq!(stored, restocked);
    assert_eq!(stored.price.to_string(), "399.90");

    let seeded: Vec<_> = (0..3).map(|n| item(&format!("seeded-{n}"), n)).collect();
    inventory.batch_put(&seeded).await.unwrap();
    assert_eq!(
        inventory.get(&seeded[2].item_id).await.unwrap(),
        Some(seeded[2].clone())
    );
}

#[tokio::test]
async fn seeding_without_reset_writes_only_absent_items_even_when_seeds_race() {
    let fixture = Fixture::new().await;
    let inventory = fixture.inventory().await;
    // One item exists and has moved: seeding must keep its stock.
    inventory.put(&item("race-0", 5), true).await.unwrap();
    let reserved = inventory
        .apply(&ItemId::parse("race-0").unwrap(), StockMove::Reserve, None)
        .await
        .unwrap();
    // More than one batch read (100 keys), with a repeated id.
    let mut items: Vec<_> = (0..150).map(|n| item(&format!("race-{n}"), 10)).collect();
    items.push(item("race-1", 77));
    let (first, second) = tokio::join!(inventory.put_absent(&items), inventory.put_absent(&items));
    // Two seeds at once: every absent item is written by exactly one of them.
    assert_eq!(first.unwrap() + second.unwrap(), 149);
    assert_eq!(
        inventory.get(&reserved.item_id).await.unwrap(),
        Some(reserved.clone())
    );
    let first_of_its_id = inventory.get(&items[1].item_id).await.unwrap().unwrap();
    assert_eq!(first_of_its_id.available, 10);
    assert_eq!(inventory.put_absent(&items).await.unwrap(), 0);
}

#[tokio::test]
async fn stock_moves_obey_their_guards() {
    let fixture = Fixture::new().await;
    let inventory = fixture.inventory().await;
    let id = item("item-1", 1).item_id;
    inventory.put(&item("item-1", 1), true).await.unwrap();

    assert_eq!(
        inventory.apply(&id, StockMove::Unreserve, None).await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(
        inventory.apply(&id, StockMove::Remove, None).await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(
        counts(
            &inventory
                .apply(&id, StockMove::Reserve, None)
                .await
                .unwrap()
        ),
        (0, 1)
    );
    assert_eq!(
        inventory.apply(&id, StockMove::Reserve, None).await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(
        counts(
            &inventory
                .apply(&id, StockMove::Unreserve, None)
                .await
                .unwrap()
        ),
        (1, 0)
    );
    inventory
        .apply(&id, StockMove::Reserve, None)
        .await
        .unwrap();
    assert_eq!(
        counts(&inventory.apply(&id, StockMove::Remove, None).await.unwrap()),
        (0, 0)
    );
    assert_eq!(
        counts(&inventory.apply(&id, StockMove::Return, None).await.unwrap()),
        (1, 0)
    );
    assert_eq!(counts(&inventory.get(&id).await.unwrap().unwrap()), (1, 0));

    let unknown = ItemId::parse("no-such-item").unwrap();
    for movement in [StockMove::Reserve, StockMove::Return] {
        assert_eq!(
            inventory.apply(&unknown, movement, None).await,
            Err(WriteError::NotFound)
        );
    }
    assert_eq!(
        inventory.get(&unknown).await.unwrap(),
        None,
        "a refused move creates nothing"
    );
}

#[tokio::test]
async fn a_step_changes_state_once_and_its_repeat_replays_the_outcome() {
    let fixture = Fixture::new().await;
    let inventory = fixture.inventory().await;
    let ledger = fixture.ledger();
    let id = item("item-1", 1).item_id;
    inventory.put(&item("item-1", 1), true).await.unwrap();

    let reserve = step("Inventory#o-1#reserve", json!({"emit": "ItemReserved"}));
    let after = inventory
        .apply(&id, StockMove::Reserve, Some(&reserve))
        .await
        .unwrap();
    assert_eq!(counts(&after), (0, 1));
    assert_eq!(
        ledger.recorded(&reserve.key).await.unwrap(),
        Some(reserve.outcome.clone())
    );

    // The repeat finds the step, even though the guard would now refuse the move.
    let repeat = step(&reserve.key, json!({"emit": "something else"}));
    assert_eq!(
        inventory
            .apply(&id, StockMove::Reserve, Some(&repeat))
            .await,
        Err(WriteError::AlreadyDone(reserve.outcome.clone()))
    );
    assert_eq!(counts(&inventory.get(&id).await.unwrap().unwrap()), (0, 1));

    // A refused move records no step: the transaction wrote nothing.
    let refused = step("Inventory#o-2#reserve", json!("refused"));
    assert_eq!(
        inventory
            .apply(&id, StockMove::Reserve, Some(&refused))
            .await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(ledger.recorded(&refused.key).await.unwrap(), None);
    let missing = step("Inventory#o-3#reserve", json!("missing"));
    let unknown = ItemId::parse("no-such-item").unwrap();
    assert_eq!(
        inventory
            .apply(&unknown, StockMove::Reserve, Some(&missing))
            .await,
        Err(WriteError::NotFound)
    );
    assert_eq!(ledger.recorded(&missing.key).await.unwrap(), None);
}

#[tokio::test]
async fn the_ledger_records_a_step_once_with_an_expiry() {
    let fixture = Fixture::new().await;
    let ledger = fixture.ledger();
    let first = step(
        "Payment#o-1#pay",
        json!({"status": "PAID", "amount": "12.30"}),
    );
    assert_eq!(ledger.recorded(&first.key).await.unwrap(), None);
    assert_eq!(ledger.record(&first).await.unwrap(), None);
    let second = step(&first.key, json!({"status": "FAILED"}));
    assert_eq!(
        ledger.record(&second).await.unwrap(),
        Some(first.outcome.clone())
    );
    assert_eq!(
        ledger.recorded(&first.key).await.unwrap(),
        Some(first.outcome)
    );

    let raw = fixture
        .client
        .get_item()
        .table_name(&fixture.ledger_table)
        .key("stepKey", AttributeValue::S(first.key.clone()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let AttributeValue::N(expires_at) = &raw["expiresAt"] else {
        panic!("expiresAt is not a number: {raw:?}")
    };
    let days_ahead = (expires_at.parse::<i64>().unwrap() - chrono::Utc::now().timestamp()) / 86_400;
    assert!(
        (364..=365).contains(&days_ahead),
        "expires in {days_ahead} days"
    );
}

#[tokio::test]
async fn fifty_concurrent_reservations_of_ten_in_stock_reserve_exactly_ten() {
    let fixture = Fixture::new().await;
    let inventory = Arc::new(fixture.inventory().await);
    let id = item("item-1", 10).item_id;
    inventory.put(&item("item-1", 10), true).await.unwrap();

    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (inventory, id) = (Arc::clone(&inventory), id.clone());
            // Half of them as saga steps, so transactions race plain updates too.
            let step = (n % 2 == 0).then(|| step(&format!("Inventory#o-{n}#reserve"), json!(n)));
            tokio::spawn(async move {
                inventory
                    .apply(&id, StockMove::Reserve, step.as_ref())
                    .await
            })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => reserved += 1,
            Err(WriteError::ConditionFailed) => {}
            Err(other) => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(reserved, 10);
    assert_eq!(counts(&inventory.get(&id).await.unwrap().unwrap()), (0, 10));
}

fn payment(status: PaymentStatus) -> Payment {
    Payment {
        payment_id: PaymentId::generate(at("2026-01-01T12:00:00Z"), rand_bits()),
        amount: money("412.34"),
        method: "CREDIT_CARD".into(),
        status,
        created_at: at("2026-01-01T12:00:00Z"),
        updated_at: at("2026-01-01T12:00:00Z"),
    }
}

/// Distinct ids across tests that share no table anyway, for readability of moto's state.
fn rand_bits() -> u128 {
    use ewf_domain::ports::Random;
    ewf_domain::system::SeededRandom::new(None).id_bits()
}

#[tokio::test]
async fn payments_are_created_once_and_only_paid_ones_cancel() {
    let fixture = Fixture::new().await;
    let payments = fixture.payments().await;
    let paid = payment(PaymentStatus::Paid);
    payments.create(&paid, None).await.unwrap();
    assert_eq!(
        payments.get(&paid.payment_id).await.unwrap(),
        Some(paid.clone())
    );
    assert_eq!(
        payments.create(&paid, None).await,
        Err(WriteError::ConditionFailed)
    );

    let later = at("2026-01-01T13:00:00.5Z");
    let canceled = payments
        .cancel(&paid.payment_id, later, None)
        .await
        .unwrap();
    assert_eq!(
        canceled,
        Payment {
            status: PaymentStatus::Canceled,
            updated_at: later,
            ..paid.clone()
        }
    );
    assert_eq!(
        payments.cancel(&paid.payment_id, later, None).await,
        Err(WriteError::ConditionFailed)
    );

    let failed = payment(PaymentStatus::Failed);
    let pay = step("Payment#o-1#pay", json!("failed"));
    payments.create(&failed, Some(&pay)).await.unwrap();
    assert_eq!(
        payments.create(&failed, Some(&pay)).await,
        Err(WriteError::AlreadyDone(json!("failed")))
    );
    assert_eq!(
        payments.cancel(&failed.payment_id, later, None).await,
        Err(WriteError::ConditionFailed)
    );
    let unknown = PaymentId::parse("no-such-payment").unwrap();
    assert_eq!(
        payments.cancel(&unknown, later, None).await,
        Err(WriteError::NotFound)
    );
}

#[tokio::test]
async fn a_payment_canceled_as_a_step_is_canceled_once() {
    let fixture = Fixture::new().await;
    let payments = fixture.payments().await;
    let paid = payment(PaymentStatus::Paid);
    payments.create(&paid, None).await.unwrap();
    let cancel = step("Payment#o-1#cancel", json!("canceled"));
    let now = at("2026-01-02T00:00:00Z");
    assert_eq!(
        payments
            .cancel(&paid.payment_id, now, Some(&cancel))
            .await
            .unwrap()
            .status,
        PaymentStatus::Canceled
    );
    assert_eq!(
        payments.cancel(&paid.payment_id, now, Some(&cancel)).await,
        Err(WriteError::AlreadyDone(json!("canceled")))
    );
}

fn ids() -> (CustomerId, OrderId) {
    (
        CustomerId::parse("customer-1").unwrap(),
        OrderId::generate(at("2026-01-01T12:00:00Z"), rand_bits()),
    )
}

#[tokio::test]
async fn deliveries_start_once_hold_a_token_and_finish_once() {
    let fixture = Fixture::new().await;
    let deliveries = fixture.deliveries().await;
    let (customer, order) = ids();
    let delivery = Delivery {
        customer_id: customer.clone(),
        order_id: order.clone(),
        address: Address::parse("St Paul's Churchyard, London EC4M 8AD, UK").unwrap(),
        status: DeliveryStatus::Delivering,
        mode: Mode::Workflow,
        task_token: None,
        created_at: at("2026-01-01T12:00:00Z"),
        updated_at: at("2026-01-01T12:00:00Z"),
    };
    deliveries
        .start(&delivery, Some(&step("Delivery#o#start", json!("started"))))
        .await
        .unwrap();
    assert_eq!(
        deliveries.get(&customer, &order).await.unwrap(),
        Some(delivery.clone())
    );
    assert_eq!(
        deliveries.start(&delivery, None).await,
        Err(WriteError::ConditionFailed)
    );

    let with_token = deliveries
        .attach_token(&customer, &order, "token-1")
        .await
        .unwrap();
    assert_eq!(with_token.task_token.as_deref(), Some("token-1"));
    let (other_customer, other_order) = ids();
    assert_eq!(
        deliveries
            .attach_token(&other_customer, &other_order, "t")
            .await,
        Err(WriteError::NotFound)
    );

    let now = at("2026-01-01T14:00:00Z");
    let delivered = deliveries
        .finish(&customer, &order, DeliveryStatus::Delivered, now, None)
        .await
        .unwrap();
    assert_eq!(
        delivered,
        Delivery {
            status: DeliveryStatus::Delivered,
            updated_at: now,
            task_token: Some("token-1".into()),
            ..delivery
        }
    );
    assert_eq!(
        deliveries
            .finish(&customer, &order, DeliveryStatus::Canceled, now, None)
            .await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(
        deliveries
            .finish(
                &other_customer,
                &other_order,
                DeliveryStatus::Delivered,
                now,
                None
            )
            .await,
        Err(WriteError::NotFound)
    );
}

fn order(customer: &CustomerId, id: &OrderId) -> Order {
    Order {
        customer_id: customer.clone(),
        order_id: id.clone(),
        mode: Mode::Events,
        order_status: OrderStatus::Created,
        item_id: ItemId::parse("item-1").unwrap(),
        item_price: None,
        delivery_price: None,
        total_price: None,
        payment_id: None,
        delivery_address: None,
        failure_reason: None,
        order_date: at("2026-01-01T12:00:00Z"),
        update_date: at("2026-01-01T12:00:00Z"),
    }
}

#[tokio::test]
async fn orders_are_created_once_and_only_move_forward() {
    let fixture = Fixture::new().await;
    let orders = fixture.orders().await;
    let (customer, id) = ids();
    let created = order(&customer, &id);
    assert!(orders.create(&created).await.unwrap());
    assert!(!orders.create(&created).await.unwrap());
    assert_eq!(
        orders.get(&customer, &id).await.unwrap(),
        Some(created.clone())
    );

    let now = at("2026-01-01T12:05:00Z");
    let update = OrderUpdate {
        item_price: Some(money("399.90")),
        delivery_price: Some(money("12.30")),
        total_price: Some(money("412.20")),
        payment_id: Some(PaymentId::parse("payment-1").unwrap()),
        delivery_address: Some(Address::parse("Trafalgar Square, London WC2N 5DN, UK").unwrap()),
        failure_reason: None,
    };
    let paid = orders
        .advance(&customer, &id, OrderStatus::Paid, &update, now, None)
        .await
        .unwrap();
    let mut expected = Order {
        order_status: OrderStatus::Paid,
        update_date: now,
        ..created.clone()
    };
    update.apply(&mut expected);
    assert_eq!(paid, expected);
    assert_eq!(paid.total_price.unwrap().to_string(), "412.20");
    assert_eq!(
        orders.get(&customer, &id).await.unwrap(),
        Some(expected.clone())
    );

    // Back, sideways, or to the first status: refused, nothing changes.
    for status in [
        OrderStatus::Reserved,
        OrderStatus::Compensating,
        OrderStatus::Created,
    ] {
        let refused = orders
            .advance(&customer, &id, status, &OrderUpdate::default(), now, None)
            .await;
        assert_eq!(refused, Err(WriteError::ConditionFailed), "{status}");
    }
    assert_eq!(orders.get(&customer, &id).await.unwrap(), Some(expected));

    let delivered = step("Order#o#delivered", json!("delivered"));
    let no_change = OrderUpdate::default();
    let advance = |step| {
        orders.advance(
            &customer,
            &id,
            OrderStatus::Delivered,
            &no_change,
            now,
            step,
        )
    };
    assert_eq!(
        advance(Some(&delivered)).await.unwrap().order_status,
        OrderStatus::Delivered
    );
    assert_eq!(
        advance(Some(&delivered)).await,
        Err(WriteError::AlreadyDone(json!("delivered")))
    );
    assert_eq!(advance(None).await, Err(WriteError::ConditionFailed));

    let (_, unknown) = ids();
    for status in [OrderStatus::Reserved, OrderStatus::Created] {
        let missing = orders
            .advance(
                &customer,
                &unknown,
                status,
                &OrderUpdate::default(),
                now,
                None,
            )
            .await;
        assert_eq!(missing, Err(WriteError::NotFound), "{status}");
    }
}

fn event(order_id: &str, time: &str, detail_type: &str, id: &str) -> StoredEvent {
    StoredEvent {
        who: "C#customer-1".into(),
        time_what: format!("{time}#{detail_type}#{id}"),
        event_id: id.into(),
        digest: format!("digest-{id}"),
        event_time: at(time),
        event_source: "Order".into(),
        detail_type: detail_type.into(),
        event_detail: json!({"orderId": order_id, "note": "it's"}).to_string(),
        order_id: Some(order_id.into()),
    }
}

#[tokio::test]
async fn events_are_stored_once_and_listed_per_order_in_time_order() {
    let fixture = Fixture::new().await;
    let events = fixture.events().await;
    let created = event("order-a", "2026-01-01T12:00:00.001Z", "OrderCreated", "e1");
    let reserved = event("order-a", "2026-01-01T12:00:00.002Z", "ItemReserved", "e2");
    // Same millisecond, another event: both are kept.
    let described = event("order-a", "2026-01-01T12:00:00.002Z", "ItemDescribed", "e3");
    let other = event("order-b", "2026-01-01T12:00:00.000Z", "OrderCreated", "e4");
    let unrelated = StoredEvent {
        who: "P#item-1".into(),
        order_id: None,
        ..event("x", "2026-01-01T11:00:00Z", "Delivered", "e5")
    };
    for stored in [&described, &other, &reserved, &created, &unrelated] {
        assert!(events.append(stored).await.unwrap());
    }
    assert!(
        !events.append(&reserved).await.unwrap(),
        "a redelivered event is stored once"
    );
    let reemitted = StoredEvent {
        digest: reserved.digest.clone(),
        ..event("order-a", "2026-01-01T12:00:00.009Z", "ItemReserved", "e9")
    };
    assert!(
        !events.append(&reemitted).await.unwrap(),
        "a re-emitted event (new id and time, same content) is stored once"
    );

    assert_eq!(
        events.for_order("order-a").await.unwrap(),
        [created, described, reserved]
    );
    assert_eq!(events.for_order("order-b").await.unwrap(), [other]);
    assert_eq!(events.for_order("order-c").await.unwrap(), []);
}

//! Both sagas end to end on the local stack: every branch, the event order of the
//! specification, parity between the modes, restarts and duplicate deliveries.

use ewf_domain::sample::SampleData;
use ewf_domain::{Address, CustomerId, Item, ItemId, Mode, Order, OrderStatus, PaymentStatus};
use ewf_local::stack::STATE_FILE;
use ewf_local::{LocalOptions, LocalStack};
use std::path::PathBuf;
use std::time::Duration;

/// How long an order may take to settle.
const SETTLE: Duration = Duration::from_secs(60);

/// A state directory removed when the test ends.
struct TempState(PathBuf);

impl TempState {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ewf-sagas-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn options(&self) -> LocalOptions {
        LocalOptions {
            state_dir: self.0.clone(),
            rng_seed: Some(7),
            duplicate_deliveries: false,
            ..LocalOptions::default()
        }
    }
}

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn customer(id: &str) -> CustomerId {
    CustomerId::parse(id).unwrap()
}

fn item(id: &str) -> ItemId {
    ItemId::parse(id).unwrap()
}

/// The sample data plus an item with no stock, an item so dear that with its delivery
/// it costs more than a payment may be, and a customer living where no delivery can
/// go.
fn data() -> SampleData {
    let mut data = SampleData::builtin();
    let mut sold_out: Item = data.items[0].clone();
    sold_out.item_id = item("item-sold-out");
    sold_out.available = 0;
    data.items.push(sold_out);
    let mut dear: Item = data.items[0].clone();
    dear.item_id = item("item-dear");
    dear.price = "999999.99".parse().unwrap();
    data.items.push(dear);
    let mut far_away = data.customers[0].clone();
    far_away.customer_id = customer("customer-far");
    far_away.address = Address::parse("1 Sunken Road, Atlantis").unwrap();
    data.customers.push(far_away);
    data
}

async fn open(state: &TempState) -> LocalStack {
    let stack = LocalStack::open(state.options()).unwrap();
    stack.seed(&data(), true).await.unwrap();
    stack
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    Delivered,
    Canceled,
    PaymentFailed,
    ItemNotAvailable,
    UnknownCustomer,
    UnroutableAddress,
    /// The payment service refuses the order's total (over the limit of an amount).
    TotalOverLimit,
}

/// What a scenario ends in, compared across the modes.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: OrderStatus,
    stock_change: (i64, i64),
    payment: Option<PaymentStatus>,
    failure_reason: bool,
}

async fn run(stack: &LocalStack, mode: Mode, scenario: Scenario) -> (Order, Outcome) {
    let (who, what) = match scenario {
        Scenario::ItemNotAvailable => ("customer-1", "item-sold-out"),
        Scenario::UnknownCustomer => ("customer-404", "item-1"),
        Scenario::UnroutableAddress => ("customer-far", "item-1"),
        Scenario::TotalOverLimit => ("customer-1", "item-dear"),
        _ => ("customer-2", "item-1"),
    };
    let fail = if scenario == Scenario::PaymentFailed {
        1.0
    } else {
        0.0
    };
    stack.set_fail_probability(fail).unwrap();
    let before = stack.item(&item(what)).await.unwrap().unwrap();
    let mut order = stack
        .create_order(mode, &customer(who), &item(what), SETTLE)
        .await
        .unwrap();
    match scenario {
        Scenario::Delivered => {
            assert_eq!(order.order_status, OrderStatus::Delivering);
            order = stack
                .deliver(&order.customer_id, &order.order_id, SETTLE)
                .await
                .unwrap();
        }
        Scenario::Canceled => {
            assert_eq!(order.order_status, OrderStatus::Delivering);
            order = stack
                .cancel(&order.customer_id, &order.order_id, SETTLE)
                .await
                .unwrap();
        }
        _ => {}
    }
    let after = stack.item(&item(what)).await.unwrap().unwrap();
    let payment = match &order.payment_id {
        Some(id) => stack
            .payment(id)
            .await
            .unwrap()
            .map(|payment| payment.status),
        None => None,
    };
    let outcome = Outcome {
        status: order.order_status,
        stock_change: (
            after.available - before.available,
            after.reserved - before.reserved,
        ),
        payment,
        failure_reason: order.failure_reason.is_some(),
    };
    (order, outcome)
}

fn expected(scenario: Scenario) -> Outcome {
    let (status, stock_change, payment, failure_reason) = match scenario {
        Scenario::Delivered => (
            OrderStatus::Delivered,
            (-1, 0),
            Some(PaymentStatus::Paid),
            false,
        ),
        Scenario::Canceled => (
            OrderStatus::Canceled,
            (0, 0),
            Some(PaymentStatus::Canceled),
            false,
        ),
        Scenario::PaymentFailed => (
            OrderStatus::PaymentFailed,
            (0, 0),
            Some(PaymentStatus::Failed),
            true,
        ),
        Scenario::ItemNotAvailable => (OrderStatus::ItemNotAvailable, (0, 0), None, true),
        Scenario::UnknownCustomer | Scenario::UnroutableAddress | Scenario::TotalOverLimit => {
            (OrderStatus::Failed, (0, 0), None, true)
        }
    };
    Outcome {
        status,
        stock_change,
        payment,
        failure_reason,
    }
}

fn event_names(scenario: Scenario) -> Vec<&'static str> {
    let start = [
        "OrderCreated",
        "ItemReserved",
        "ItemDescribed",
        "CustomerDescribed",
        "DeliveryEstimated",
    ];
    let paid = [
        start.as_slice(),
        &["PaymentMade", "ItemRemoved", "DeliveryStarted"],
    ]
    .concat();
    match scenario {
        Scenario::Delivered => [
            paid.as_slice(),
            &["Delivered", "DeliveryWasDelivered", "OrderDelivered"],
        ]
        .concat(),
        Scenario::Canceled => [
            paid.as_slice(),
            &[
                "DeliveryCanceled",
                "DeliveryWasCanceled",
                "OrderCanceled",
                "ItemReturned",
                "PaymentCanceled",
            ],
        ]
        .concat(),
        Scenario::PaymentFailed => {
            [start.as_slice(), &["PaymentFailed", "ItemUnreserved"]].concat()
        }
        Scenario::ItemNotAvailable => vec!["OrderCreated", "ItemNotAvailable"],
        Scenario::UnknownCustomer => vec![
            "OrderCreated",
            "ItemReserved",
            "ItemDescribed",
            "ErrorCustomerDescribed",
            "ItemUnreserved",
        ],
        Scenario::UnroutableAddress => [
            &start[..4],
            ["ErrorDeliveryEstimated", "ItemUnreserved"].as_slice(),
        ]
        .concat(),
        Scenario::TotalOverLimit => {
            [start.as_slice(), &["ErrorPaymentMade", "ItemUnreserved"]].concat()
        }
    }
}

const SCENARIOS: [Scenario; 7] = [
    Scenario::Delivered,
    Scenario::Canceled,
    Scenario::PaymentFailed,
    Scenario::ItemNotAvailable,
    Scenario::UnknownCustomer,
    Scenario::UnroutableAddress,
    Scenario::TotalOverLimit,
];

#[tokio::test]
async fn every_branch_of_the_choreography_emits_the_specified_events_in_order() {
    let state = TempState::new("events");
    let stack = open(&state).await;
    for scenario in SCENARIOS {
        let (order, outcome) = run(&stack, Mode::Events, scenario).await;
        assert_eq!(outcome, expected(scenario), "{scenario:?}");
        let stored = stack.stored_events(&order.order_id).await.unwrap();
        let names: Vec<_> = stored
            .iter()
            .map(|event| event.detail_type.as_str())
            .collect();
        assert_eq!(names, event_names(scenario), "{scenario:?}");
    }
    assert!(stack.dead_letters(None).unwrap().is_empty());
}

#[tokio::test]
async fn every_branch_of_the_workflow_ends_as_specified() {
    let state = TempState::new("workflow");
    let stack = open(&state).await;
    for scenario in SCENARIOS {
        let (order, outcome) = run(&stack, Mode::Workflow, scenario).await;
        assert_eq!(outcome, expected(scenario), "{scenario:?}");
        let history = stack.execution_history(&order.order_id).unwrap();
        let last = history.last().map(|event| event.event_type.as_str());
        let succeeded = matches!(scenario, Scenario::Delivered | Scenario::Canceled);
        assert_eq!(
            last,
            Some(if succeeded {
                "ExecutionSucceeded"
            } else {
                "ExecutionFailed"
            })
        );
        // The workflow publishes no choreography events.
        assert!(
            stack
                .stored_events(&order.order_id)
                .await
                .unwrap()
                .is_empty(),
            "{scenario:?}"
        );
    }
}

#[tokio::test]
async fn both_modes_end_in_the_same_state_for_every_scenario() {
    let state = TempState::new("parity");
    let stack = open(&state).await;
    for scenario in SCENARIOS {
        let (_, events) = run(&stack, Mode::Events, scenario).await;
        let (_, workflow) = run(&stack, Mode::Workflow, scenario).await;
        assert_eq!(events, workflow, "{scenario:?}");
    }
}

#[tokio::test]
async fn delivering_every_event_twice_ends_in_the_same_states() {
    let state = TempState::new("twice");
    let stack = LocalStack::open(LocalOptions {
        duplicate_deliveries: true,
        ..state.options()
    })
    .unwrap();
    stack.seed(&data(), true).await.unwrap();
    for scenario in SCENARIOS {
        let (order, outcome) = run(&stack, Mode::Events, scenario).await;
        assert_eq!(outcome, expected(scenario), "{scenario:?}");
        let stored = stack.stored_events(&order.order_id).await.unwrap();
        let names: Vec<_> = stored
            .iter()
            .map(|event| event.detail_type.as_str())
            .collect();
        assert_eq!(
            names,
            event_names(scenario),
            "{scenario:?}: every event stored once"
        );
    }
    assert!(stack.dead_letters(None).unwrap().is_empty());
}

#[tokio::test]
async fn a_waiting_workflow_order_survives_the_process_and_is_delivered_later() {
    let state = TempState::new("restart");
    let order = {
        let stack = open(&state).await;
        stack.set_fail_probability(0.0).unwrap();
        let order = stack
            .create_order(
                Mode::Workflow,
                &customer("customer-3"),
                &item("item-2"),
                SETTLE,
            )
            .await
            .unwrap();
        assert_eq!(order.order_status, OrderStatus::Delivering);
        order
    };
    let reopened = LocalStack::open(state.options()).unwrap();
    let delivered = reopened
        .deliver(&order.customer_id, &order.order_id, SETTLE)
        .await
        .unwrap();
    assert_eq!(delivered.order_status, OrderStatus::Delivered);
    let history = reopened.execution_history(&order.order_id).unwrap();
    assert_eq!(
        history.last().map(|event| event.event_type.as_str()),
        Some("ExecutionSucceeded")
    );
}

#[tokio::test]
async fn delivering_an_order_that_is_not_in_delivery_is_refused_and_changes_nothing() {
    let state = TempState::new("refused");
    let stack = open(&state).await;
    stack.set_fail_probability(1.0).unwrap();
    for mode in [Mode::Events, Mode::Workflow] {
        let order = stack
            .create_order(mode, &customer("customer-1"), &item("item-3"), SETTLE)
            .await
            .unwrap();
        let before = stack.item(&item("item-3")).await.unwrap();
        let err = stack
            .deliver(&order.customer_id, &order.order_id, SETTLE)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not DELIVERING"), "{err}");
        let after = stack
            .describe_order(&order.customer_id, &order.order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.order_status, OrderStatus::PaymentFailed);
        assert_eq!(stack.item(&item("item-3")).await.unwrap(), before);
    }
}

#[tokio::test]
async fn concurrent_orders_never_oversell() {
    let state = TempState::new("oversell");
    let stack = open(&state).await;
    stack.set_fail_probability(0.0).unwrap();
    // item-2 has 5 in stock; 12 orders race for it, in both modes at once.
    let orders = (0..12).map(|index| {
        let stack = stack.clone();
        let mode = if index % 2 == 0 {
            Mode::Events
        } else {
            Mode::Workflow
        };
        tokio::spawn(async move {
            stack
                .create_order(mode, &customer("customer-1"), &item("item-2"), SETTLE)
                .await
        })
    });
    let mut statuses = Vec::new();
    for order in orders {
        statuses.push(order.await.unwrap().unwrap().order_status);
    }
    let delivering = statuses
        .iter()
        .filter(|status| **status == OrderStatus::Delivering)
        .count();
    let refused = statuses
        .iter()
        .filter(|status| **status == OrderStatus::ItemNotAvailable)
        .count();
    assert_eq!((delivering, refused), (5, 7), "{statuses:?}");
    let stock = stack.item(&item("item-2")).await.unwrap().unwrap();
    assert_eq!((stock.available, stock.reserved), (0, 0));
}

/// Makes every payment fail as a store that is down fails (transiently), through the
/// state file itself, until the returned guard is dropped.
struct PaymentsDown(rusqlite::Connection);

impl PaymentsDown {
    fn new(state: &TempState) -> Self {
        let db = rusqlite::Connection::open(state.0.join(STATE_FILE)).unwrap();
        db.execute_batch(
            "CREATE TRIGGER payments_down BEFORE INSERT ON payments
             BEGIN SELECT RAISE(ABORT, 'payments are down'); END;",
        )
        .unwrap();
        Self(db)
    }
}

impl Drop for PaymentsDown {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("DROP TRIGGER payments_down");
    }
}

#[tokio::test]
async fn an_order_stuck_past_its_deadline_is_compensated_in_both_modes() {
    let state = TempState::new("deadline");
    let stack = LocalStack::open(LocalOptions {
        order_deadline: Some(Duration::from_secs(1)),
        ..state.options()
    })
    .unwrap();
    stack.seed(&data(), true).await.unwrap();
    stack.set_fail_probability(0.0).unwrap();
    let _down = PaymentsDown::new(&state);
    let before = stack.item(&item("item-1")).await.unwrap().unwrap();

    // The choreography: the payment is retried, then dead-lettered; the order waits
    // RESERVED until its deadline, then is compensated.
    let stuck = stack
        .create_order(
            Mode::Events,
            &customer("customer-2"),
            &item("item-1"),
            Duration::from_millis(500),
        )
        .await;
    assert!(stuck.is_err(), "{stuck:?}");
    let letters = stack.dead_letters(None).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack.drain().await.unwrap();
    let order_id = &letters[0].event["detail"]["orderId"];
    let order = stack
        .describe_order(
            &customer("customer-2"),
            &ewf_domain::OrderId::parse(order_id.as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.order_status, OrderStatus::Failed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("timed out in payment")
    );
    let names: Vec<_> = stack
        .stored_events(&order.order_id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.detail_type)
        .collect();
    assert_eq!(
        names[names.len() - 3..],
        ["OrderTimedOut", "ItemReturned", "PaymentCanceled"]
    );
    let after = stack.item(&item("item-1")).await.unwrap().unwrap();
    assert_eq!(
        (after.available, after.reserved),
        (before.available, before.reserved)
    );

    // The workflow: the payment task runs out of retries and its Catch compensates.
    let order = stack
        .create_order(
            Mode::Workflow,
            &customer("customer-2"),
            &item("item-1"),
            SETTLE,
        )
        .await
        .unwrap();
    assert_eq!(order.order_status, OrderStatus::Failed);
    assert!(order.failure_reason.unwrap().contains("payments are down"));
    let after = stack.item(&item("item-1")).await.unwrap().unwrap();
    assert_eq!(
        (after.available, after.reserved),
        (before.available, before.reserved)
    );
}

#[tokio::test]
async fn an_item_deleted_mid_saga_fails_the_order_alike_in_both_modes() {
    let state = TempState::new("vanishing");
    let stack = open(&state).await;
    stack.set_fail_probability(0.0).unwrap();
    // The item disappears (deleted by hand) right after each reservation of it.
    let db = rusqlite::Connection::open(state.0.join(STATE_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER item_vanishes AFTER INSERT ON ledger
         WHEN NEW.step_key LIKE 'Inventory#%#reserve' AND NEW.outcome NOT LIKE '%Err%'
         BEGIN DELETE FROM items WHERE item_id = 'item-2'; END;",
    )
    .unwrap();
    let mut ended = Vec::new();
    for mode in [Mode::Events, Mode::Workflow] {
        // Seeded again: the previous run deleted it.
        stack.seed(&data(), true).await.unwrap();
        let order = stack
            .create_order(mode, &customer("customer-2"), &item("item-2"), SETTLE)
            .await
            .unwrap();
        // A missing item is one not available, whichever step finds it gone.
        assert_eq!(order.order_status, OrderStatus::ItemNotAvailable, "{mode}");
        assert_eq!(order.payment_id, None, "{mode}: nothing was paid");
        ended.push((order.order_status, order.failure_reason));
    }
    assert_eq!(ended[0], ended[1]);
    assert_eq!(ended[0].1.as_deref(), Some("Item item-2 not found"));
    assert!(stack.dead_letters(None).unwrap().is_empty());
}

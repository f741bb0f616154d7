//! What one order costs in work on the local stack, pinned: a change of a saga that
//! changes its cost (a state, an event, a read or a write more or less) fails here,
//! with the new figures to judge and to write down.

use ewf_domain::sample::SampleData;
use ewf_domain::work::Work;
use ewf_domain::{CustomerId, ItemId, Mode, OrderStatus};
use ewf_local::{LocalOptions, LocalStack};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// The work of one delivered order of `mode` (or, with `cancel`, one canceled), with
/// its state transitions, and the billed duration left out (it is measured time).
async fn one_order(mode: Mode, cancel: bool) -> Work {
    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::open(LocalOptions {
        state_dir: dir.path().to_path_buf(),
        rng_seed: Some(7),
        ..LocalOptions::default()
    })
    .unwrap();
    stack.seed(&SampleData::builtin(), true).await.unwrap();
    stack.set_fail_probability(0.0).unwrap();
    stack.meter().start();
    let (customer, item) = (
        CustomerId::parse("customer-1").unwrap(),
        ItemId::parse("item-1").unwrap(),
    );
    let order = stack
        .create_order(mode, &customer, &item, SETTLE)
        .await
        .unwrap();
    assert_eq!(order.order_status, OrderStatus::Delivering);
    let order = if cancel {
        stack.cancel(&customer, &order.order_id, SETTLE).await
    } else {
        stack.deliver(&customer, &order.order_id, SETTLE).await
    }
    .unwrap();
    let expected = if cancel {
        OrderStatus::Canceled
    } else {
        OrderStatus::Delivered
    };
    assert_eq!(order.order_status, expected);
    stack.drain().await.unwrap();
    let transitions = stack
        .execution_history(&order.order_id)
        .unwrap()
        .iter()
        .filter(|event| event.event_type.ends_with("StateEntered"))
        .count() as u64;
    let work = stack.meter().reading();
    assert!(work.billed_ms.unwrap() >= work.invocation_total());
    Work {
        transitions,
        billed_ms: None,
        ..work
    }
}

fn invocations(counts: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    counts
        .iter()
        .map(|(function, count)| ((*function).to_owned(), *count))
        .collect()
}

#[tokio::test]
async fn a_delivered_workflow_order() {
    let work = one_order(Mode::Workflow, false).await;
    let expected = Work {
        invocations: invocations(&[
            ("Add", 1),
            ("Customer", 1),
            ("Delivery", 4),
            ("Inventory", 3),
            ("Order", 3),
            ("Payment", 1),
        ]),
        billed_ms: None,
        transitions: 13,
        events: 0,
        deliveries: Some(0),
        read_units: Some(8),
        write_units: Some(21),
        http_requests: 1,
        rest_requests: 1,
        // 13 invocations: Lambda's records (375 bytes each), a capacity line each, and
        // the services' own lines.
        log_bytes: Some(9893),
    };
    assert_eq!(work, expected);
}

#[tokio::test]
async fn a_delivered_events_order() {
    let work = one_order(Mode::Events, false).await;
    let expected = Work {
        // Every event is stored by the event store; the order follows the status events.
        invocations: invocations(&[
            ("Customer", 1),
            ("Delivery", 3),
            ("EventStore", 11),
            ("Inventory", 3),
            ("Order", 6),
            ("Payment", 1),
        ]),
        billed_ms: None,
        transitions: 0,
        // The eight of the saga, Logistics' Delivered, DeliveryWasDelivered, OrderDelivered.
        events: 11,
        deliveries: Some(24),
        read_units: Some(14),
        // Each event stored with its content's marker in a transaction: 4 units.
        write_units: Some(79),
        http_requests: 1,
        rest_requests: 0,
        log_bytes: Some(28536),
    };
    assert_eq!(work, expected);
}

#[tokio::test]
async fn a_canceled_workflow_order() {
    let work = one_order(Mode::Workflow, true).await;
    let expected = Work {
        // Two more states (return the item, refund the payment) than a delivery.
        invocations: invocations(&[
            ("Add", 1),
            ("Customer", 1),
            ("Delivery", 4),
            ("Inventory", 4),
            ("Order", 3),
            ("Payment", 2),
        ]),
        billed_ms: None,
        transitions: 15,
        events: 0,
        deliveries: Some(0),
        read_units: Some(14),
        write_units: Some(31),
        http_requests: 1,
        rest_requests: 1,
        log_bytes: Some(11949),
    };
    assert_eq!(work, expected);
}

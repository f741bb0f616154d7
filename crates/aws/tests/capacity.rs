//! The DynamoDB capacity the adapters are told of with each answer (moto reports it as
//! DynamoDB does): summed until taken, which the runtime does after each invocation.
//! A test binary of its own: the counters are the process's.

mod support;

use ewf_aws::take_consumed_capacity;
use ewf_domain::ports::InventoryStore;
use ewf_domain::{Item, ItemId, Money, StockMove, WriteError};
use support::Fixture;

#[tokio::test]
async fn the_capacity_of_reads_writes_and_refused_writes_is_taken_once() {
    let fixture = Fixture::new().await;
    let inventory = fixture.inventory().await;
    let item = Item {
        item_id: ItemId::parse("item-1").unwrap(),
        name: "Big Smartphone".into(),
        description: "A phone, but big".into(),
        price: "399.90".parse::<Money>().unwrap(),
        available: 0,
        reserved: 0,
    };
    take_consumed_capacity();

    inventory.put(&item, true).await.unwrap();
    assert_eq!(
        inventory.get(&item.item_id).await.unwrap(),
        Some(item.clone())
    );
    let (read, write) = take_consumed_capacity();
    // DynamoDB bills a consistent read a unit; moto reports half of one.
    assert!(read >= 0.5, "a read is counted: {read}");
    assert!(write >= 1.0, "a write is a unit at least: {write}");
    assert_eq!(take_consumed_capacity(), (0.0, 0.0), "taken once");

    // Nothing in stock: the reservation's conditional write is refused, and billed.
    assert_eq!(
        inventory
            .apply(&item.item_id, StockMove::Reserve, None)
            .await,
        Err(WriteError::ConditionFailed)
    );
    assert_eq!(take_consumed_capacity(), (0.0, 1.0));
}

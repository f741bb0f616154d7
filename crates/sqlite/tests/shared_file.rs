//! Several connections (as several `ewf` processes would) on one database file.

use ewf_domain::ports::Step;
use ewf_domain::{Item, ItemId, Money, StockMove, WriteError};
use ewf_sqlite::SqliteStores;
use std::path::PathBuf;

/// A directory of its own under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let unique = format!(
            "ewf-sqlite-{name}-{}-{}",
            std::process::id(),
            nanos.as_nanos()
        );
        Self(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn item(available: i64) -> Item {
    Item {
        item_id: ItemId::parse("item-1").unwrap(),
        name: "Big Smartphone".into(),
        description: String::new(),
        price: Money::new(39_999, 2),
        available,
        reserved: 0,
    }
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn fifty_concurrent_reservations_of_ten_in_stock_reserve_exactly_ten() {
    const WRITERS: usize = 50;
    let dir = TempDir::new("reserve");
    let path = dir.0.join("state").join("ewf.db");
    block_on(
        SqliteStores::open(&path)
            .unwrap()
            .inventory()
            .put(&item(10), true),
    )
    .unwrap();

    // Every writer has its own connection, as a separate process would, and all of
    // them reserve at once.
    let start = std::sync::Barrier::new(WRITERS);
    let outcomes: Vec<Result<Item, WriteError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (path, start) = (&path, &start);
                scope.spawn(move || {
                    let inventory = SqliteStores::open(path).unwrap().inventory();
                    let id = item(0).item_id;
                    let step = Step {
                        key: format!("Inventory#order-{writer}#reserve"),
                        outcome: serde_json::json!("reserved"),
                    };
                    start.wait();
                    block_on(inventory.apply(&id, StockMove::Reserve, Some(&step)))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .collect()
    });

    assert_eq!(outcomes.len(), WRITERS);
    let reserved: Vec<&Item> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .collect();
    assert_eq!(reserved.len(), 10);
    assert!(
        reserved
            .iter()
            .all(|item| item.available >= 0 && item.available + item.reserved == 10)
    );
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome.is_ok() || outcome == &Err(WriteError::ConditionFailed)),
        "{outcomes:?}"
    );

    let stores = SqliteStores::open(&path).unwrap();
    let stored = block_on(stores.inventory().get(&item(0).item_id))
        .unwrap()
        .unwrap();
    assert_eq!((stored.available, stored.reserved), (0, 10));
    let ledger = stores.ledger();
    let recorded = (0..WRITERS)
        .map(|writer| format!("Inventory#order-{writer}#reserve"))
        .filter(|key| block_on(ledger.recorded(key)).unwrap().is_some())
        .count();
    assert_eq!(recorded, 10);
}

#[test]
fn a_reopened_file_keeps_its_data_and_connections_see_each_other() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("ewf.db");
    let first = SqliteStores::open(&path).unwrap();
    let second = SqliteStores::open(&path).unwrap();
    assert!(block_on(first.inventory().put(&item(3), false)).unwrap());
    assert!(!block_on(second.inventory().put(&item(9), false)).unwrap());
    block_on(
        second
            .inventory()
            .apply(&item(0).item_id, StockMove::Reserve, None),
    )
    .unwrap();
    drop((first, second));

    let reopened = SqliteStores::open(&path).unwrap();
    let stored = block_on(reopened.inventory().get(&item(0).item_id))
        .unwrap()
        .unwrap();
    assert_eq!((stored.available, stored.reserved), (2, 1));
}

//! The DynamoDB capacity the running invocation consumed, as DynamoDB reports it with
//! every answer (`ReturnConsumedCapacity: TOTAL`). A Lambda instance runs one invocation
//! at a time, so counters of the process hold the running invocation's; the runtime
//! takes them after each invocation and logs them (`ewf compare` reads that line).

use aws_sdk_dynamodb::types::ConsumedCapacity;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// In thousandths of a unit: an eventually consistent read of a small item is half one.
static READ: AtomicU64 = AtomicU64::new(0);
static WRITE: AtomicU64 = AtomicU64::new(0);

fn add(counter: &AtomicU64, units: f64) {
    counter.fetch_add((units * 1000.0).round() as u64, Relaxed);
}

fn total<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
    consumed
        .into_iter()
        .filter_map(ConsumedCapacity::capacity_units)
        .sum()
}

pub(crate) fn read<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    add(&READ, total(consumed));
}

pub(crate) fn written<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    add(&WRITE, total(consumed));
}

/// A refused conditional write is billed, but DynamoDB reports no capacity with the
/// refusal: counted at its least, one unit an item (two in a transaction).
pub(crate) fn refused(units: u64) {
    WRITE.fetch_add(units * 1000, Relaxed);
}

/// The read and write units consumed since the last call.
pub fn take() -> (f64, f64) {
    let units = |counter: &AtomicU64| counter.swap(0, Relaxed) as f64 / 1000.0;
    (units(&READ), units(&WRITE))
}

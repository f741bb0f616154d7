//! Counting the work the local stack does, on its real paths: the function invoker, the
//! bus, the API entry points, and the services' stores (wrapped here, so every read
//! and write a service makes is counted with the size of its item, as DynamoDB would
//! bill it: see `ewf_domain::work`). Counting is off until [`Meter::start`]: then it
//! costs a few relaxed atomic additions, and a JSON rendering of each stored item.

use async_trait::async_trait;
use ewf_domain::events::FunctionName;
use ewf_domain::logs;
use ewf_domain::ports::{
    CustomerStore, DeliveryStore, EventStore, InventoryStore, Ledger, OrderStore, PaymentStore,
    Step,
};
use ewf_domain::work::{Work, item_size, read_units, write_units};
use ewf_domain::{
    Customer, CustomerId, Delivery, DeliveryStatus, Item, ItemId, Order, OrderId, OrderStatus,
    OrderUpdate, Payment, PaymentId, StockMove, StoreError, StoredEvent, Timestamp, WriteError,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Dispatch;
use tracing::instrument::{Instrument, WithSubscriber};
use tracing_subscriber::fmt::MakeWriter;

/// Which API an order's request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// The HTTP API (every GET route).
    Http,
    /// The REST API (`POST /order`, the workflow start).
    Rest,
}

/// The stack's counters, shared by everything that counts.
#[derive(Default)]
pub struct Meter {
    on: AtomicBool,
    /// Work not caused by any order (the deadline sweep) is done with counting suspended.
    suspended: AtomicUsize,
    invocations: [AtomicU64; FunctionName::ALL.len()],
    billed_ms: AtomicU64,
    events: AtomicU64,
    deliveries: AtomicU64,
    read_units: AtomicU64,
    write_units: AtomicU64,
    http_requests: AtomicU64,
    rest_requests: AtomicU64,
    log_bytes: LogBytes,
    /// The functions' log format writing to `log_bytes`, made when first needed.
    logs: OnceLock<Dispatch>,
}

/// A log writer that keeps only the count of the bytes written to it.
#[derive(Clone, Default)]
struct LogBytes(Arc<AtomicU64>);

impl io::Write for LogBytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'writer> MakeWriter<'writer> for LogBytes {
    type Writer = LogBytes;

    fn make_writer(&'writer self) -> LogBytes {
        self.clone()
    }
}

/// Stand for the request id and the X-Ray trace header Lambda gives each invocation
/// (the runtime puts both on the invocation's span): of the same length.
const REQUEST_ID: &str = "00000000-0000-0000-0000-000000000000";
const TRACE_ID: &str = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0";

/// Counting resumes when this is dropped.
pub struct Suspended<'a>(&'a Meter);

impl Drop for Suspended<'_> {
    fn drop(&mut self) {
        self.0.suspended.fetch_sub(1, Relaxed);
    }
}

impl Meter {
    /// Counts from now on.
    pub fn start(&self) {
        self.on.store(true, Relaxed);
    }

    fn counting(&self) -> bool {
        self.on.load(Relaxed) && self.suspended.load(Relaxed) == 0
    }

    /// Stops counting until the guard is dropped.
    pub fn suspend(&self) -> Suspended<'_> {
        self.suspended.fetch_add(1, Relaxed);
        Suspended(self)
    }

    /// The counts so far (the stack counts no state transitions: they are in the
    /// executions' histories).
    pub fn reading(&self) -> Work {
        let invocations = FunctionName::ALL
            .iter()
            .zip(&self.invocations)
            .map(|(name, count)| (name.to_string(), count.load(Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        Work {
            invocations,
            billed_ms: Some(self.billed_ms.load(Relaxed)),
            transitions: 0,
            events: self.events.load(Relaxed),
            deliveries: Some(self.deliveries.load(Relaxed)),
            read_units: Some(self.read_units.load(Relaxed)),
            write_units: Some(self.write_units.load(Relaxed)),
            http_requests: self.http_requests.load(Relaxed),
            rest_requests: self.rest_requests.load(Relaxed),
            log_bytes: Some(self.log_bytes.0.load(Relaxed)),
        }
    }

    /// Whether to time an invocation: only while counting.
    pub fn timing(&self) -> bool {
        self.counting()
    }

    /// A function ran for `handler`: billed as Lambda bills, rounded up to the ms.
    pub fn invoked(&self, function: FunctionName, handler: Duration) {
        if !self.counting() {
            return;
        }
        if let Some(index) = FunctionName::ALL.iter().position(|name| *name == function) {
            self.invocations[index].fetch_add(1, Relaxed);
        }
        self.log_bytes
            .0
            .fetch_add(logs::PLATFORM_BYTES_PER_INVOCATION, Relaxed);
        let billed = handler.as_micros().div_ceil(1000).max(1);
        self.billed_ms
            .fetch_add(u64::try_from(billed).unwrap_or(u64::MAX), Relaxed);
    }

    /// The invocation with its log lines counted: written as the function writes them
    /// on Lambda, in the functions' format and level, inside the runtime's span, and
    /// ending with the capacity it consumed.
    pub fn logged<'a, F>(&'a self, invocation: F) -> impl Future<Output = F::Output> + 'a
    where
        F: Future + 'a,
    {
        let dispatch = self.logs.get_or_init(|| {
            Dispatch::new(logs::json_lines(logs::filter(None), self.log_bytes.clone()))
        });
        let span = tracing::dispatcher::with_default(dispatch, || {
            tracing::info_span!(
                logs::INVOCATION_SPAN,
                requestId = REQUEST_ID,
                xrayTraceId = TRACE_ID
            )
        });
        let units = || {
            (
                self.read_units.load(Relaxed),
                self.write_units.load(Relaxed),
            )
        };
        let before = units();
        async move {
            let output = invocation.await;
            let after = units();
            logs::consumed_capacity((after.0 - before.0) as f64, (after.1 - before.1) as f64);
            output
        }
        .instrument(span)
        .with_subscriber(dispatch.clone())
    }

    pub fn published(&self, events: usize, deliveries: usize) {
        if self.counting() {
            self.events.fetch_add(events as u64, Relaxed);
            self.deliveries.fetch_add(deliveries as u64, Relaxed);
        }
    }

    pub fn request(&self, api: Api) {
        if self.counting() {
            match api {
                Api::Http => &self.http_requests,
                Api::Rest => &self.rest_requests,
            }
            .fetch_add(1, Relaxed);
        }
    }

    fn read(&self, bytes: u64) {
        self.read_units.fetch_add(read_units(bytes), Relaxed);
    }

    fn write(&self, bytes: u64, transactional: bool) {
        self.write_units
            .fetch_add(write_units(bytes, transactional), Relaxed);
    }

    /// A guarded write of an item of `bytes`, as the DynamoDB adapters make it: alone,
    /// or with its step in a transaction, after which an update reads its item back and
    /// a step found done reads the recorded outcome.
    fn guarded<T>(
        &self,
        bytes: u64,
        step: Option<&Step>,
        read_back: bool,
        result: &Result<T, WriteError>,
    ) {
        let Some(step) = step else {
            self.write(bytes, false);
            return;
        };
        self.write(bytes, true);
        self.write(step_size(step), true);
        match result {
            Ok(_) if read_back => self.read(bytes),
            Err(WriteError::AlreadyDone(_)) => self.read(step_size(step)),
            _ => {}
        }
    }
}

/// The size of a record as the DynamoDB adapters store it (0 when there is none: the
/// formulas charge a missing item one unit).
fn size(record: Option<&impl Serialize>) -> u64 {
    record.map_or(0, |record| {
        item_size(&serde_json::to_value(record).expect("store records are plain data"))
    })
}

/// A ledger entry's size: its key, its outcome as text and its expiry.
fn step_size(step: &Step) -> u64 {
    item_size(&json!({
        "stepKey": step.key,
        "outcome": step.outcome.to_string(),
        "expiresAt": 1_900_000_000,
    }))
}

/// A store or the ledger, counted.
pub struct Metered<T: ?Sized> {
    inner: Arc<T>,
    meter: Arc<Meter>,
}

impl<T: ?Sized> Metered<T> {
    pub fn new(inner: Arc<T>, meter: Arc<Meter>) -> Arc<Self> {
        Arc::new(Self { inner, meter })
    }

    fn counting(&self) -> bool {
        self.meter.counting()
    }

    /// Counts a read of what `found` holds.
    fn found<R: Serialize>(
        &self,
        found: Result<Option<R>, StoreError>,
    ) -> Result<Option<R>, StoreError> {
        if self.counting()
            && let Ok(record) = &found
        {
            self.meter.read(size(record.as_ref()));
        }
        found
    }

    /// Counts a guarded write of `record` (or, refused, of an item of unknown size).
    fn wrote<R: Serialize>(
        &self,
        record: Option<&impl Serialize>,
        step: Option<&Step>,
        read_back: bool,
        result: Result<R, WriteError>,
    ) -> Result<R, WriteError> {
        if self.counting() {
            let bytes = match (&result, record) {
                (_, Some(record)) => size(Some(record)),
                (Ok(written), None) => size(Some(written)),
                (Err(_), None) => 0,
            };
            self.meter.guarded(bytes, step, read_back, &result);
        }
        result
    }
}

#[async_trait]
impl<T: Ledger + ?Sized> Ledger for Metered<T> {
    async fn recorded(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let found = self.inner.recorded(key).await;
        if self.counting()
            && let Ok(outcome) = &found
        {
            let bytes = outcome.as_ref().map_or(0, |outcome| {
                step_size(&Step {
                    key: key.to_owned(),
                    outcome: outcome.clone(),
                })
            });
            self.meter.read(bytes);
        }
        found
    }

    async fn record(&self, step: &Step) -> Result<Option<Value>, StoreError> {
        let recorded = self.inner.record(step).await;
        if self.counting() {
            self.meter.write(step_size(step), false);
            if let Ok(Some(_)) = &recorded {
                self.meter.read(step_size(step));
            }
        }
        recorded
    }
}

#[async_trait]
impl<T: CustomerStore + ?Sized> CustomerStore for Metered<T> {
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.found(self.inner.get(id).await)
    }

    async fn put(&self, customer: &Customer) -> Result<(), StoreError> {
        let result = self.inner.put(customer).await.map_err(WriteError::Store);
        self.wrote(Some(customer), None, false, result)
            .map_err(store_error)
    }
}

/// A write error where only a store error can come out.
fn store_error(err: WriteError) -> StoreError {
    match err {
        WriteError::Store(err) => err,
        other => StoreError::new(other.to_string()),
    }
}

#[async_trait]
impl<T: InventoryStore + ?Sized> InventoryStore for Metered<T> {
    async fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        self.found(self.inner.get(id).await)
    }

    async fn put(&self, item: &Item, overwrite: bool) -> Result<bool, StoreError> {
        let result = self
            .inner
            .put(item, overwrite)
            .await
            .map_err(WriteError::Store);
        self.wrote(Some(item), None, false, result)
            .map_err(store_error)
    }

    async fn apply(
        &self,
        id: &ItemId,
        movement: StockMove,
        step: Option<&Step>,
    ) -> Result<Item, WriteError> {
        let result = self.inner.apply(id, movement, step).await;
        self.wrote(None::<&Item>, step, true, result)
    }
}

#[async_trait]
impl<T: PaymentStore + ?Sized> PaymentStore for Metered<T> {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        self.found(self.inner.get(id).await)
    }

    async fn create(&self, payment: &Payment, step: Option<&Step>) -> Result<(), WriteError> {
        let result = self.inner.create(payment, step).await;
        self.wrote(Some(payment), step, false, result)
    }

    async fn cancel(
        &self,
        id: &PaymentId,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Payment, WriteError> {
        let result = self.inner.cancel(id, now, step).await;
        self.wrote(None::<&Payment>, step, true, result)
    }
}

#[async_trait]
impl<T: DeliveryStore + ?Sized> DeliveryStore for Metered<T> {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.found(self.inner.get(customer, order).await)
    }

    async fn start(&self, delivery: &Delivery, step: Option<&Step>) -> Result<(), WriteError> {
        let result = self.inner.start(delivery, step).await;
        self.wrote(Some(delivery), step, false, result)
    }

    async fn finish(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: DeliveryStatus,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Delivery, WriteError> {
        let result = self.inner.finish(customer, order, status, now, step).await;
        self.wrote(None::<&Delivery>, step, true, result)
    }

    async fn attach_token(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        token: &str,
    ) -> Result<Delivery, WriteError> {
        let result = self.inner.attach_token(customer, order, token).await;
        self.wrote(None::<&Delivery>, None, false, result)
    }
}

#[async_trait]
impl<T: OrderStore + ?Sized> OrderStore for Metered<T> {
    async fn get(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>, StoreError> {
        self.found(self.inner.get(customer, order).await)
    }

    async fn create(&self, order: &Order) -> Result<bool, StoreError> {
        let result = self.inner.create(order).await.map_err(WriteError::Store);
        self.wrote(Some(order), None, false, result)
            .map_err(store_error)
    }

    async fn advance(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        status: OrderStatus,
        update: &OrderUpdate,
        now: Timestamp,
        step: Option<&Step>,
    ) -> Result<Order, WriteError> {
        let result = self
            .inner
            .advance(customer, order, status, update, now, step)
            .await;
        self.wrote(None::<&Order>, step, true, result)
    }

    async fn overdue(
        &self,
        created_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        // A scan, in the sweep, which is no order's work (counting is suspended then).
        let found = self.inner.overdue(created_before, limit).await;
        if self.counting()
            && let Ok(orders) = &found
        {
            self.meter
                .read(orders.iter().map(|order| size(Some(order))).sum());
        }
        found
    }
}

#[async_trait]
impl<T: EventStore + ?Sized> EventStore for Metered<T> {
    async fn append(&self, event: &StoredEvent) -> Result<bool, StoreError> {
        let result = self.inner.append(event).await;
        if self.counting() {
            // The event and its content's marker, in one transaction.
            let marker = format!("D#{}", event.digest);
            let marker = json!({ "who": marker, "timeWhat": marker, "eventId": event.event_id });
            self.meter.write(size(Some(event)), true);
            self.meter.write(item_size(&marker), true);
        }
        result
    }

    async fn for_order(&self, order_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let found = self.inner.for_order(order_id).await;
        if self.counting()
            && let Ok(events) = &found
        {
            self.meter
                .read(events.iter().map(|event| size(Some(event))).sum());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_functions_lines_are_counted_as_lambda_would_store_them() {
        let meter = Meter::default();
        meter.start();
        meter
            .logged(async {
                tracing::info!(order_id = "o-1", "order created");
                tracing::debug!("below the functions' level");
            })
            .await;
        let line = r#"{"level":"INFO","fields":{"message":"order created","order_id":"o-1"},"target":"ewf_local::metering::tests","spans":[{"requestId":"00000000-0000-0000-0000-000000000000","xrayTraceId":"Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0","name":"Lambda runtime invoke"}]}"#;
        assert_eq!(meter.reading().log_bytes, Some(line.len() as u64 + 1));
        // A reservation of a kilobyte's item: the invocation ends with its capacity.
        meter.logged(async { meter.write(1000, false) }).await;
        let capacity = r#"{"level":"INFO","fields":{"message":"consumed capacity","readUnits":0.0,"writeUnits":1.0},"target":"ewf_domain::logs","spans":[{"requestId":"00000000-0000-0000-0000-000000000000","xrayTraceId":"Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0","name":"Lambda runtime invoke"}]}"#;
        assert_eq!(
            meter.reading().log_bytes,
            Some((line.len() + capacity.len()) as u64 + 2)
        );
    }

    #[test]
    fn nothing_is_counted_before_start_or_while_suspended() {
        let meter = Meter::default();
        meter.invoked(FunctionName::Order, Duration::from_micros(10));
        assert_eq!(meter.reading().invocation_total(), 0);
        meter.start();
        meter.invoked(FunctionName::Order, Duration::from_micros(1500));
        {
            let _sweep = meter.suspend();
            meter.invoked(FunctionName::Order, Duration::from_micros(10));
            meter.published(1, 2);
        }
        meter.published(2, 6);
        let work = meter.reading();
        assert_eq!(work.invocations, [("Order".to_owned(), 1)].into());
        // 1.5 ms is billed as 2.
        assert_eq!(work.billed_ms, Some(2));
        assert_eq!((work.events, work.deliveries), (2, Some(6)));
    }
}

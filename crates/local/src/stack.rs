//! The embedded local stack: the same services, routing rules and state machine as on
//! AWS, on one machine. State lives in one SQLite file under the state directory, so one
//! `ewf` command can create an order and the next deliver it.

use crate::asl::{Executions, HistoryEvent, StateMachine};
use crate::bus::{DeadLetter, Delivery, LocalBus};
use crate::db::Db;
use crate::functions::{ExecutionCallback, Functions, Wiring};
use ewf_domain::entry::{HttpRequest, Input, Reply};
use ewf_domain::events::{BusEvent, DetailType, FunctionName, LOGISTICS_SOURCE};
use ewf_domain::ports::{Bus, Clock, Random, SeededRandom, SystemClock};
use ewf_domain::sample::SampleData;
use ewf_domain::{
    CustomerId, Item, ItemId, Mode, Order, OrderId, OrderRef, OrderStatus, Payment, PaymentId,
    ServiceError, StoreError, StoredEvent,
};
use ewf_sqlite::{SharedConnection, SqliteStores};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The state machine file, the same one the SAM template deploys.
pub const STATE_MACHINE: &str = include_str!("../../../statemachine/order-workflow.asl.json");
/// The name of the state file inside the state directory.
pub const STATE_FILE: &str = "ewf.sqlite";
/// The payment failure probability of a new stack, as in the template.
pub const DEFAULT_FAIL_PROBABILITY: f64 = 0.2;

#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    pub state_dir: PathBuf,
    /// Makes ids and payment failures reproducible.
    pub rng_seed: Option<u64>,
    /// Delivers every event twice (a test of idempotency under at-least-once delivery).
    pub duplicate_deliveries: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The request was refused: not found, conflict, bad input...
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("workflow: {0}")]
    Workflow(String),
    #[error("order {order} did not settle within {}s", .waited.as_secs())]
    NotSettled { order: OrderId, waited: Duration },
    #[error("cannot use the state directory {dir}: {source}")]
    StateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl From<crate::asl::AslError> for LocalError {
    fn from(err: crate::asl::AslError) -> Self {
        Self::Workflow(err.to_string())
    }
}

/// What `seed` did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedSummary {
    pub customers: usize,
    pub items_written: usize,
    pub items_kept: usize,
}

struct Inner {
    /// One turn at a time for work that writes: a drain's batch (one transaction for
    /// many deliveries) must not take in a caller's write that the caller then reports
    /// before the batch commits.
    turn: tokio::sync::Mutex<()>,
    connection: SharedConnection,
    db: Db,
    stores: SqliteStores,
    bus: LocalBus,
    callback: Arc<ExecutionCallback>,
    functions: RwLock<Arc<Functions>>,
    executions: Arc<Executions>,
    machine: StateMachine,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

#[derive(Clone)]
pub struct LocalStack(Arc<Inner>);

/// How long the bus waits before retrying a failed delivery (doubling each time).
const RETRY_BACKOFF: chrono::Duration = chrono::Duration::milliseconds(20);
/// Bus deliveries claimed at once, and how much one batch (one transaction) takes on
/// before it commits: bounded, so that other processes get their turn.
const CLAIM_BATCH: u32 = 64;
const BATCH_LIMIT: usize = 1024;
const BATCH_TIME: Duration = Duration::from_millis(50);
/// How long an order may take to settle, and how often to look while another drainer
/// (a task or process) holds part of its saga.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_POLL: Duration = Duration::from_millis(1);

const SETTINGS_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);";
const FAIL_PROBABILITY: &str = "PAYMENT_FAIL_PROBABILITY";

/// The state machine's `${...}` substitutions: each function ARN becomes the function's
/// name, which is how the local invoker addresses it.
pub fn substitutions() -> HashMap<String, String> {
    FunctionName::ALL
        .iter()
        .map(|name| (format!("{name}FunctionArn"), name.as_str().to_owned()))
        .collect()
}

impl LocalStack {
    pub fn open(options: LocalOptions) -> Result<Self, LocalError> {
        let dir = &options.state_dir;
        std::fs::create_dir_all(dir).map_err(|source| LocalError::StateDir {
            dir: dir.clone(),
            source,
        })?;
        let path = dir.join(STATE_FILE);
        let stores = SqliteStores::open(&path)?;
        let db = Db::new(stores.connection());
        db.execute_batch(SETTINGS_SCHEMA)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let random: Arc<dyn Random> = Arc::new(SeededRandom::new(options.rng_seed));
        let bus = LocalBus::new(
            db.clone(),
            clock.clone(),
            random.clone(),
            options.duplicate_deliveries,
        )?;
        let machine = StateMachine::parse(STATE_MACHINE, &substitutions())?;
        let executions = Arc::new(Executions::shared(stores.connection())?);
        let callback = Arc::new(ExecutionCallback(executions.clone()));
        let fail_probability = read_fail_probability(&db)?;
        let wiring = Wiring {
            stores: stores.clone(),
            bus: bus.clone(),
            callback: callback.clone(),
            clock: clock.clone(),
            random: random.clone(),
            fail_probability,
        };
        let functions = RwLock::new(Arc::new(Functions::new(&wiring)));
        Ok(Self(Arc::new(Inner {
            turn: tokio::sync::Mutex::new(()),
            connection: stores.connection(),
            db,
            stores,
            bus,
            callback,
            functions,
            executions,
            machine,
            clock,
            random,
        })))
    }

    fn functions(&self) -> Arc<Functions> {
        self.0
            .functions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Invokes a function with a raw payload (an API Gateway request, an event...).
    pub async fn invoke(
        &self,
        function: FunctionName,
        payload: Value,
    ) -> Result<Value, ewf_domain::entry::FunctionError> {
        let _turn = self.0.turn.lock().await;
        self.functions().invoke(function, payload).await
    }

    /// Calls a function through its HTTP entry point, as API Gateway would.
    pub async fn http(&self, function: FunctionName, path: &str) -> Result<Reply, ServiceError> {
        let request = HttpRequest::new("GET", path, None)?;
        let _turn = self.0.turn.lock().await;
        self.functions()
            .get(function)
            .handle(Input::Http(request))
            .await
    }

    /// Runs everything that is due: bus deliveries, and executions with something to
    /// do (a delivery's callback, a Wait or timeout that is over, a driver that died),
    /// until nothing is left. Deliveries waiting for a retry are waited for; work that
    /// another drainer holds is left to it.
    pub async fn drain(&self) -> Result<(), LocalError> {
        let functions = self.functions();
        loop {
            if self.run_batch(&functions).await? {
                continue;
            }
            match self.0.bus.next_due()? {
                Some(due) => {
                    let wait = (due - self.0.clock.now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait.max(std::time::Duration::from_millis(1))).await;
                }
                None => return Ok(()),
            }
        }
    }

    /// One turn: deliveries and executions that are due, and what they make due, in
    /// one transaction, until nothing is due or the batch is full. A saga's chain of
    /// events then commits once. False when there was nothing to do.
    async fn run_batch(&self, functions: &Functions) -> Result<bool, LocalError> {
        let _turn = self.0.turn.lock().await;
        let writes = self.0.connection.batch()?;
        let started = Instant::now();
        let mut handled = 0;
        loop {
            let claimed = self.0.bus.claim(CLAIM_BATCH)?;
            let work = if claimed.is_empty() {
                self.0
                    .executions
                    .resume_due(&self.0.machine, functions)
                    .await?
                    .len()
            } else {
                let count = claimed.len();
                self.deliver_all(functions, claimed).await?;
                count
            };
            handled += work;
            if work == 0 || handled >= BATCH_LIMIT || started.elapsed() >= BATCH_TIME {
                break;
            }
        }
        writes.finish()?;
        Ok(handled > 0)
    }

    /// Hands claimed deliveries to their functions: done, or retried later.
    async fn deliver_all(
        &self,
        functions: &Functions,
        claimed: Vec<Delivery>,
    ) -> Result<(), LocalError> {
        let mut delivered = Vec::with_capacity(claimed.len());
        for delivery in claimed {
            match functions
                .invoke(delivery.target, delivery.event.clone())
                .await
            {
                Ok(_) => delivered.push(delivery.id),
                Err(err) => {
                    tracing::warn!(target_function = %delivery.target, error = %err, "delivery failed");
                    self.0
                        .bus
                        .fail(&delivery, &err.to_string(), RETRY_BACKOFF)?;
                }
            }
        }
        Ok(self.0.bus.complete(&delivered)?)
    }

    /// Drains until the order's status satisfies `settled`, looking again shortly while
    /// another drainer holds part of its saga, for at most [`SETTLE_TIMEOUT`].
    async fn settle(
        &self,
        customer: &CustomerId,
        order_id: &OrderId,
        settled: impl Fn(OrderStatus) -> bool,
    ) -> Result<Order, LocalError> {
        let started = Instant::now();
        loop {
            self.drain().await?;
            if let Some(order) = self.describe_order(customer, order_id).await?
                && settled(order.order_status)
            {
                return Ok(order);
            }
            if started.elapsed() >= SETTLE_TIMEOUT {
                return Err(LocalError::NotSettled {
                    order: order_id.clone(),
                    waited: SETTLE_TIMEOUT,
                });
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    pub async fn seed(&self, data: &SampleData, reset: bool) -> Result<SeedSummary, LocalError> {
        let customers = self.0.stores.customers();
        for customer in &data.customers {
            customers.put(customer).await?;
        }
        let inventory = self.0.stores.inventory();
        let mut items_written = 0;
        for item in &data.items {
            if inventory.put(item, reset).await? {
                items_written += 1;
            }
        }
        Ok(SeedSummary {
            customers: data.customers.len(),
            items_written,
            items_kept: data.items.len() - items_written,
        })
    }

    /// Creates an order and runs its saga until it settles: DELIVERING, or terminal.
    pub async fn create_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
    ) -> Result<Order, LocalError> {
        self.drain().await?;
        let order_id = self.start_order(mode, customer, item).await?;
        self.settle(customer, &order_id, OrderStatus::is_settled)
            .await
    }

    /// Starts an order the way each mode's API does (the HTTP API's create route, or
    /// StartExecution named by a new order id) without waiting for it to settle.
    pub async fn start_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
    ) -> Result<OrderId, LocalError> {
        match mode {
            Mode::Events => {
                let reply = self
                    .http(
                        FunctionName::Order,
                        &format!("/order/create/{customer}/{item}"),
                    )
                    .await?;
                let order: Order = serde_json::from_value(reply.body)
                    .map_err(|err| LocalError::Workflow(format!("order reply: {err}")))?;
                Ok(order.order_id)
            }
            Mode::Workflow => {
                let order_id = OrderId::generate(self.0.clock.now(), self.0.random.id_bits());
                let input = json!({ "customerId": customer, "itemId": item });
                let _turn = self.0.turn.lock().await;
                let writes = self.0.connection.batch()?;
                self.0
                    .executions
                    .start(
                        &self.0.machine,
                        self.functions().as_ref(),
                        order_id.as_str(),
                        input,
                    )
                    .await?;
                writes.finish()?;
                Ok(order_id)
            }
        }
    }

    pub async fn describe_order(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>, LocalError> {
        Ok(self.0.stores.orders().get(customer, order).await?)
    }

    async fn require_order(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Order, LocalError> {
        self.describe_order(customer, order)
            .await?
            .ok_or_else(|| ServiceError::not_found("Order", order).into())
    }

    /// Marks an order's delivery delivered, through the channel of the order's mode.
    pub async fn deliver(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Order, LocalError> {
        self.finish_delivery(customer, order, DetailType::Delivered, "delivered")
            .await
    }

    /// Cancels an order's delivery, through the channel of the order's mode.
    pub async fn cancel(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Order, LocalError> {
        self.finish_delivery(customer, order, DetailType::DeliveryCanceled, "cancel")
            .await
    }

    /// Events mode: a Logistics event on the bus, as the partner would send it.
    /// Workflow mode: the delivery service, which resumes the waiting execution.
    async fn finish_delivery(
        &self,
        customer: &CustomerId,
        order_id: &OrderId,
        event: DetailType,
        action: &str,
    ) -> Result<Order, LocalError> {
        self.drain().await?;
        let order = self.require_order(customer, order_id).await?;
        if order.order_status != OrderStatus::Delivering {
            return Err(ServiceError::conflict(
                "OrderNotInDelivery",
                format!("order {order_id} is {}, not DELIVERING", order.order_status),
            )
            .into());
        }
        match order.mode {
            Mode::Events => {
                let detail = OrderRef {
                    customer_id: customer.clone(),
                    order_id: order_id.clone(),
                };
                self.0
                    .bus
                    .publish(&[BusEvent::from_source(LOGISTICS_SOURCE, event, &detail)])
                    .await?;
            }
            Mode::Workflow => {
                self.http(
                    FunctionName::Delivery,
                    &format!("/delivery/{action}/{customer}/{order_id}"),
                )
                .await?;
            }
        }
        self.settle(customer, order_id, OrderStatus::is_terminal)
            .await
    }

    pub fn fail_probability(&self) -> Result<f64, LocalError> {
        Ok(read_fail_probability(&self.0.db)?)
    }

    /// Sets the payment failure probability, for this process and the next ones.
    pub fn set_fail_probability(&self, probability: f64) -> Result<(), LocalError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(ServiceError::bad_input("probability", "must be between 0 and 1").into());
        }
        self.0.db.immediate(|tx| {
            tx.prepare_cached(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![FAIL_PROBABILITY, probability.to_string()])?;
            Ok(())
        })?;
        let wiring = Wiring {
            stores: self.0.stores.clone(),
            bus: self.0.bus.clone(),
            callback: self.0.callback.clone(),
            clock: self.0.clock.clone(),
            random: self.0.random.clone(),
            fail_probability: probability,
        };
        *self
            .0
            .functions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(Functions::new(&wiring));
        Ok(())
    }

    pub async fn item(&self, id: &ItemId) -> Result<Option<Item>, LocalError> {
        Ok(self.0.stores.inventory().get(id).await?)
    }

    pub async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, LocalError> {
        Ok(self.0.stores.payments().get(id).await?)
    }

    /// The events the Event Store kept for an order, in time order.
    pub async fn stored_events(&self, order: &OrderId) -> Result<Vec<StoredEvent>, LocalError> {
        Ok(self.0.stores.events().for_order(order.as_str()).await?)
    }

    /// A workflow order's execution history.
    pub fn execution_history(&self, order: &OrderId) -> Result<Vec<HistoryEvent>, LocalError> {
        Ok(self.0.executions.history(order.as_str())?)
    }

    /// Deliveries that failed every attempt.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, LocalError> {
        Ok(self.0.bus.dead_letters()?)
    }
}

fn read_fail_probability(db: &Db) -> Result<f64, StoreError> {
    let stored: Option<String> = db.read(|conn| {
        conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
            .query_row(params![FAIL_PROBABILITY], |row| row.get(0))
            .optional()
    })?;
    match stored {
        None => Ok(DEFAULT_FAIL_PROBABILITY),
        Some(text) => text.parse().map_err(|err| {
            StoreError::new(format!(
                "local state: bad {FAIL_PROBABILITY} {text:?}: {err}"
            ))
        }),
    }
}

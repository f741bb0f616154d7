//! The embedded local stack: the same services, routing rules and state machine as on
//! AWS, on one machine. State lives in one SQLite file under the state directory, so one
//! `ewf` command can create an order and the next deliver it.

use crate::asl::{ExecutionSummary, Executions, HistoryEvent, StateMachine};
use crate::bus::{DeadLetter, Delivery, LocalBus};
use crate::db::Db;
use crate::functions::{ExecutionCallback, Functions, Wiring};
use crate::metering::{Api, Meter};
use ewf_delivery::DELIVERY_FINISHED;
use ewf_domain::DeliveryOutcome as Outcome;
use ewf_domain::entry::{HttpRequest, Reply};
use ewf_domain::events::{BusEvent, DetailType, FunctionName, LOGISTICS_SOURCE};
use ewf_domain::ports::{Bus, Clock, Random};
use ewf_domain::sample::SampleData;
use ewf_domain::settings::{self, DEFAULT_FAIL_PROBABILITY, FAIL_PROBABILITY_VAR};
use ewf_domain::system::{SeededRandom, SystemClock};
use ewf_domain::{
    CustomerId, Delivery as DeliveryRecord, Item, ItemId, Mode, Order, OrderId, OrderRef,
    OrderStatus, Payment, PaymentId, ServiceError, StoreError, StoredEvent,
};
use ewf_sqlite::{Batch, SharedConnection, SqliteStores};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The state machine file, the same one the SAM template deploys.
pub const STATE_MACHINE: &str = include_str!("../../../statemachine/order-workflow.asl.json");
/// The name of the state file inside the state directory.
pub const STATE_FILE: &str = "ewf.sqlite";
/// The payment failure probability of a new stack, as in the template.

#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    pub state_dir: PathBuf,
    /// Makes ids and payment failures reproducible.
    pub rng_seed: Option<u64>,
    /// Delivers every event twice (a test of idempotency under at-least-once delivery).
    pub duplicate_deliveries: bool,
    /// How long an order of the choreography may take to settle before it is
    /// compensated; by default `ORDER_DEADLINE_SECONDS`, else 900 s.
    pub order_deadline: Option<Duration>,
    /// How long to wait for a lock another process holds on the state file (default
    /// [`ewf_sqlite::BUSY_TIMEOUT`]).
    pub busy_timeout: Option<Duration>,
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
    /// A setting from the environment is malformed.
    #[error("{0}")]
    Settings(String),
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
    /// One turn at a time for work that writes (see [`Turn`]).
    turn: tokio::sync::Mutex<()>,
    /// Orders waiting for the next turn to start them (see [`LocalStack::create_order`]).
    starts: Mutex<Vec<Start>>,
    connection: SharedConnection,
    db: Db,
    /// What the services are made of.
    wiring: Wiring,
    /// The services, and the payment failure probability they were made with.
    functions: RwLock<(f64, Arc<Functions>)>,
    executions: Arc<Executions>,
    machine: StateMachine,
    /// When this process last swept for overdue orders.
    swept: Mutex<Option<Instant>>,
}

#[derive(Clone)]
pub struct LocalStack(Arc<Inner>);

/// How long the bus waits before retrying a failed delivery (doubling each time).
const RETRY_BACKOFF: chrono::Duration = chrono::Duration::milliseconds(20);
/// How much one batch (one transaction) takes on before it commits: bounded, so that
/// other processes get their turn.
const BATCH_LIMIT: usize = 1024;
const BATCH_TIME: Duration = Duration::from_millis(50);
/// How often to look again at an order that has not settled when nothing is due here
/// (another process may be at work on it).
const SETTLE_POLL: Duration = Duration::from_millis(10);
/// How often a process sweeps for orders past their deadline.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The local state machine's name, as the template names it after its stack.
pub const MACHINE_NAME: &str = "OrderWorkflow-local";

const SETTINGS_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// The state machine's `${...}` substitutions: each function ARN becomes the function's
/// name, which is how the local invoker addresses it.
pub fn substitutions() -> HashMap<String, String> {
    FunctionName::ALL
        .iter()
        .map(|name| (format!("{name}FunctionArn"), name.as_str().to_owned()))
        .collect()
}

/// An order to start, and who waits to hear its id.
struct Start {
    mode: Mode,
    customer: CustomerId,
    item: ItemId,
    started: oneshot::Sender<Result<OrderId, LocalError>>,
}

/// One turn of the process's writes: one transaction (see
/// [`SharedConnection::batch`]), taken in turns so that a caller's write never joins
/// another's transaction and is reported before it commits. What is published in it
/// is handed to its functions within it, and what is left is stored when it commits.
/// Dropped unfinished (an error, an abandoned future), it is rolled back, as a crash
/// would roll it back: its work is done again later.
struct Turn<'a> {
    stack: &'a Inner,
    writes: Option<Batch>,
    /// The services, as the settings of this turn's transaction have them.
    functions: Arc<Functions>,
    _turn: tokio::sync::MutexGuard<'a, ()>,
}

impl<'a> Turn<'a> {
    async fn begin(stack: &'a Inner) -> Result<Self, LocalError> {
        let turn = stack.turn.lock().await;
        let writes = stack.connection.batch()?;
        Ok(Self {
            functions: stack.functions()?,
            stack,
            writes: Some(writes),
            _turn: turn,
        })
    }

    fn commit(mut self) -> Result<(), LocalError> {
        self.stack.wiring.bus.store_unstored()?;
        match self.writes.take() {
            Some(writes) => Ok(writes.finish()?),
            None => Ok(()),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.writes.take().is_some() {
            self.stack.wiring.bus.forget_unstored();
        }
    }
}

impl Inner {
    /// The services, made again if another process changed the failure probability.
    fn functions(&self) -> Result<Arc<Functions>, LocalError> {
        let probability = read_fail_probability(&self.db)?;
        let mut functions = self
            .functions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if functions.0 != probability {
            let wiring = Wiring {
                fail_probability: probability,
                ..self.wiring.clone()
            };
            *functions = (probability, Arc::new(Functions::new(&wiring)));
        }
        Ok(functions.1.clone())
    }
}

impl LocalStack {
    pub fn open(options: LocalOptions) -> Result<Self, LocalError> {
        let dir = &options.state_dir;
        std::fs::create_dir_all(dir).map_err(|source| LocalError::StateDir {
            dir: dir.clone(),
            source,
        })?;
        let path = dir.join(STATE_FILE);
        let stores = SqliteStores::open_waiting(
            &path,
            options.busy_timeout.unwrap_or(ewf_sqlite::BUSY_TIMEOUT),
        )?;
        let db = Db::new(stores.connection());
        db.execute_batch(SETTINGS_SCHEMA)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let random: Arc<dyn Random> = Arc::new(SeededRandom::new(options.rng_seed));
        let meter = Arc::new(Meter::default());
        let bus = LocalBus::new(
            db.clone(),
            clock.clone(),
            random.clone(),
            options.duplicate_deliveries,
        )?
        .metered(meter.clone());
        let machine = StateMachine::parse(STATE_MACHINE, &substitutions())?.named(MACHINE_NAME);
        let executions = Arc::new(Executions::shared(stores.connection())?);
        let wiring = Wiring {
            stores,
            bus,
            callback: Arc::new(ExecutionCallback(executions.clone())),
            clock,
            random,
            fail_probability: read_fail_probability(&db)?,
            order_deadline: match options.order_deadline {
                Some(deadline) => deadline,
                None => settings::order_deadline_from_env().map_err(LocalError::Settings)?,
            },
            meter,
        };
        Ok(Self(Arc::new(Inner {
            turn: tokio::sync::Mutex::new(()),
            starts: Mutex::default(),
            connection: wiring.stores.connection(),
            db,
            functions: RwLock::new((wiring.fail_probability, Arc::new(Functions::new(&wiring)))),
            wiring,
            executions,
            machine,
            swept: Mutex::default(),
        })))
    }

    /// What counts the work of the services (off until started).
    pub fn meter(&self) -> &Meter {
        &self.0.wiring.meter
    }

    /// Invokes a function with a raw payload (an API Gateway request, an event...), in
    /// a turn of its own: its writes and what it publishes commit together.
    pub async fn invoke(
        &self,
        function: FunctionName,
        payload: Value,
    ) -> Result<Value, ewf_domain::entry::FunctionError> {
        let unavailable = |err: LocalError| {
            ewf_domain::entry::FunctionError::from(&ServiceError::Unavailable(err.to_string()))
        };
        let turn = Turn::begin(&self.0).await.map_err(unavailable)?;
        let result = turn.functions.invoke(function, payload).await;
        turn.commit().map_err(unavailable)?;
        result
    }

    /// Calls a function through its HTTP entry point, as API Gateway would, in a turn of
    /// its own.
    pub async fn http(&self, function: FunctionName, path: &str) -> Result<Reply, LocalError> {
        let turn = Turn::begin(&self.0).await?;
        let reply = Self::http_in(&turn, function, path).await;
        turn.commit()?;
        reply
    }

    async fn http_in(
        turn: &Turn<'_>,
        function: FunctionName,
        path: &str,
    ) -> Result<Reply, LocalError> {
        let request = HttpRequest::new("GET", path, None)?;
        Ok(turn.functions.http(function, request).await?)
    }

    /// Runs everything that is due now: bus deliveries, and executions with something
    /// to do (a new execution, a delivery's callback, a retry, a Wait or a timeout that
    /// is over), and what they make due, until nothing is left.
    pub async fn drain(&self) -> Result<(), LocalError> {
        while self.run_batch().await? {}
        Ok(())
    }

    /// One turn: the orders waiting to be started, then [`LocalStack::run_due`]. The
    /// orders hear their ids once the turn has committed (if it fails, they hear
    /// nothing, and their creators fail). False when there was nothing to do.
    async fn run_batch(&self) -> Result<bool, LocalError> {
        let turn = Turn::begin(&self.0).await?;
        let starts =
            std::mem::take(&mut *self.0.starts.lock().unwrap_or_else(PoisonError::into_inner));
        let mut started = Vec::with_capacity(starts.len());
        for start in starts {
            let order = self
                .start_in(&turn, start.mode, &start.customer, &start.item)
                .await;
            started.push((start.started, order));
        }
        self.sweep_in(&turn).await;
        let handled = self.run_due(&turn).await? + started.len();
        turn.commit()?;
        for (waiting, order) in started {
            // A creator that gave up no longer listens; its order goes on all the same.
            let _ = waiting.send(order);
        }
        Ok(handled > 0)
    }

    /// The schedule of the orders' deadlines, as a scheduled rule runs it on AWS: at
    /// most once per [`SWEEP_INTERVAL`] in a process, the order service times out the
    /// orders past their deadline. A failure is logged; the next sweep tries again.
    async fn sweep_in(&self, turn: &Turn<'_>) {
        {
            let mut swept = self.0.swept.lock().unwrap_or_else(PoisonError::into_inner);
            if swept.is_some_and(|at| at.elapsed() < SWEEP_INTERVAL) {
                return;
            }
            *swept = Some(Instant::now());
        }
        // A fixed cost of the stack, not of any order.
        let _uncounted = self.0.wiring.meter.suspend();
        let schedule = self.0.wiring.bus.scheduled_event();
        if let Err(err) = turn.functions.invoke(FunctionName::Order, schedule).await {
            tracing::warn!(error = %err, "the sweep of overdue orders failed");
        }
    }

    /// Runs the deliveries and executions that are due, and what they make due, in the
    /// turn, until nothing is due or the batch is full: a saga's chain of events then
    /// commits once. How much was done.
    async fn run_due(&self, turn: &Turn<'_>) -> Result<usize, LocalError> {
        let started = Instant::now();
        let mut handled = 0;
        loop {
            let claimed = self.0.wiring.bus.claim()?;
            let work = if claimed.is_empty() {
                self.0
                    .executions
                    .resume_due(&self.0.machine, turn.functions.as_ref())
                    .await?
                    .len()
            } else {
                let count = claimed.len();
                self.deliver_all(&turn.functions, claimed).await?;
                count
            };
            handled += work;
            if work == 0 || handled >= BATCH_LIMIT || started.elapsed() >= BATCH_TIME {
                return Ok(handled);
            }
        }
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
                Ok(_) => delivered.push(delivery),
                Err(err) => {
                    tracing::warn!(target_function = %delivery.target, error = %err, "delivery failed");
                    self.0
                        .wiring
                        .bus
                        .fail(&delivery, &err.to_string(), RETRY_BACKOFF)?;
                }
            }
        }
        Ok(self.0.wiring.bus.complete(&delivered)?)
    }

    /// Runs what is due until the order's status satisfies `settled`, waiting for the
    /// next retry or wake-up when nothing is due, for at most `timeout`.
    async fn settle(
        &self,
        customer: &CustomerId,
        order_id: &OrderId,
        settled: impl Fn(OrderStatus) -> bool,
        timeout: Duration,
    ) -> Result<Order, LocalError> {
        let started = Instant::now();
        loop {
            if let Some(order) = self.describe_order(customer, order_id).await?
                && settled(order.order_status)
            {
                return Ok(order);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(LocalError::NotSettled {
                    order: order_id.clone(),
                    waited: timeout,
                });
            }
            if !self.run_batch().await? {
                tokio::time::sleep(self.until_due()?.min(timeout - waited)).await;
            }
        }
    }

    /// How long until something falls due here (a bus retry, an execution's retry,
    /// Wait or deadline), looking again after [`SETTLE_POLL`] at the latest.
    fn until_due(&self) -> Result<Duration, LocalError> {
        let next = [
            self.0.wiring.bus.next_due()?,
            self.0.executions.next_wake()?,
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = next.map_or(SETTLE_POLL, |next| {
            (next - self.0.wiring.clock.now())
                .to_std()
                .unwrap_or_default()
        });
        Ok(wait.min(SETTLE_POLL))
    }

    pub async fn seed(&self, data: &SampleData, reset: bool) -> Result<SeedSummary, LocalError> {
        let customers = self.0.wiring.stores.customers();
        for customer in &data.customers {
            customers.put(customer).await?;
        }
        let inventory = self.0.wiring.stores.inventory();
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

    /// Creates an order and runs its saga until it settles (DELIVERING, or terminal),
    /// for at most `timeout`.
    pub async fn create_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
        timeout: Duration,
    ) -> Result<Order, LocalError> {
        // The next turn starts the order, with every other one waiting to start, and
        // runs their sagas on: orders created at the same time commit together.
        let (started, order_id) = oneshot::channel();
        self.0
            .starts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Start {
                mode,
                customer: customer.clone(),
                item: item.clone(),
                started,
            });
        // Let the other creators that are ready queue their orders too, then take a
        // turn unless one has already started this order.
        tokio::task::yield_now().await;
        if order_id.is_empty() {
            self.run_batch().await?;
        }
        let order_id = order_id.await.map_err(|_| {
            LocalError::Workflow("the turn that was to start the order failed; retry".into())
        })??;
        self.settle(customer, &order_id, OrderStatus::is_settled, timeout)
            .await
    }

    /// Starts an order the way each mode's API does (the HTTP API's create route, or
    /// StartExecution named by a new order id) without waiting for it to settle: the
    /// next drain runs it.
    pub async fn start_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
    ) -> Result<OrderId, LocalError> {
        let turn = Turn::begin(&self.0).await?;
        let order_id = self.start_in(&turn, mode, customer, item).await?;
        turn.commit()?;
        Ok(order_id)
    }

    async fn start_in(
        &self,
        turn: &Turn<'_>,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
    ) -> Result<OrderId, LocalError> {
        match mode {
            Mode::Events => {
                let path = format!("/order/create/{customer}/{item}");
                let reply = Self::http_in(turn, FunctionName::Order, &path).await?;
                let order: Order = serde_json::from_value(reply.body)
                    .map_err(|err| LocalError::Workflow(format!("order reply: {err}")))?;
                Ok(order.order_id)
            }
            Mode::Workflow => {
                let wiring = &self.0.wiring;
                // StartExecution behind the REST API's POST /order.
                wiring.meter.request(Api::Rest);
                let order_id = OrderId::generate(wiring.clock.now(), wiring.random.id_bits());
                let input = json!({ "customerId": customer, "itemId": item });
                self.0
                    .executions
                    .submit(&self.0.machine, order_id.as_str(), input)?;
                Ok(order_id)
            }
        }
    }

    pub async fn describe_order(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>, LocalError> {
        Ok(self.0.wiring.stores.orders().get(customer, order).await?)
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

    /// Marks an order's delivery delivered, through the channel of the order's mode,
    /// and runs the saga until the order is final, for at most `timeout`. Refused unless
    /// the order is DELIVERING. A cancellation racing it may win: the order is then
    /// returned canceled (`ewf deliver` tells the two apart from the delivery record).
    pub async fn deliver(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        timeout: Duration,
    ) -> Result<Order, LocalError> {
        self.finish_delivery(customer, order, Outcome::Delivered, timeout)
            .await
    }

    /// Cancels an order's delivery, as [`LocalStack::deliver`] delivers it.
    pub async fn cancel(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        timeout: Duration,
    ) -> Result<Order, LocalError> {
        self.finish_delivery(customer, order, Outcome::Canceled, timeout)
            .await
    }

    async fn finish_delivery(
        &self,
        customer: &CustomerId,
        order_id: &OrderId,
        outcome: Outcome,
        timeout: Duration,
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
        self.report_delivery(&order, outcome).await?;
        self.settle_final(customer, order_id, timeout).await
    }

    /// Reports how an order's delivery ended through
    /// the channel of the order's mode, and runs the saga on in the same turn. Events
    /// mode: a Logistics event on the bus, as the partner would send it. Workflow mode:
    /// the delivery service, which resumes the waiting execution. A delivery that has
    /// already ended keeps its outcome (its conditional write is the arbiter); that is
    /// not an error here: the delivery record says who won.
    pub async fn report_delivery(&self, order: &Order, outcome: Outcome) -> Result<(), LocalError> {
        let (event, action) = match outcome {
            Outcome::Delivered => (DetailType::Delivered, "delivered"),
            Outcome::Canceled => (DetailType::DeliveryCanceled, "cancel"),
        };
        let (customer, order_id) = (&order.customer_id, &order.order_id);
        // As for a new order, the saga runs on in the turn that reports the outcome.
        let turn = Turn::begin(&self.0).await?;
        match order.mode {
            Mode::Events => {
                let detail = OrderRef {
                    customer_id: customer.clone(),
                    order_id: order_id.clone(),
                };
                let report = BusEvent::from_source(LOGISTICS_SOURCE, event, &detail);
                self.0.wiring.bus.publish(&[report]).await?;
            }
            Mode::Workflow => {
                let path = format!("/delivery/{action}/{customer}/{order_id}");
                match Self::http_in(&turn, FunctionName::Delivery, &path).await {
                    // Ended already: the first outcome stands.
                    Ok(_) => {}
                    Err(LocalError::Service(err)) if err.name() == DELIVERY_FINISHED => {}
                    Err(err) => return Err(err),
                }
            }
        }
        self.run_due(&turn).await?;
        turn.commit()
    }

    /// Runs the saga until the order is final, for at most `timeout`.
    pub async fn settle_final(
        &self,
        customer: &CustomerId,
        order: &OrderId,
        timeout: Duration,
    ) -> Result<Order, LocalError> {
        self.settle(customer, order, OrderStatus::is_terminal, timeout)
            .await
    }

    /// The order's delivery record, if it has one.
    pub async fn delivery(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<DeliveryRecord>, LocalError> {
        Ok(self
            .0
            .wiring
            .stores
            .deliveries()
            .get(customer, order)
            .await?)
    }

    pub fn fail_probability(&self) -> Result<f64, LocalError> {
        Ok(read_fail_probability(&self.0.db)?)
    }

    /// Sets the payment failure probability, for this process and the next ones.
    pub fn set_fail_probability(&self, probability: f64) -> Result<(), LocalError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(ServiceError::bad_input("probability", "must be between 0 and 1").into());
        }
        // Every process's next turn makes its payment service anew with it.
        self.0.db.immediate(|tx| {
            tx.prepare_cached(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![FAIL_PROBABILITY_VAR, probability.to_string()])?;
            Ok(())
        })?;
        Ok(())
    }

    pub async fn item(&self, id: &ItemId) -> Result<Option<Item>, LocalError> {
        Ok(self.0.wiring.stores.inventory().get(id).await?)
    }

    pub async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, LocalError> {
        Ok(self.0.wiring.stores.payments().get(id).await?)
    }

    /// The events the Event Store kept for an order, in time order.
    pub async fn stored_events(&self, order: &OrderId) -> Result<Vec<StoredEvent>, LocalError> {
        Ok(self
            .0
            .wiring
            .stores
            .events()
            .for_order(order.as_str())
            .await?)
    }

    /// A workflow order's execution (DescribeExecution).
    pub fn execution(&self, order: &OrderId) -> Result<Option<ExecutionSummary>, LocalError> {
        Ok(self.0.executions.describe(order.as_str())?)
    }

    /// A workflow order's execution history.
    pub fn execution_history(&self, order: &OrderId) -> Result<Vec<HistoryEvent>, LocalError> {
        Ok(self.0.executions.history(order.as_str())?)
    }

    /// Deliveries that failed every attempt, oldest first: one order's, or all.
    pub fn dead_letters(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>, LocalError> {
        Ok(self.0.wiring.bus.dead_letters(order.map(OrderId::as_str))?)
    }

    /// Hands dead letters (one order's, or all) back to their targets and runs what
    /// they set going until the bus has nothing left to retry, for at most `timeout`.
    /// What was handed back. A letter that fails again is dead-lettered again; every
    /// handler is idempotent, so handing back one that had in fact been handled since
    /// changes nothing.
    pub async fn redrive(
        &self,
        order: Option<&OrderId>,
        timeout: Duration,
    ) -> Result<Vec<DeadLetter>, LocalError> {
        let turn = Turn::begin(&self.0).await?;
        let letters = self.0.wiring.bus.redrive(order.map(OrderId::as_str))?;
        if letters.is_empty() {
            return Ok(letters);
        }
        self.run_due(&turn).await?;
        turn.commit()?;
        let started = Instant::now();
        while started.elapsed() < timeout {
            if !self.run_batch().await? {
                let Some(next) = self.0.wiring.bus.next_due()? else {
                    break;
                };
                let wait = (next - self.0.wiring.clock.now())
                    .to_std()
                    .unwrap_or_default();
                tokio::time::sleep(wait.min(timeout.saturating_sub(started.elapsed()))).await;
            }
        }
        Ok(letters)
    }
}

fn read_fail_probability(db: &Db) -> Result<f64, StoreError> {
    let stored: Option<String> = db.read(|conn| {
        conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
            .query_row(params![FAIL_PROBABILITY_VAR], |row| row.get(0))
            .optional()
    })?;
    match stored {
        None => Ok(DEFAULT_FAIL_PROBABILITY),
        Some(text) => text.parse().map_err(|err| {
            StoreError::new(format!(
                "local state: bad {FAIL_PROBABILITY_VAR} {text:?}: {err}"
            ))
        }),
    }
}

//! The seven services wired to the local adapters, addressed by function name the way
//! the bus rules and the state machine address them on AWS.

use crate::asl::{AslError, Executions};
use crate::bus::LocalBus;
use crate::metering::{Api, Meter, Metered};
use async_trait::async_trait;
use ewf_domain::ServiceError;
use ewf_domain::StoreError;
use ewf_domain::entry::{self, Function, FunctionError, HttpRequest, Input, Reply};
use ewf_domain::events::FunctionName;
use ewf_domain::ports::{Clock, Random, TaskResult, WorkflowCallback};
use ewf_sqlite::SqliteStores;
use ewf_sqlite::gazetteer::Gazetteer;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The services, each behind the entry point its Lambda function has.
pub struct Functions {
    customer: Arc<dyn Function>,
    order: Arc<dyn Function>,
    inventory: Arc<dyn Function>,
    payment: Arc<dyn Function>,
    delivery: Arc<dyn Function>,
    event_store: Arc<dyn Function>,
    add: Arc<dyn Function>,
    meter: Arc<Meter>,
}

/// What the services are built from.
#[derive(Clone)]
pub struct Wiring {
    pub stores: SqliteStores,
    pub bus: LocalBus,
    pub callback: Arc<dyn WorkflowCallback>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub fail_probability: f64,
    /// How long an order of the choreography may take to settle.
    pub order_deadline: Duration,
    /// What counts the services' work.
    pub meter: Arc<Meter>,
}

impl Functions {
    pub fn new(wiring: &Wiring) -> Self {
        let Wiring {
            stores,
            bus,
            callback,
            clock,
            random,
            fail_probability,
            order_deadline,
            meter,
        } = wiring;
        let bus: Arc<LocalBus> = Arc::new(bus.clone());
        // Every store a service uses is counted; the stack's own reads are not.
        let ledger = Metered::new(stores.ledger(), meter.clone());
        Self {
            customer: Arc::new(ewf_customer::CustomerService::new(
                Metered::new(stores.customers(), meter.clone()),
                bus.clone(),
            )),
            order: Arc::new(ewf_order::OrderService::new(
                Metered::new(stores.orders(), meter.clone()),
                ledger.clone(),
                bus.clone(),
                clock.clone(),
                random.clone(),
                *order_deadline,
            )),
            inventory: Arc::new(ewf_inventory::InventoryService::new(
                Metered::new(stores.inventory(), meter.clone()),
                ledger.clone(),
                bus.clone(),
            )),
            payment: Arc::new(ewf_payment::PaymentService::new(
                Metered::new(stores.payments(), meter.clone()),
                ledger.clone(),
                bus.clone(),
                clock.clone(),
                random.clone(),
                *fail_probability,
            )),
            delivery: Arc::new(ewf_delivery::DeliveryService::new(
                Metered::new(stores.deliveries(), meter.clone()),
                ledger.clone(),
                bus,
                Arc::new(Gazetteer::sample()),
                callback.clone(),
                clock.clone(),
            )),
            event_store: Arc::new(ewf_event_store::EventStoreService::new(Metered::new(
                stores.events(),
                meter.clone(),
            ))),
            add: Arc::new(ewf_add::AddService),
            meter: meter.clone(),
        }
    }

    pub fn get(&self, name: FunctionName) -> &Arc<dyn Function> {
        match name {
            FunctionName::Customer => &self.customer,
            FunctionName::Order => &self.order,
            FunctionName::Inventory => &self.inventory,
            FunctionName::Payment => &self.payment,
            FunctionName::Delivery => &self.delivery,
            FunctionName::EventStore => &self.event_store,
            FunctionName::Add => &self.add,
        }
    }

    /// Invokes a function with a raw payload, as Lambda would.
    pub async fn invoke(&self, name: FunctionName, payload: Value) -> Result<Value, FunctionError> {
        self.counted(name, entry::invoke(self.get(name).as_ref(), payload))
            .await
    }

    /// Calls a function through its HTTP API route, as API Gateway would.
    pub async fn http(
        &self,
        name: FunctionName,
        request: HttpRequest,
    ) -> Result<Reply, ServiceError> {
        self.meter.request(Api::Http);
        self.counted(name, self.get(name).handle(Input::Http(request)))
            .await
    }

    /// Runs one invocation of `name`, counted with its handler time.
    async fn counted<T>(&self, name: FunctionName, invocation: impl Future<Output = T>) -> T {
        if !self.meter.timing() {
            return invocation.await;
        }
        let started = Instant::now();
        let result = self.meter.logged(invocation).await;
        self.meter.invoked(name, started.elapsed());
        result
    }
}

#[async_trait]
impl crate::asl::TaskInvoker for Functions {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        let name: FunctionName = function.parse().map_err(|expected| FunctionError {
            error_type: "Lambda.ResourceNotFoundException".into(),
            error_message: format!("no function {function:?}: {expected}"),
        })?;
        Functions::invoke(self, name, payload).await
    }
}

/// The delivery service's way to resume a waiting workflow, as SendTaskSuccess and
/// SendTaskFailure: the result is recorded on the execution in the state file and the
/// stack's next drain drives the execution on. The callback runs inside a function, which must not drive
/// an execution itself; and a recorded output survives the process.
pub struct ExecutionCallback(pub Arc<Executions>);

#[async_trait]
impl WorkflowCallback for ExecutionCallback {
    async fn resume(&self, token: &str, result: &TaskResult) -> Result<(), StoreError> {
        match self.0.record(token, result) {
            Ok(()) => Ok(()),
            Err(err @ (AslError::TaskDoesNotExist | AslError::TaskTimedOut)) => {
                tracing::warn!(error = %err, "the workflow no longer waits for this task; nothing to resume");
                Ok(())
            }
            Err(err) => Err(StoreError::new(err)),
        }
    }
}

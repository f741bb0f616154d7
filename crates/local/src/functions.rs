//! The seven services wired to the local adapters, addressed by function name the way
//! the bus rules and the state machine address them on AWS.

use crate::asl::{AslError, Executions};
use crate::bus::LocalBus;
use async_trait::async_trait;
use ewf_domain::StoreError;
use ewf_domain::entry::{self, Function, FunctionError};
use ewf_domain::estimate::Gazetteer;
use ewf_domain::events::FunctionName;
use ewf_domain::ports::{Clock, Random, TaskResult, WorkflowCallback};
use ewf_sqlite::SqliteStores;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The services, each behind the entry point its Lambda function has.
pub struct Functions {
    customer: Arc<dyn Function>,
    order: Arc<dyn Function>,
    inventory: Arc<dyn Function>,
    payment: Arc<dyn Function>,
    delivery: Arc<dyn Function>,
    event_store: Arc<dyn Function>,
    add: Arc<dyn Function>,
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
        } = wiring;
        let bus: Arc<LocalBus> = Arc::new(bus.clone());
        Self {
            customer: Arc::new(ewf_customer::CustomerService::new(
                stores.customers(),
                bus.clone(),
            )),
            order: Arc::new(ewf_order::OrderService::new(
                stores.orders(),
                stores.ledger(),
                bus.clone(),
                clock.clone(),
                random.clone(),
                *order_deadline,
            )),
            inventory: Arc::new(ewf_inventory::InventoryService::new(
                stores.inventory(),
                stores.ledger(),
                bus.clone(),
            )),
            payment: Arc::new(ewf_payment::PaymentService::new(
                stores.payments(),
                stores.ledger(),
                bus.clone(),
                clock.clone(),
                random.clone(),
                *fail_probability,
            )),
            delivery: Arc::new(ewf_delivery::DeliveryService::new(
                stores.deliveries(),
                stores.ledger(),
                bus,
                Arc::new(Gazetteer::sample()),
                callback.clone(),
                clock.clone(),
            )),
            event_store: Arc::new(ewf_event_store::EventStoreService::new(stores.events())),
            add: Arc::new(ewf_add::AddService),
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
        entry::invoke(self.get(name).as_ref(), payload).await
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

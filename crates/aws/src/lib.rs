//! AWS adapters of the ewf ports: DynamoDB stores and ledger, the EventBridge bus, the
//! Step Functions callback and the Amazon Location estimator; plus [`Environment`], which
//! builds them from a Lambda function's environment, and [`run`], the Lambda runtime glue
//! every function's `main` uses.

mod bus;
mod callback;
mod denied;
mod dynamo;
mod environment;
mod estimator;
mod https;
mod retry;
mod runtime;

pub use bus::EventBridgeBus;
pub use callback::StepFunctionsCallback;
pub use denied::{ACCESS_DENIED_CODES, is_access_denied};
pub use dynamo::{
    DynamoCustomers, DynamoDeliveries, DynamoEvents, DynamoInventory, DynamoLedger, DynamoOrders,
    DynamoPayments, take_consumed_capacity,
};
pub use environment::{ConfigError, Environment};
pub use estimator::LocationEstimator;
pub use runtime::run;

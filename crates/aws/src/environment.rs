//! The adapters a Lambda function needs, built from its environment: the AWS
//! configuration of the execution role and the resource names the template passes in.

use crate::{
    DynamoCustomers, DynamoDeliveries, DynamoEvents, DynamoInventory, DynamoLedger, DynamoOrders,
    DynamoPayments, EventBridgeBus, LocationEstimator, StepFunctionsCallback,
};
use aws_config::{BehaviorVersion, SdkConfig};
use ewf_domain::Address;
use ewf_domain::ports::{
    Bus, Clock, CustomerStore, DeliveryStore, Estimator, EventStore, InventoryStore, Ledger,
    OrderStore, PaymentStore, Random, WorkflowCallback,
};
use ewf_domain::system::{SeededRandom, SystemClock};
use std::sync::Arc;

/// The delivery depot unless DELIVERY_ORIGIN_ADDRESS says otherwise.
const DEFAULT_DEPOT: &str = "60 Holborn Viaduct, London EC1A 2FD, UK";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set: set it to {meaning}")]
    Missing {
        name: &'static str,
        meaning: &'static str,
    },
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("cannot build the HTTPS client of the AWS SDK: {0}")]
    Https(String),
}

/// A setting from the environment.
fn setting(name: &'static str, meaning: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) | Err(std::env::VarError::NotPresent) => Err(ConfigError::Missing { name, meaning }),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::Invalid {
            name,
            message: "is not valid Unicode".into(),
        }),
    }
}

fn table(name: &'static str) -> Result<String, ConfigError> {
    setting(name, "the name of a DynamoDB table of the stack")
}

pub struct Environment {
    config: SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Environment {
    /// The configuration of the Lambda execution environment (region, role credentials),
    /// its clients trusting the compiled-in roots of AWS endpoints (see `https`).
    pub async fn load() -> Result<Self, ConfigError> {
        let https = crate::https::client().map_err(|err| ConfigError::Https(err.to_string()))?;
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https)
            .load()
            .await;
        Ok(Self::from_sdk_config(&config))
    }

    /// A given configuration, e.g. with a custom endpoint.
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
        }
    }

    fn ledger_table() -> Result<String, ConfigError> {
        table("LEDGER_TABLE")
    }

    pub fn customers(&self) -> Result<Arc<dyn CustomerStore>, ConfigError> {
        Ok(Arc::new(DynamoCustomers::new(
            self.dynamodb.clone(),
            table("CUSTOMER_TABLE")?,
        )))
    }

    pub fn inventory(&self) -> Result<Arc<dyn InventoryStore>, ConfigError> {
        let table = table("INVENTORY_TABLE")?;
        Ok(Arc::new(DynamoInventory::new(
            self.dynamodb.clone(),
            table,
            Self::ledger_table()?,
        )))
    }

    pub fn payments(&self) -> Result<Arc<dyn PaymentStore>, ConfigError> {
        let table = table("PAYMENT_TABLE")?;
        Ok(Arc::new(DynamoPayments::new(
            self.dynamodb.clone(),
            table,
            Self::ledger_table()?,
        )))
    }

    pub fn deliveries(&self) -> Result<Arc<dyn DeliveryStore>, ConfigError> {
        let table = table("DELIVERY_TABLE")?;
        Ok(Arc::new(DynamoDeliveries::new(
            self.dynamodb.clone(),
            table,
            Self::ledger_table()?,
        )))
    }

    pub fn orders(&self) -> Result<Arc<dyn OrderStore>, ConfigError> {
        let table = table("ORDER_TABLE")?;
        Ok(Arc::new(DynamoOrders::new(
            self.dynamodb.clone(),
            table,
            Self::ledger_table()?,
        )))
    }

    pub fn events(&self) -> Result<Arc<dyn EventStore>, ConfigError> {
        Ok(Arc::new(DynamoEvents::new(
            self.dynamodb.clone(),
            table("EVENT_STORE_TABLE")?,
        )))
    }

    pub fn ledger(&self) -> Result<Arc<dyn Ledger>, ConfigError> {
        Ok(Arc::new(DynamoLedger::new(
            self.dynamodb.clone(),
            Self::ledger_table()?,
        )))
    }

    pub fn bus(&self) -> Result<Arc<dyn Bus>, ConfigError> {
        let bus_name = setting("EVENT_BUS_NAME", "the name of the stack's EventBridge bus")?;
        Ok(Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&self.config),
            bus_name,
        )))
    }

    pub fn callback(&self) -> Result<Arc<dyn WorkflowCallback>, ConfigError> {
        Ok(Arc::new(StepFunctionsCallback::new(
            aws_sdk_sfn::Client::new(&self.config),
        )))
    }

    pub fn estimator(&self) -> Result<Arc<dyn Estimator>, ConfigError> {
        const NAME: &str = "DELIVERY_ORIGIN_ADDRESS";
        let depot = match setting(NAME, "the depot's address") {
            Ok(address) => address,
            Err(ConfigError::Missing { .. }) => DEFAULT_DEPOT.to_owned(),
            Err(err) => return Err(err),
        };
        let depot = Address::parse(&depot).map_err(|err| ConfigError::Invalid {
            name: NAME,
            message: err.to_string(),
        })?;
        Ok(Arc::new(LocationEstimator::new(
            aws_sdk_geoplaces::Client::new(&self.config),
            aws_sdk_georoutes::Client::new(&self.config),
            depot,
        )))
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    pub fn random(&self) -> Arc<dyn Random> {
        Arc::new(SeededRandom::new(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_setting_says_which_and_what_to_set() {
        let err = setting("EWF_TEST_SURELY_UNSET_VARIABLE", "the name of a thing").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable EWF_TEST_SURELY_UNSET_VARIABLE is not set: set it to the name of a thing"
        );
    }
}

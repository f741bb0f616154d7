//! The customer service: describes customers, for the HTTP API, the choreography
//! (ItemDescribed) and the workflow (direct invocations). It changes no state, so a
//! repeated request simply answers again.

use async_trait::async_trait;
use ewf_domain::entry::{Decode, EventInput, Function, HttpRequest, Input, Invocation, Reply};
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::ports::{Bus, CustomerStore};
use ewf_domain::saga;
use ewf_domain::step;
use ewf_domain::{Customer, CustomerId, Failure, Mode, OrderDetail, OrderStatus, ServiceError};
use std::sync::Arc;

const SOURCE: FunctionName = FunctionName::Customer;

/// The one action of this service.
const DESCRIBE: &str = "describe";

/// One request to the customer service.
// A command lives for one invocation and is never stored in bulk: boxing the order
// detail would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `GET /customer/describe/{customerId}`
    Describe { customer_id: CustomerId },
    /// Adds the customer to an order: on ItemDescribed (answered by an event) or for
    /// the workflow (answered with the order detail).
    DescribeFor { order: OrderDetail, mode: Mode },
}

fn check_action(action: &str) -> Result<(), ServiceError> {
    if action == DESCRIBE {
        Ok(())
    } else {
        Err(ServiceError::unknown_action(action))
    }
}

impl Decode for Command {
    fn from_http(request: &HttpRequest) -> Result<Self, ServiceError> {
        check_action(request.action("customer")?)?;
        let [customer_id] = request.params([CustomerId::FIELD])?;
        Ok(Self::Describe {
            customer_id: customer_id.parse()?,
        })
    }

    fn from_event(event: &EventInput) -> Result<Self, ServiceError> {
        match event.known_type()? {
            DetailType::ItemDescribed => Ok(Self::DescribeFor {
                order: event.parse_detail()?,
                mode: Mode::Events,
            }),
            _ => Err(event.not_handled_by(SOURCE)),
        }
    }

    fn from_invoke(invocation: Invocation) -> Result<Self, ServiceError> {
        check_action(invocation.action()?)?;
        Ok(Self::DescribeFor {
            order: invocation.order()?,
            mode: Mode::Workflow,
        })
    }
}

pub struct CustomerService {
    store: Arc<dyn CustomerStore>,
    bus: Arc<dyn Bus>,
}

impl CustomerService {
    pub fn new(store: Arc<dyn CustomerStore>, bus: Arc<dyn Bus>) -> Self {
        Self { store, bus }
    }

    pub async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        match command {
            Command::Describe { customer_id } => {
                let customer = self.store.get(&customer_id).await?;
                customer
                    .map(Reply::ok)
                    .ok_or_else(|| not_found(&customer_id))
            }
            Command::DescribeFor { mut order, mode } => {
                let customer = self.store.get(&order.customer_id).await?;
                match mode {
                    Mode::Workflow => {
                        order.customer =
                            Some(customer.ok_or_else(|| not_found(&order.customer_id))?);
                        Ok(Reply::ok(order))
                    }
                    Mode::Events => {
                        step::announce(&*self.bus, vec![described(order, customer)]).await
                    }
                }
            }
        }
    }
}

fn not_found(id: &CustomerId) -> ServiceError {
    ServiceError::not_found("Customer", id)
}

/// CustomerDescribed with the customer, or ErrorCustomerDescribed carrying the failure
/// that the compensation (unreserving the item) passes on to the order.
fn described(mut order: OrderDetail, customer: Option<Customer>) -> BusEvent {
    let detail_type = match customer {
        Some(customer) => {
            order.customer = Some(customer);
            DetailType::CustomerDescribed
        }
        None => {
            let reason = not_found(&order.customer_id).to_string();
            order.failure = Some(Failure {
                status: OrderStatus::Failed,
                reason,
            });
            DetailType::ErrorCustomerDescribed
        }
    };
    BusEvent::new(SOURCE, detail_type, &order)
}

#[async_trait]
impl Function for CustomerService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        saga::handle(&*self.bus, SOURCE, input, |command: Command| {
            self.execute(command)
        })
        .await
    }
}

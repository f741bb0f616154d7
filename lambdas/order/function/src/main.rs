//! The order function: the order service on the Lambda runtime.

use ewf_order::OrderService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = ewf_aws::Environment::load().await?;
    let service = OrderService::new(
        env.orders()?,
        env.ledger()?,
        env.bus()?,
        env.clock(),
        env.random(),
        ewf_domain::settings::order_deadline_from_env()?,
    );
    ewf_aws::run(service).await
}

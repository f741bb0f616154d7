//! The delivery function: the delivery service on the Lambda runtime.

use ewf_delivery::DeliveryService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = ewf_aws::Environment::load().await?;
    let service = DeliveryService::new(
        env.deliveries()?,
        env.ledger()?,
        env.bus()?,
        env.estimator()?,
        env.callback()?,
        env.clock(),
    );
    ewf_aws::run(service).await
}

//! The payment Lambda function.

use ewf_domain::settings::fail_probability_from_env;
use ewf_payment::PaymentService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = ewf_aws::Environment::load().await?;
    let service = PaymentService::new(
        env.payments()?,
        env.ledger()?,
        env.bus()?,
        env.clock(),
        env.random(),
        fail_probability_from_env()?,
    );
    ewf_aws::run(service).await
}

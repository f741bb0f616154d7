//! The customer Lambda function.

use ewf_customer::CustomerService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = ewf_aws::Environment::load().await?;
    let service = CustomerService::new(env.customers()?, env.bus()?);
    ewf_aws::run(service).await
}

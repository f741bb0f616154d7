//! The inventory Lambda function.

use ewf_inventory::InventoryService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = ewf_aws::Environment::load().await?;
    let service = InventoryService::new(env.inventory()?, env.ledger()?, env.bus()?);
    ewf_aws::run(service).await
}

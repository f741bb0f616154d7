//! The event-store function: stores every event of the bus.

use ewf_event_store::EventStoreService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = ewf_aws::Environment::load().await?;
    ewf_aws::run(EventStoreService::new(env.events()?)).await
}

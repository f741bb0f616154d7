//! The add Lambda function.

use ewf_add::AddService;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    ewf_aws::run(AddService).await
}

//! The Lambda runtime glue: JSON logs (each invocation's ending with the DynamoDB
//! capacity it consumed), and one function behind the runtime API whose
//! errors keep their names, so that Step Functions `Catch` can match them.

use crate::dynamo::take_consumed_capacity;
use ewf_domain::entry::{self, Function};
use ewf_domain::logs;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;

/// Runs `function` for every invocation until the runtime stops.
pub async fn run(function: impl Function + 'static) -> Result<(), lambda_runtime::Error> {
    init_logs();
    let function = Arc::new(function);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            take_consumed_capacity();
            let reply = entry::invoke(function.as_ref(), event.payload).await;
            let (read_units, write_units) = take_consumed_capacity();
            logs::consumed_capacity(read_units, write_units);
            reply.map_err(|err| Diagnostic {
                error_type: err.error_type,
                error_message: err.error_message,
            })
        }
    }))
    .await
}

/// The functions' JSON lines on standard output, for CloudWatch; level from RUST_LOG.
fn init_logs() {
    let filter = logs::filter(std::env::var("RUST_LOG").ok().as_deref());
    if tracing::subscriber::set_global_default(logs::json_lines(filter, std::io::stdout)).is_err() {
        tracing::debug!("a tracing subscriber was already installed; keeping it");
    }
}

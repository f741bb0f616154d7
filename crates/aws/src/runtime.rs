//! The Lambda runtime glue: JSON logs, and one function behind the runtime API whose
//! errors keep their names, so that Step Functions `Catch` can match them.

use ewf_domain::entry::{self, Function};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Runs `function` for every invocation until the runtime stops.
pub async fn run(function: impl Function + 'static) -> Result<(), lambda_runtime::Error> {
    init_logs();
    let function = Arc::new(function);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            entry::invoke(function.as_ref(), event.payload)
                .await
                .map_err(|err| Diagnostic {
                    error_type: err.error_type,
                    error_message: err.error_message,
                })
        }
    }))
    .await
}

/// JSON lines for CloudWatch, which adds its own timestamps; level from RUST_LOG.
fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .try_init();
    if installed.is_err() {
        tracing::debug!("a tracing subscriber was already installed; keeping it");
    }
}

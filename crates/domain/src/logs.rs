//! The functions' log lines, one format for Lambda and for the local stack's count of
//! the bytes a function logs: a JSON object a line, without a time (CloudWatch stamps
//! each line), each line carrying the spans it was written in.

use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The level every function logs at unless `RUST_LOG` says otherwise (the template's
/// `LogLevel` default).
pub const DEFAULT_LEVEL: &str = "info";

/// The name and field of the span the Lambda runtime opens around each invocation; it
/// is on every line a function writes.
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// The bytes of the records Lambda itself writes per invocation in the JSON log
/// format: `platform.start` and `platform.report` (a warm start; a cold start adds
/// `platform.initStart` and an `initDurationMs`), each with its time, a 36-character
/// request id and the figures (the test below holds an example).
pub const PLATFORM_BYTES_PER_INVOCATION: u64 = 375;

/// The message of the line that ends an invocation that used DynamoDB, with the units
/// it consumed as the fields `readUnits` and `writeUnits`.
pub const CONSUMED_CAPACITY: &str = "consumed capacity";

/// The message of the line of each deadline sweep (whose work is the stack's, not an
/// order's).
pub const DEADLINE_SWEEP: &str = "deadline sweep";

/// Logs the DynamoDB capacity an invocation consumed, when it consumed any.
pub fn consumed_capacity(read_units: f64, write_units: f64) {
    if read_units > 0.0 || write_units > 0.0 {
        tracing::info!(
            readUnits = read_units,
            writeUnits = write_units,
            message = CONSUMED_CAPACITY
        );
    }
}

/// The functions' filter: `directives` as `RUST_LOG` gives them (a level, `target=level`,
/// comma-separated), or [`DEFAULT_LEVEL`] when they are absent or do not parse. These are
/// targets and levels only, without the span and field filters of an `EnvFilter`: those
/// need a regular expression engine, over a megabyte of code in every function's cold
/// start.
pub fn filter(directives: Option<&str>) -> Targets {
    // An empty directive would name the empty target, a prefix of every target.
    let given: Vec<&str> = directives
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    Some(given.join(","))
        .filter(|given| !given.is_empty())
        .and_then(|given| given.parse().ok())
        .unwrap_or_else(|| DEFAULT_LEVEL.parse().expect("the default level parses"))
}

/// A subscriber that writes the functions' JSON lines to `writer`, filtered by `filter`.
pub fn json_lines<W>(filter: Targets, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        // `filter` decides; the builder's own default would stop everything below INFO.
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .with_writer(writer)
        .finish()
        .with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_the_level_and_a_missing_or_unreadable_one_leaves_the_default() {
        let debug = filter(Some("debug"));
        assert!(debug.would_enable("ewf_order", &Level::DEBUG));
        let quiet_sdk = filter(Some("info,aws_smithy_runtime=warn"));
        assert!(quiet_sdk.would_enable("ewf_order", &Level::INFO));
        assert!(!quiet_sdk.would_enable("aws_smithy_runtime", &Level::INFO));
        for default in [filter(None), filter(Some("ewf=loud")), filter(Some(" , "))] {
            assert!(default.would_enable("ewf_order", &Level::INFO));
            assert!(!default.would_enable("ewf_order", &Level::DEBUG));
        }
        let trailing_comma = filter(Some("info,"));
        assert!(!trailing_comma.would_enable("aws_smithy_runtime", &Level::TRACE));
    }

    /// Lines written into a buffer the test reads afterwards.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a debug and an info line leave in the log under `RUST_LOG`'s `directives`.
    fn written(directives: Option<&str>) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = json_lines(filter(directives), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("a debug line");
            tracing::info!("an info line");
        });
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_debug_level_writes_debug_lines_and_the_default_does_not() {
        assert!(written(Some("debug")).contains("a debug line"));
        let default = written(None);
        assert!(default.contains("an info line"));
        assert!(!default.contains("a debug line"));
    }

    /// Lambda's own records of one warm invocation of 3 ms, in the shape it writes them.
    fn platform_records(request_id: &str) -> [String; 2] {
        [
            format!(
                r#"{{"time":"2026-01-01T00:00:00.000Z","type":"platform.start","record":{{"requestId":"{request_id}","version":"$LATEST"}}}}"#
            ),
            format!(
                r#"{{"time":"2026-01-01T00:00:00.003Z","type":"platform.report","record":{{"requestId":"{request_id}","metrics":{{"durationMs":2.71,"billedDurationMs":3,"memorySizeMB":128,"maxMemoryUsedMB":19}},"status":"success"}}}}"#
            ),
        ]
    }

    #[test]
    fn the_platform_bytes_are_those_of_lambdas_records() {
        let bytes: usize = platform_records("6d68ca91-49c9-448d-89b8-7ca3e6dc66aa")
            .iter()
            .map(|record| record.len() + 1)
            .sum();
        assert_eq!(bytes as u64, PLATFORM_BYTES_PER_INVOCATION);
    }
}

//! A deployed stack's work in a window of time, read from its functions' CloudWatch
//! Logs: every invocation's lines carry its request id; Lambda's `platform.report`
//! record gives its billed duration, and the line it ends with (`consumed capacity`)
//! the DynamoDB units it used. The deadline sweep's invocations are the stack's work,
//! not an order's, and are left out.

use super::errors::aws_error;
use crate::error::Result;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;
use ewf_domain::events::FunctionName;
use ewf_domain::logs;
use ewf_domain::work::Work;
use serde_json::Value;
use std::collections::BTreeMap;

/// What one invocation's lines say.
#[derive(Debug, Default, PartialEq)]
struct Invocation {
    reported: bool,
    billed_ms: u64,
    read_units: f64,
    write_units: f64,
    log_bytes: u64,
    sweep: bool,
}

/// The invocations of the functions in a window, by function and request id.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    invocations: BTreeMap<&'static str, BTreeMap<String, Invocation>>,
}

impl Tally {
    /// Takes one log line of `function`'s: a Lambda record, or a line of the function's
    /// own, in an invocation's span. Lines outside any invocation (a cold start's) are
    /// not an order's work.
    pub fn add(&mut self, function: FunctionName, message: &str) {
        let Ok(line) = serde_json::from_str::<Value>(message) else {
            return;
        };
        let request_id = line["record"]["requestId"].as_str().or_else(|| {
            line["spans"].as_array()?.iter().find_map(|span| {
                (span["name"] == logs::INVOCATION_SPAN)
                    .then(|| span["requestId"].as_str())
                    .flatten()
            })
        });
        let Some(request_id) = request_id else {
            return;
        };
        let invocation = self
            .invocations
            .entry(function.as_str())
            .or_default()
            .entry(request_id.to_owned())
            .or_default();
        // The line as written, with its newline (as the local stack counts it).
        invocation.log_bytes += message.len() as u64 + 1;
        if line["type"] == "platform.report" {
            invocation.reported = true;
            invocation.billed_ms += line["record"]["metrics"]["billedDurationMs"]
                .as_u64()
                .unwrap_or(0);
        }
        let fields = &line["fields"];
        if fields["message"] == logs::CONSUMED_CAPACITY {
            invocation.read_units += fields["readUnits"].as_f64().unwrap_or(0.0);
            invocation.write_units += fields["writeUnits"].as_f64().unwrap_or(0.0);
        }
        if fields["message"] == logs::DEADLINE_SWEEP {
            invocation.sweep = true;
        }
    }

    /// Invocations whose lines were read without Lambda's report yet: their logs are
    /// still arriving.
    pub fn unreported(&self) -> usize {
        self.orders_invocations()
            .filter(|(_, invocation)| !invocation.reported)
            .count()
    }

    fn orders_invocations(&self) -> impl Iterator<Item = (&'static str, &Invocation)> {
        self.invocations.iter().flat_map(|(function, invocations)| {
            invocations
                .values()
                .filter(|invocation| !invocation.sweep)
                .map(move |invocation| (*function, invocation))
        })
    }

    /// The work the reported invocations did (the figures logs hold; the rest is zero).
    pub fn work(&self) -> Work {
        let mut work = Work {
            billed_ms: Some(0),
            log_bytes: Some(0),
            ..Work::default()
        };
        let (mut read, mut write) = (0.0, 0.0);
        for (function, invocation) in self.orders_invocations() {
            *work.invocations.entry(function.to_owned()).or_default() +=
                u64::from(invocation.reported);
            work.billed_ms = work.billed_ms.map(|ms| ms + invocation.billed_ms);
            work.log_bytes = work.log_bytes.map(|bytes| bytes + invocation.log_bytes);
            read += invocation.read_units;
            write += invocation.write_units;
        }
        work.read_units = Some(read.round() as u64);
        work.write_units = Some(write.round() as u64);
        work
    }
}

/// Reads the lines the functions (`groups`: each function's log group) wrote between
/// `from` and `to` (milliseconds since the epoch). A function that never ran has no
/// group yet, and no lines.
pub async fn read(
    client: &Client,
    groups: &[(FunctionName, String)],
    from: i64,
    to: i64,
) -> Result<Tally> {
    let mut tally = Tally::default();
    for (function, group) in groups {
        let mut pages = client
            .filter_log_events()
            .log_group_name(group)
            .start_time(from)
            .end_time(to)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(err)
                    if matches!(
                        err.as_service_error(),
                        Some(FilterLogEventsError::ResourceNotFoundException(_))
                    ) =>
                {
                    break;
                }
                Err(err) => return Err(aws_error("FilterLogEvents", err)),
            };
            for event in page.events() {
                tally.add(*function, event.message().unwrap_or_default());
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(request_id: &str, fields: &str) -> String {
        format!(
            r#"{{"level":"INFO","fields":{fields},"target":"ewf_order","spans":[{{"requestId":"{request_id}","name":"{}"}}]}}"#,
            logs::INVOCATION_SPAN
        )
    }

    fn report(request_id: &str, billed: u64) -> String {
        format!(
            r#"{{"time":"2026-01-01T00:00:00.003Z","type":"platform.report","record":{{"requestId":"{request_id}","metrics":{{"durationMs":2.1,"billedDurationMs":{billed},"memorySizeMB":128,"maxMemoryUsedMB":19}},"status":"success"}}}}"#
        )
    }

    #[test]
    fn an_invocation_is_counted_once_lambda_reported_it_and_a_sweep_not_at_all() {
        let mut tally = Tally::default();
        let order = FunctionName::Order;
        let lines = [
            r#"{"time":"2026-01-01T00:00:00.000Z","type":"platform.initStart","record":{"runtimeVersion":"x"}}"#.to_owned(),
            line("a", r#"{"message":"order created","order_id":"o"}"#),
            line("a", r#"{"message":"consumed capacity","readUnits":1.0,"writeUnits":2.5}"#),
            report("a", 3),
            line("b", r#"{"message":"consumed capacity","readUnits":0.5,"writeUnits":0.0}"#),
            line("sweep", r#"{"message":"deadline sweep","timed_out":0}"#),
            line("sweep", r#"{"message":"consumed capacity","readUnits":7.0,"writeUnits":0.0}"#),
            report("sweep", 9),
            "not json".to_owned(),
        ];
        for message in &lines[..5] {
            tally.add(order, message);
        }
        assert_eq!(tally.unreported(), 1, "b has no report yet");
        for message in &lines[5..] {
            tally.add(order, message);
        }
        tally.add(order, &report("b", 2));
        assert_eq!(tally.unreported(), 0);
        let work = tally.work();
        assert_eq!(work.invocations.get("Order"), Some(&2));
        assert_eq!(work.billed_ms, Some(5));
        assert_eq!(work.read_units, Some(2), "1.0 + 0.5, rounded");
        assert_eq!(work.write_units, Some(3), "2.5, rounded");
        let bytes: usize = [&lines[1], &lines[2], &lines[3], &lines[4], &report("b", 2)]
            .iter()
            .map(|message| message.len() + 1)
            .sum();
        assert_eq!(work.log_bytes, Some(bytes as u64));
    }

    /// Lines put into moto's CloudWatch Logs are read back for their window only.
    #[tokio::test]
    async fn the_lines_of_a_window_are_read_from_cloudwatch_logs() {
        let endpoint = std::env::var("EWF_MOTO_ENDPOINT")
            .expect("EWF_MOTO_ENDPOINT names a moto server (scripts/test.sh starts one)");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await;
        let client = Client::new(&config);
        let group = format!("/aws/lambda/ewf-test-OrderFunction-{}", ulid::Ulid::new());
        client
            .create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .unwrap();
        client
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name("instance")
            .send()
            .await
            .unwrap();
        let now = epoch_ms();
        let lines = [
            (
                now - 60_000,
                line("before", r#"{"message":"order created"}"#),
            ),
            (now - 60_000, report("before", 7)),
            (
                now,
                line(
                    "a",
                    r#"{"message":"consumed capacity","readUnits":1.0,"writeUnits":4.0}"#,
                ),
            ),
            (now + 1, report("a", 2)),
        ];
        let events = lines.iter().map(|(time, message)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(*time)
                .message(message)
                .build()
                .unwrap()
        });
        client
            .put_log_events()
            .log_group_name(&group)
            .log_stream_name("instance")
            .set_log_events(Some(events.collect()))
            .send()
            .await
            .unwrap();
        let groups = [
            (FunctionName::Order, group),
            (FunctionName::Add, "/aws/lambda/never-ran".to_owned()),
        ];
        let work = read(&client, &groups, now - 1_000, now + 1_000)
            .await
            .unwrap()
            .work();
        assert_eq!(work.invocations.get("Order"), Some(&1));
        assert_eq!(work.billed_ms, Some(2));
        assert_eq!((work.read_units, work.write_units), (Some(1), Some(4)));
        let bytes = lines[2].1.len() + lines[3].1.len() + 2;
        assert_eq!(work.log_bytes, Some(bytes as u64));
    }

    fn epoch_ms() -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        i64::try_from(since.as_millis()).unwrap()
    }
}

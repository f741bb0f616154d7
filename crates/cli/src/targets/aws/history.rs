//! A Step Functions execution history as the local stack records it: each event as a
//! timeline entry, its details under the same field names.

use crate::targets::TimelineEntry;
use aws_sdk_sfn::types::HistoryEvent;
use serde_json::{Map, Value, json};

/// One Step Functions history event as a timeline entry, its details mapped to the
/// fields the local stack's history has (see [`TimelineEntry::from_history`]).
pub(super) fn history_entry(event: &HistoryEvent) -> TimelineEntry {
    let time =
        chrono::DateTime::from_timestamp(event.timestamp.secs(), event.timestamp.subsec_nanos())
            .unwrap_or_default();
    TimelineEntry::from_history(
        event.id,
        time,
        event.r#type.as_str().to_owned(),
        history_detail(event),
    )
}

/// The fields of a history event's `...EventDetails` that both targets have, with JSON
/// text parsed; absent fields are left out.
fn history_detail(event: &HistoryEvent) -> Value {
    let mut detail = Detail::default();
    if let Some(started) = &event.execution_started_event_details {
        detail
            .json("input", started.input.as_deref())
            .text("roleArn", started.role_arn.as_deref());
    } else if let Some(succeeded) = &event.execution_succeeded_event_details {
        detail.json("output", succeeded.output.as_deref());
    } else if let Some(failed) = &event.execution_failed_event_details {
        detail.failure(failed.error.as_deref(), failed.cause.as_deref());
    } else if let Some(timed_out) = &event.execution_timed_out_event_details {
        detail.failure(timed_out.error.as_deref(), timed_out.cause.as_deref());
    } else if let Some(aborted) = &event.execution_aborted_event_details {
        detail.failure(aborted.error.as_deref(), aborted.cause.as_deref());
    } else if let Some(entered) = &event.state_entered_event_details {
        detail
            .text("name", Some(&entered.name))
            .json("input", entered.input.as_deref());
    } else if let Some(exited) = &event.state_exited_event_details {
        detail
            .text("name", Some(&exited.name))
            .json("output", exited.output.as_deref());
    } else if let Some(scheduled) = &event.task_scheduled_event_details {
        detail
            .task(&scheduled.resource_type, &scheduled.resource)
            .text("region", Some(&scheduled.region))
            .json("parameters", Some(&scheduled.parameters));
        if let Some(seconds) = scheduled.timeout_in_seconds {
            detail.0.insert("timeoutInSeconds".into(), json!(seconds));
        }
    } else if let Some(started) = &event.task_started_event_details {
        detail.task(&started.resource_type, &started.resource);
    } else if let Some(submitted) = &event.task_submitted_event_details {
        detail
            .task(&submitted.resource_type, &submitted.resource)
            .json("output", submitted.output.as_deref());
    } else if let Some(succeeded) = &event.task_succeeded_event_details {
        detail
            .task(&succeeded.resource_type, &succeeded.resource)
            .json("output", succeeded.output.as_deref());
    } else if let Some(failed) = &event.task_failed_event_details {
        detail
            .task(&failed.resource_type, &failed.resource)
            .failure(failed.error.as_deref(), failed.cause.as_deref());
    } else if let Some(timed_out) = &event.task_timed_out_event_details {
        detail
            .task(&timed_out.resource_type, &timed_out.resource)
            .failure(timed_out.error.as_deref(), timed_out.cause.as_deref());
    }
    Value::Object(detail.0)
}

/// A history event's detail as it is built, field by field.
#[derive(Default)]
struct Detail(Map<String, Value>);

impl Detail {
    fn text(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), json!(value));
        }
        self
    }

    /// JSON text as the value it holds (as the text itself, should it not be JSON).
    fn json(&mut self, key: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text {
            let value = serde_json::from_str(text).unwrap_or_else(|_| json!(text));
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    fn task(&mut self, resource_type: &str, resource: &str) -> &mut Self {
        self.text("resourceType", Some(resource_type))
            .text("resource", Some(resource))
    }

    fn failure(&mut self, error: Option<&str>, cause: Option<&str>) -> &mut Self {
        self.text("error", error).text("cause", cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::{
        ExecutionStartedEventDetails, HistoryEventType, StateEnteredEventDetails,
        TaskFailedEventDetails, TaskScheduledEventDetails,
    };

    fn event(id: i64, kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(id)
            .previous_event_id(id - 1)
            .timestamp(DateTime::from_millis(1_704_164_645_250))
            .r#type(kind)
    }

    #[test]
    fn history_events_map_to_the_fields_of_the_local_history() {
        let entered = event(2, HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name("ReserveItem")
                    .input(r#"{"customerId":"customer-1","itemId":"item-1"}"#)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            history_entry(&entered),
            TimelineEntry {
                id: "2".into(),
                time: "2024-01-02T03:04:05.250Z".parse().unwrap(),
                kind: "TaskStateEntered".into(),
                source: "ReserveItem".into(),
                detail: json!({
                    "name": "ReserveItem",
                    "input": {"customerId": "customer-1", "itemId": "item-1"}
                }),
            }
        );

        let scheduled = event(3, HistoryEventType::TaskScheduled)
            .task_scheduled_event_details(
                TaskScheduledEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke")
                    .region("eu-west-2")
                    .parameters(r#"{"FunctionName":"reserve","Payload":{"itemId":"item-1"}}"#)
                    .timeout_in_seconds(30)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let scheduled = history_entry(&scheduled);
        assert_eq!(scheduled.source, "invoke");
        assert_eq!(
            scheduled.detail,
            json!({
                "resourceType": "lambda",
                "resource": "invoke",
                "region": "eu-west-2",
                "parameters": {"FunctionName": "reserve", "Payload": {"itemId": "item-1"}},
                "timeoutInSeconds": 30
            })
        );

        let failed = event(4, HistoryEventType::TaskFailed)
            .task_failed_event_details(
                TaskFailedEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke")
                    .error("PaymentFailed")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        // No cause given: none shown, rather than a null.
        assert_eq!(
            history_entry(&failed).detail,
            json!({"resourceType": "lambda", "resource": "invoke", "error": "PaymentFailed"})
        );

        let started = event(1, HistoryEventType::ExecutionStarted)
            .execution_started_event_details(
                ExecutionStartedEventDetails::builder()
                    .input("{}")
                    .role_arn("arn:aws:iam::123456789012:role/workflow")
                    .build(),
            )
            .build()
            .unwrap();
        let started = history_entry(&started);
        assert_eq!(
            (started.source.as_str(), started.detail),
            (
                "",
                json!({"input": {}, "roleArn": "arn:aws:iam::123456789012:role/workflow"})
            )
        );
    }
}

//! The execution history's events as Step Functions records them: each event's type,
//! time and `...EventDetails`, written out once, as the event is made.

use super::Failure;
use super::definition::{State, Task};
use super::store::Event;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The fields of a history event's `...EventDetails`, serialised as the event is made,
/// from the values as they are: the history never copies the data it records.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Details<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) input: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cause: Option<&'a str>,
}

impl<'a> Details<'a> {
    pub(super) fn output(output: &'a RawValue) -> Self {
        Self {
            output: Some(output),
            ..Self::default()
        }
    }

    pub(super) fn failure(failure: &'a Failure) -> Self {
        Self {
            error: Some(&failure.error),
            cause: Some(&failure.cause),
            ..Self::default()
        }
    }
}

pub(super) fn event(event_type: &str, details: Details<'_>) -> Event {
    Event::new(event_type, Utc::now(), &details)
}

pub(super) fn state_event(state: &State, suffix: &str, details: Details<'_>) -> Event {
    event(
        &format!("{}State{suffix}", state.kind.event_prefix()),
        details,
    )
}

pub(super) fn entered(state: &State, name: &str, input: &RawValue) -> Event {
    state_event(
        state,
        "Entered",
        Details {
            name: Some(name),
            input: Some(input),
            ..Details::default()
        },
    )
}

pub(super) fn task_event(event_type: &str, task: &Task, details: Details<'_>) -> Event {
    event(
        event_type,
        Details {
            resource_type: Some("lambda"),
            resource: Some(task.resource()),
            ..details
        },
    )
}

/// A value written out as JSON text, to be recorded in one or more history events.
pub(super) fn json_text(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value always serialises")
}

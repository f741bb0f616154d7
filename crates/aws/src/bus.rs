//! The EventBridge bus. PutEvents reports failed entries inside a successful response:
//! those are retried alone, and a publish succeeds only when every entry went through.

use crate::retry::Backoff;
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use ewf_domain::StoreError;
use ewf_domain::events::BusEvent;
use ewf_domain::ports::Bus;

/// PutEvents takes at most 10 entries.
const MAX_ENTRIES: usize = 10;

/// An entry still to send, with the reason its last attempt failed.
type Pending = (PutEventsRequestEntry, String);

#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    fn entry(&self, event: &BusEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&event.source)
            .detail_type(event.detail_type.as_str())
            .detail(event.detail.to_string())
            .build()
    }

    /// Sends the entries once; returns those that failed.
    async fn put(&self, pending: Vec<Pending>) -> Result<Vec<Pending>, StoreError> {
        let entries: Vec<_> = pending.into_iter().map(|(entry, _)| entry).collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|err| {
                StoreError::new(format!(
                    "EventBridge PutEvents to bus {} failed: {}",
                    self.bus_name,
                    DisplayErrorContext(err)
                ))
            })?;
        let failed = failed_entries(entries, output.entries());
        if !failed.is_empty() {
            tracing::warn!(bus = %self.bus_name, failed = failed.len(), "EventBridge refused some events");
        }
        Ok(failed)
    }
}

/// The entries whose result carries an error (results come in the order sent).
fn failed_entries(
    sent: Vec<PutEventsRequestEntry>,
    results: &[PutEventsResultEntry],
) -> Vec<Pending> {
    sent.into_iter()
        .enumerate()
        .filter_map(|(index, entry)| match results.get(index) {
            Some(result) => result.error_code().map(|code| {
                (
                    entry,
                    format!("{code}: {}", result.error_message().unwrap_or("no message")),
                )
            }),
            None => Some((entry, "no result returned".to_owned())),
        })
        .collect()
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), StoreError> {
        let backoff = Backoff::DEFAULT;
        for chunk in events.chunks(MAX_ENTRIES) {
            let pending = chunk
                .iter()
                .map(|event| (self.entry(event), String::new()))
                .collect();
            let left = backoff.drain(pending, |pending| self.put(pending)).await?;
            if !left.is_empty() {
                let reasons: Vec<String> = left
                    .iter()
                    .map(|(entry, reason)| {
                        format!("{} ({reason})", entry.detail_type().unwrap_or("?"))
                    })
                    .collect();
                return Err(StoreError::new(format!(
                    "EventBridge refused {} events on bus {} after {} attempts: {}",
                    left.len(),
                    self.bus_name,
                    backoff.attempts,
                    reasons.join("; ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_with_an_error_code_are_resent() {
        let sent: Vec<_> = ["A", "B", "C"]
            .map(|detail_type| {
                PutEventsRequestEntry::builder()
                    .detail_type(detail_type)
                    .build()
            })
            .into();
        let results = [
            PutEventsResultEntry::builder().event_id("1").build(),
            PutEventsResultEntry::builder()
                .error_code("ThrottlingException")
                .error_message("slow down")
                .build(),
        ];
        let failed = failed_entries(sent, &results);
        let summary: Vec<_> = failed
            .iter()
            .map(|(entry, reason)| (entry.detail_type(), reason.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (Some("B"), "ThrottlingException: slow down"),
                (Some("C"), "no result returned")
            ]
        );
    }
}

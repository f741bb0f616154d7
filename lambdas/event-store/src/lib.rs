//! The event-store service: keeps every event of the bus once, keyed by who it is
//! about and when it happened, so that an order's timeline can be read back.

use async_trait::async_trait;
use ewf_domain::entry::{EventInput, Function, Input, Invocation, Reply};
use ewf_domain::events::DetailType;
use ewf_domain::ports::EventStore;
use ewf_domain::saga;
use ewf_domain::{ServiceError, StoredEvent};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What the event store is asked to do: it only listens to the bus.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Store(StoredEvent),
}

impl Command {
    pub fn decode(input: &Input) -> Result<Self, ServiceError> {
        match input {
            Input::Event(event) => stored_event(event).map(Self::Store),
            Input::Http(request) => Err(ServiceError::unknown_action(request.to_string())),
            Input::Invoke(payload) => Err(ServiceError::unknown_action(
                Invocation(payload).action().unwrap_or("invoke"),
            )),
        }
    }
}

/// The event as the store keeps it. `who` is the customer, else the item, else the
/// source; `timeWhat` is `<time>#<stage>#<detail-type>#<event id>`: it sorts by time,
/// then by the event's stage in the saga (EventBridge stamps events to the second, and
/// a saga takes less), and is unique through the event id, so a redelivered event has
/// the same key as the first delivery. The time keeps all nine digits of its
/// nanoseconds, always written, so that the text sorts as the time does (the local bus
/// stamps events to the nanosecond).
pub fn stored_event(event: &EventInput) -> Result<StoredEvent, ServiceError> {
    if event.id.trim().is_empty() {
        return Err(ServiceError::bad_input(
            "id",
            "is needed to store the event once",
        ));
    }
    let text = |name| {
        event
            .detail
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    let who = match (text("customerId"), text("itemId")) {
        (Some(customer), _) => format!("C#{customer}"),
        (None, Some(item)) => format!("P#{item}"),
        (None, None) => format!("S#{}", event.source),
    };
    let time = ewf_domain::time::format(&event.time);
    let detail = event.detail.to_string();
    Ok(StoredEvent {
        who,
        time_what: format!(
            "{time}#{:02}#{}#{}",
            stage(event),
            event.detail_type,
            event.id
        ),
        event_id: event.id.clone(),
        digest: digest(event, &detail),
        event_time: event.time,
        event_source: event.source.clone(),
        detail_type: event.detail_type.clone(),
        order_id: text("orderId").map(str::to_owned),
        event_detail: detail,
    })
}

/// The event's stage in the saga; other events come after every stage.
fn stage(event: &EventInput) -> usize {
    event
        .known_type()
        .map_or(DetailType::ALL.len(), DetailType::stage)
}

/// The content's identity (`detail`: the event's detail as JSON text): a step that is
/// retried re-emits its events unchanged.
fn digest(event: &EventInput, detail: &str) -> String {
    let mut hash = Sha256::new();
    for part in [event.source.as_str(), &event.detail_type, detail] {
        // Length-prefixed, so that no two different triples hash the same bytes.
        hash.update(part.len().to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

pub struct EventStoreService {
    store: Arc<dyn EventStore>,
}

impl EventStoreService {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    pub async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        let Command::Store(event) = command;
        // A store failure fails the invocation, so that EventBridge delivers the event again.
        let stored = self.store.append(&event).await?;
        tracing::info!(
            who = %event.who,
            time_what = %event.time_what,
            detail_type = %event.detail_type,
            source = %event.event_source,
            order_id = event.order_id.as_deref(),
            detail = %event.event_detail,
            stored,
            "event"
        );
        Ok(Reply::ok(
            json!({ "who": event.who, "timeWhat": event.time_what, "stored": stored }),
        ))
    }
}

#[async_trait]
impl Function for EventStoreService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        let result = match Command::decode(&input) {
            Ok(command) => self.execute(command).await,
            Err(err) => Err(err),
        };
        saga::acknowledge_refusals(&input, result)
    }
}

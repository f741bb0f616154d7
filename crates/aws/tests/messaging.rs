//! The EventBridge bus and the Step Functions callback against moto.

mod support;

use ewf_aws::{EventBridgeBus, StepFunctionsCallback};
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::ports::{Bus, TaskResult, WorkflowCallback};
use serde_json::json;

async fn bus() -> (aws_sdk_eventbridge::Client, String) {
    let client = aws_sdk_eventbridge::Client::new(&support::config().await);
    let name = support::unique("AppEventBus");
    client.create_event_bus().name(&name).send().await.unwrap();
    (client, name)
}

fn order_created(n: usize) -> BusEvent {
    BusEvent::new(
        FunctionName::Order,
        DetailType::OrderCreated,
        &json!({"orderId": format!("o-{n}"), "note": "it's"}),
    )
}

#[tokio::test]
async fn events_are_published_in_chunks_of_ten() {
    let (client, name) = bus().await;
    // More than PutEvents takes at once: moto refuses over 10 entries per call too.
    let events: Vec<_> = (0..23).map(order_created).collect();
    EventBridgeBus::new(client, name)
        .publish(&events)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refused_entry_is_retried_then_fails_the_publish() {
    let (client, name) = bus().await;
    // EventBridge refuses an entry without a source inside a successful response.
    let refused = BusEvent {
        source: String::new(),
        ..order_created(1)
    };
    let err = EventBridgeBus::new(client, &name)
        .publish(&[order_created(0), refused])
        .await
        .unwrap_err();
    assert!(
        err.message.contains("refused 1 events") && err.message.contains("after 5 attempts"),
        "{err}"
    );
    assert!(
        err.message.contains("OrderCreated (InvalidArgument"),
        "{err}"
    );
    assert!(err.message.contains(&name), "{err}");
}

#[tokio::test]
async fn publishing_to_a_missing_bus_fails_naming_it() {
    let (client, _) = bus().await;
    let err = EventBridgeBus::new(client, "no-such-bus")
        .publish(&[order_created(0)])
        .await
        .unwrap_err();
    assert!(err.message.contains("no-such-bus"), "{err}");
}

#[tokio::test]
async fn a_waiting_task_is_resumed() {
    // moto accepts any token; the refusals of ended executions are unit-tested.
    let client = aws_sdk_sfn::Client::new(&support::config().await);
    let callback = StepFunctionsCallback::new(client);
    callback
        .resume(
            "token-1",
            &TaskResult::Success(json!({"status": "DELIVERED"})),
        )
        .await
        .unwrap();
    let canceled = TaskResult::Failure {
        error: "DeliveryCanceled".into(),
        cause: "the delivery was canceled".into(),
    };
    callback.resume("token-2", &canceled).await.unwrap();
}

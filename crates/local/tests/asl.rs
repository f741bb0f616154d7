//! The state machine interpreter: the repository's workflow file end to end, and the
//! States language semantics on small machines, against scripted functions.

use async_trait::async_trait;
use ewf_domain::entry::FunctionError;
use ewf_local::asl::{AslError, ExecutionStatus, Executions, StateMachine, TaskInvoker};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const WORKFLOW: &str = include_str!("../../../statemachine/order-workflow.asl.json");

fn workflow() -> StateMachine {
    let substitutions = [
        "Order",
        "Inventory",
        "Customer",
        "Delivery",
        "Payment",
        "Add",
    ]
    .into_iter()
    .map(|name| (format!("{name}FunctionArn"), name.to_lowercase()))
    .collect();
    StateMachine::parse(WORKFLOW, &substitutions)
        .unwrap()
        .named("OrderWorkflow")
}

fn machine(definition: Value) -> StateMachine {
    StateMachine::parse(&definition.to_string(), &HashMap::new()).unwrap()
}

fn refusal(definition: Value) -> String {
    StateMachine::parse(&definition.to_string(), &HashMap::new())
        .unwrap_err()
        .to_string()
}

fn executions() -> Executions {
    Executions::in_memory().unwrap().with_time_scale(0.0)
}

fn function_error(error_type: &str, message: &str) -> FunctionError {
    FunctionError {
        error_type: error_type.to_owned(),
        error_message: message.to_owned(),
    }
}

type Handler = Box<dyn Fn(&str, &Value, usize) -> Result<Value, FunctionError> + Send + Sync>;

/// Records every call and answers with a handler given the function, the payload and
/// how many times this function + action was called before.
struct Scripted {
    handler: Handler,
    calls: Mutex<Vec<(String, Value)>>,
}

impl Scripted {
    fn new(
        handler: impl Fn(&str, &Value, usize) -> Result<Value, FunctionError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            handler: Box::new(handler),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// `function:action` of every call, in order.
    fn actions(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|(function, payload)| action_of(function, payload))
            .collect()
    }

    fn token(&self) -> String {
        let calls = self.calls();
        let (_, payload) = calls
            .iter()
            .rev()
            .find(|(_, payload)| payload["action"] == "await")
            .unwrap();
        payload["taskToken"].as_str().unwrap().to_owned()
    }
}

fn action_of(function: &str, payload: &Value) -> String {
    format!(
        "{function}:{}",
        payload["action"].as_str().unwrap_or_default()
    )
}

#[async_trait]
impl TaskInvoker for Scripted {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        let key = action_of(function, &payload);
        let before = {
            let mut calls = self.calls.lock().unwrap();
            let before = calls.iter().filter(|(f, p)| action_of(f, p) == key).count();
            calls.push((function.to_owned(), payload.clone()));
            before
        };
        (self.handler)(function, &payload, before)
    }
}

/// The services as the workflow sees them: each step grows the order it is given.
fn services(function: &str, payload: &Value) -> Result<Value, FunctionError> {
    let mut order = payload["order"].clone();
    match (function, payload["action"].as_str().unwrap_or_default()) {
        ("add", _) => {
            let cents: i64 = payload["numbers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|number| {
                    (number.as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64
                })
                .sum();
            return Ok(json!({ "sum": format!("{}.{:02}", cents / 100, cents % 100) }));
        }
        ("delivery", "await") => return Ok(json!({ "stored": true })),
        ("inventory", "describe") => {
            order["item"] = json!({ "itemId": order["itemId"], "price": "399.99" })
        }
        ("customer", "describe") => {
            order["customer"] = json!({ "address": "Buckingham Palace, London SW1A 1AA, UK" })
        }
        ("delivery", "estimate") => order["delivery"] = json!({ "price": "12.34" }),
        ("payment", "pay") => {
            order["payment"] = json!({ "paymentId": "payment-1", "amount": payload["amount"] })
        }
        ("order", "advance") => order["orderStatus"] = payload["status"].clone(),
        ("order", "fail") => order["failure"] = payload["error"].clone(),
        _ => {}
    }
    Ok(order)
}

fn saga() -> Scripted {
    Scripted::new(|function, payload, _| services(function, payload))
}

/// The sample input of `data/`, as a user starts the workflow from the console.
fn input() -> Value {
    serde_json::from_str(include_str!("../../../data/orderCreateWorkflowInput.json")).unwrap()
}

fn event_types(executions: &Executions, name: &str) -> Vec<String> {
    executions
        .history(name)
        .unwrap()
        .into_iter()
        .map(|event| event.event_type)
        .collect()
}

const HAPPY_PATH: [&str; 10] = [
    "order:create",
    "inventory:reserve",
    "inventory:describe",
    "customer:describe",
    "delivery:estimate",
    "add:",
    "payment:pay",
    "inventory:remove",
    "delivery:start",
    "order:advance",
];

#[tokio::test]
async fn the_workflow_runs_to_its_token_then_resumes_to_success() {
    let (machine, executions, functions) = (workflow(), executions(), saga());
    let waiting = executions
        .start(&machine, &functions, "order-1", input())
        .await
        .unwrap();
    assert_eq!(waiting.status, ExecutionStatus::Running);
    let mut expected: Vec<String> = HAPPY_PATH.iter().map(|action| action.to_string()).collect();
    expected.push("delivery:await".to_owned());
    assert_eq!(functions.actions(), expected);

    let calls = functions.calls();
    assert_eq!(
        calls[0].1["order"],
        json!({ "customerId": "customer-1", "itemId": "item-1", "orderId": "order-1" })
    );
    assert_eq!(calls[5].1, json!({ "numbers": ["399.99", "12.34"] }));
    assert_eq!(calls[6].1["amount"], "412.33");
    assert_eq!(calls[6].1["order"]["pricing"], json!({ "total": "412.33" }));
    assert_eq!(calls[9].1["status"], "DELIVERING");

    let done = executions
        .send_task_success(
            &machine,
            &functions,
            &functions.token(),
            json!({ "status": "DELIVERED" }),
        )
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let last = functions.calls().pop().unwrap();
    assert_eq!(
        (last.1["action"].as_str(), last.1["status"].as_str()),
        (Some("advance"), Some("DELIVERED"))
    );
    assert_eq!(last.1["order"]["outcome"], json!({ "status": "DELIVERED" }));
    let output = done.output.clone().unwrap();
    assert_eq!(output["orderStatus"], "DELIVERED");
    assert_eq!(output["payment"]["amount"], "412.33");

    let types = event_types(&executions, "order-1");
    let submitted = types.iter().position(|t| t == "TaskSubmitted").unwrap();
    assert_eq!(types[submitted + 1], "TaskSucceeded");
    assert_eq!(types.last().unwrap(), "ExecutionSucceeded");
    assert_eq!(executions.describe("order-1").unwrap().unwrap(), done);
}

#[tokio::test]
async fn a_canceled_delivery_returns_the_item_and_cancels_the_payment() {
    let (machine, executions, functions) = (workflow(), executions(), saga());
    executions
        .start(&machine, &functions, "order-2", input())
        .await
        .unwrap();
    let done = executions
        .send_task_failure(
            &machine,
            &functions,
            &functions.token(),
            "DeliveryCanceled",
            "the delivery was canceled",
        )
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let actions = functions.actions();
    assert_eq!(
        actions[actions.len() - 3..],
        ["inventory:return", "payment:cancel", "order:advance"]
    );
    assert_eq!(done.output.unwrap()["orderStatus"], "CANCELED");
}

#[tokio::test]
async fn catch_routes_a_typed_function_error() {
    let machine = workflow();
    let executions = executions();
    let functions = Scripted::new(|function, payload, _| match payload["action"].as_str() {
        Some("reserve") => Err(function_error("ItemNotAvailable", "item-1 has none left")),
        _ => services(function, payload),
    });
    let failed = executions
        .start(&machine, &functions, "order-3", input())
        .await
        .unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("ItemNotAvailable"));
    assert_eq!(failed.cause.as_deref(), Some("The item is not available."));
    assert_eq!(
        functions.actions(),
        ["order:create", "inventory:reserve", "order:fail"]
    );
    // The Catch put the error, with the function error as JSON cause, at $.error.
    let error = &functions.calls()[2].1["error"];
    assert_eq!(error["Error"], "ItemNotAvailable");
    let cause: Value = serde_json::from_str(error["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(
        cause,
        json!({ "errorType": "ItemNotAvailable", "errorMessage": "item-1 has none left" })
    );
}

#[tokio::test]
async fn states_all_compensates_a_failed_payment() {
    let machine = workflow();
    let executions = executions();
    let functions = Scripted::new(|function, payload, _| match payload["action"].as_str() {
        Some("pay") => Err(function_error("PaymentFailed", "card declined")),
        _ => services(function, payload),
    });
    let failed = executions
        .start(&machine, &functions, "order-4", input())
        .await
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("OrderFailed"));
    let actions = functions.actions();
    assert_eq!(
        actions[actions.len() - 3..],
        ["payment:pay", "inventory:unreserve", "order:fail"]
    );
    // ResultPath null on the compensation keeps the error for the next step.
    assert_eq!(
        functions.calls().last().unwrap().1["error"]["Error"],
        "PaymentFailed"
    );
}

#[tokio::test]
async fn every_failure_after_the_reservation_compensates_what_may_have_been_done() {
    // (the failing action, its error, the calls that follow it)
    let branches = [
        // A reservation that ended in no known way may still have happened.
        (
            "reserve",
            "States.Timeout",
            vec!["inventory:unreserve", "order:fail"],
        ),
        (
            "describe",
            "CustomerNotFound",
            vec!["inventory:unreserve", "order:fail"],
        ),
        (
            "estimate",
            "AddressNotFound",
            vec!["inventory:unreserve", "order:fail"],
        ),
        // A payment that ended in no known way may have been made: refund it.
        (
            "pay",
            "Lambda.Unknown",
            vec!["payment:cancel", "inventory:unreserve", "order:fail"],
        ),
        (
            "remove",
            "NothingReserved",
            vec!["payment:cancel", "inventory:unreserve", "order:fail"],
        ),
        (
            "start",
            "DeliveryExists",
            vec!["inventory:return", "payment:cancel", "order:fail"],
        ),
        (
            "advance",
            "OrderNotFound",
            vec!["inventory:return", "payment:cancel", "order:fail"],
        ),
    ];
    let machine = workflow();
    for (index, (failing, error, compensation)) in branches.into_iter().enumerate() {
        let executions = executions();
        let functions = Scripted::new(move |function, payload, _| {
            let action = payload["action"].as_str().unwrap_or_default();
            // `describe` of the customer, not of the item.
            let fails = action == failing && (failing != "describe" || function == "customer");
            if fails {
                Err(function_error(error, "it went wrong"))
            } else {
                services(function, payload)
            }
        });
        let name = format!("order-{index}");
        let failed = executions
            .start(&machine, &functions, &name, input())
            .await
            .unwrap();
        assert_eq!(failed.error.as_deref(), Some("OrderFailed"), "{failing}");
        let actions = functions.actions();
        let after = actions
            .iter()
            .rposition(|action| action.ends_with(&format!(":{failing}")))
            .unwrap();
        assert_eq!(actions[after + 1..], compensation, "{failing}");
        // The order is recorded as failed with the error that started it.
        let (_, recorded) = functions.calls().pop().unwrap();
        assert_eq!(recorded["error"]["Error"], error, "{failing}");
    }
}

#[tokio::test]
async fn a_compensation_that_keeps_failing_does_not_stop_the_others() {
    let machine = workflow();
    let executions = executions();
    let functions = Scripted::new(|function, payload, _| match payload["action"].as_str() {
        Some("pay") => Err(function_error("PaymentFailed", "card declined")),
        Some("unreserve") => Err(function_error("ServiceUnavailable", "still down")),
        _ => services(function, payload),
    });
    let failed = executions
        .start(&machine, &functions, "order-c", input())
        .await
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("OrderFailed"));
    let actions = functions.actions();
    // Retried (3 more attempts), then the failure is recorded all the same.
    assert_eq!(
        actions[actions.len() - 5..],
        [
            "inventory:unreserve",
            "inventory:unreserve",
            "inventory:unreserve",
            "inventory:unreserve",
            "order:fail"
        ]
    );
    let (_, last) = functions.calls().pop().unwrap();
    assert_eq!(last["error"]["Error"], "PaymentFailed");
    // The release it could not do travels with the order to be recorded.
    assert_eq!(last["order"]["releaseError"]["Error"], "ServiceUnavailable");
}

#[tokio::test]
async fn a_reply_is_for_its_own_task_only() {
    // Two waits in a row: the first one's reply must not answer the second.
    let waiting = |next: Value| {
        let mut state = json!({
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}},
        });
        state
            .as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        state
    };
    let machine = machine(json!({
        "StartAt": "First",
        "States": {
            "First": waiting(json!({"ResultPath": "$.first", "Next": "Between"})),
            "Between": {"Type": "Pass", "Next": "Second"},
            "Second": waiting(json!({"ResultPath": "$.second", "End": true})),
        }
    }));
    let executions = executions();
    let functions = Scripted::new(|_, _, _| Ok(json!(null)));
    executions
        .start(&machine, &functions, "twice", json!({}))
        .await
        .unwrap();
    let token = |n: usize| functions.calls()[n].1["token"].as_str().unwrap().to_owned();
    let after_first = executions
        .send_task_success(&machine, &functions, &token(0), json!("one"))
        .await
        .unwrap();
    assert_eq!(after_first.status, ExecutionStatus::Running);
    assert_eq!(functions.calls().len(), 2);
    assert_ne!(token(0), token(1));
    let done = executions
        .send_task_success(&machine, &functions, &token(1), json!("two"))
        .await
        .unwrap();
    assert_eq!(done.output, Some(json!({"first": "one", "second": "two"})));
}

#[tokio::test]
async fn retry_retries_a_transient_error_then_succeeds() {
    let machine = workflow();
    let executions = executions();
    let functions = Scripted::new(
        |function, payload, before| match payload["action"].as_str() {
            Some("create") if before < 2 => Err(function_error("ServiceUnavailable", "try again")),
            _ => services(function, payload),
        },
    );
    let waiting = executions
        .start(&machine, &functions, "order-5", input())
        .await
        .unwrap();
    assert_eq!(waiting.status, ExecutionStatus::Running);
    assert_eq!(
        functions.actions()[..4],
        [
            "order:create",
            "order:create",
            "order:create",
            "inventory:reserve"
        ]
    );
    let types = event_types(&executions, "order-5");
    let create: Vec<&str> = types[4..14].iter().map(String::as_str).collect();
    assert_eq!(
        create,
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited"
        ]
    );
}

#[tokio::test]
async fn retries_run_out_after_max_attempts() {
    let machine = workflow();
    let executions = executions();
    let functions = Scripted::new(|_, _, _| Err(function_error("ServiceUnavailable", "down")));
    let failed = executions
        .start(&machine, &functions, "order-6", input())
        .await
        .unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("ServiceUnavailable"));
    // One attempt and MaxAttempts (3) retries.
    assert_eq!(functions.actions(), ["order:create"; 4]);
}

#[tokio::test]
async fn retry_waits_with_backoff_when_not_scaled() {
    let machine = machine(json!({
        "StartAt": "T",
        "States": {"T": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f"},
            "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 3.0, "MaxDelaySeconds": 2}],
            "End": true
        }}
    }));
    let executions = Executions::in_memory().unwrap().with_time_scale(0.05);
    let functions = Scripted::new(|_, _, before| {
        if before < 2 {
            Err(function_error("Busy", ""))
        } else {
            Ok(json!(1))
        }
    });
    let started = std::time::Instant::now();
    let waiting = executions
        .start(&machine, &functions, "e", json!({}))
        .await
        .unwrap();
    // The driver does not sleep through the delay: it stores the execution with its
    // time to retry and lets go of it.
    assert_eq!(waiting.status, ExecutionStatus::Running);
    assert_eq!(functions.calls().len(), 1);
    assert!(executions.next_wake().unwrap().is_some());
    let done = loop {
        let resumed = executions.resume_due(&machine, &functions).await.unwrap();
        if let Some(done) = resumed
            .into_iter()
            .find(|summary| summary.status != ExecutionStatus::Running)
        {
            break done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(functions.calls().len(), 3);
    // 1 s, then 3 s capped to 2 s: 3 s scaled by 0.05.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_waiting_execution_survives_the_process() {
    let path = std::env::temp_dir().join(format!("ewf-asl-{}.sqlite", ulid::Ulid::new()));
    let functions = saga();
    {
        let executions = Executions::open(&path).unwrap().with_time_scale(0.0);
        let waiting = executions
            .start(&workflow(), &functions, "order-7", input())
            .await
            .unwrap();
        assert_eq!(waiting.status, ExecutionStatus::Running);
    }
    // A new process: a new store on the same file and a freshly parsed machine.
    let executions = Executions::open(&path).unwrap().with_time_scale(0.0);
    let waiting = executions.describe("order-7").unwrap().unwrap();
    assert_eq!(waiting.status, ExecutionStatus::Running);
    let done = executions
        .send_task_success(
            &workflow(),
            &functions,
            &functions.token(),
            json!({ "status": "DELIVERED" }),
        )
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(
        functions
            .actions()
            .iter()
            .filter(|action| *action == "order:create")
            .count(),
        1
    );
    drop(executions);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A delivery service that resumes the execution from inside the invocation that gave
/// it the token, as the real one does when the delivery has already finished.
struct Reentrant {
    executions: Executions,
    machine: StateMachine,
    calls: Scripted,
    resumed: Mutex<Option<Result<ExecutionStatus, String>>>,
}

#[async_trait]
impl TaskInvoker for Reentrant {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        let reply = self.calls.invoke(function, payload.clone()).await;
        if payload["action"] == "await" {
            let token = payload["taskToken"].as_str().unwrap_or_default();
            let resumed = self
                .executions
                .send_task_success(&self.machine, self, token, json!({ "status": "DELIVERED" }))
                .await;
            *self.resumed.lock().unwrap() = Some(
                resumed
                    .map(|summary| summary.status)
                    .map_err(|err| err.to_string()),
            );
        }
        reply
    }
}

#[tokio::test]
async fn a_token_returned_during_its_own_invocation_resumes_once() {
    let service = Arc::new(Reentrant {
        executions: executions(),
        machine: workflow(),
        calls: saga(),
        resumed: Mutex::new(None),
    });
    let done = service
        .executions
        .start(&service.machine, service.as_ref(), "order-8", input())
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    // The reply was stored while the execution was being driven, and picked up by its driver.
    assert_eq!(
        *service.resumed.lock().unwrap(),
        Some(Ok(ExecutionStatus::Running))
    );
    let actions = service.calls.actions();
    assert_eq!(
        actions
            .iter()
            .filter(|action| *action == "order:advance")
            .count(),
        2
    );
    assert_eq!(actions.last().unwrap(), "order:advance");
    let types = event_types(&service.executions, "order-8");
    assert_eq!(
        types.iter().filter(|t| *t == "ExecutionSucceeded").count(),
        1
    );
}

#[tokio::test]
async fn tokens_are_single_use() {
    let (machine, executions, functions) = (workflow(), executions(), saga());
    executions
        .start(&machine, &functions, "order-9", input())
        .await
        .unwrap();
    let token = functions.token();
    let unknown = executions
        .send_task_success(&machine, &functions, "no-such-token", json!({}))
        .await;
    assert!(matches!(unknown, Err(AslError::TaskDoesNotExist)));
    executions
        .send_task_success(
            &machine,
            &functions,
            &token,
            json!({ "status": "DELIVERED" }),
        )
        .await
        .unwrap();
    let again = executions
        .send_task_success(
            &machine,
            &functions,
            &token,
            json!({ "status": "DELIVERED" }),
        )
        .await;
    assert!(matches!(again, Err(AslError::TaskDoesNotExist)));
}

#[tokio::test]
async fn execution_names_are_unique() {
    let (machine, executions, functions) = (workflow(), executions(), saga());
    let first = executions
        .start(&machine, &functions, "order-10", input())
        .await
        .unwrap();
    // As on AWS: the same name and input while running is the same execution.
    let again = executions
        .start(&machine, &functions, "order-10", input())
        .await
        .unwrap();
    assert_eq!(again, first);
    let other = executions
        .start(
            &machine,
            &functions,
            "order-10",
            json!({ "customerId": "c" }),
        )
        .await;
    assert!(matches!(other, Err(AslError::ExecutionAlreadyExists(name)) if name == "order-10"));
    assert_eq!(
        functions
            .actions()
            .iter()
            .filter(|action| *action == "order:create")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_task_failure_sent_for_a_token_is_caught() {
    let machine = machine(json!({
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.problem", "Next": "Done"}],
                "End": true
            },
            "Done": {"Type": "Succeed"}
        }
    }));
    let executions = executions();
    let functions = Scripted::new(|_, _, _| Ok(json!(null)));
    executions
        .start(&machine, &functions, "e", json!({"keep": 1}))
        .await
        .unwrap();
    let token = functions.calls()[0].1["token"].as_str().unwrap().to_owned();
    let done = executions
        .send_task_failure(&machine, &functions, &token, "Lost", "the van broke down")
        .await
        .unwrap();
    assert_eq!(
        done.output,
        Some(json!({"keep": 1, "problem": {"Error": "Lost", "Cause": "the van broke down"}}))
    );
}

#[tokio::test]
async fn task_timeouts_raise_states_timeout() {
    let machine = machine(json!({
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "slow"}, "TimeoutSeconds": 1,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}],
                "End": true
            },
            "TimedOut": {"Type": "Pass", "End": true}
        }
    }));
    struct Slow;
    #[async_trait]
    impl TaskInvoker for Slow {
        async fn invoke(&self, _: &str, _: Value) -> Result<Value, FunctionError> {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok(json!("late"))
        }
    }
    let executions = executions();
    let done = executions
        .start(&machine, &Slow, "e", json!({}))
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.unwrap()["Error"], "States.Timeout");
    assert!(event_types(&executions, "e").contains(&"TaskTimedOut".to_owned()));
}

#[tokio::test]
async fn a_token_timeout_and_the_machine_timeout_are_applied_when_due() {
    let waiting_task = |timeout: u64| {
        json!({
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": timeout, "End": true
        })
    };
    let task_times_out = machine(json!({"StartAt": "W", "States": {"W": waiting_task(1)}}));
    let machine_times_out =
        machine(json!({"StartAt": "W", "TimeoutSeconds": 1, "States": {"W": waiting_task(100)}}));
    let executions = executions();
    let functions = Scripted::new(|_, _, _| Ok(json!(null)));
    executions
        .start(&task_times_out, &functions, "task", json!({}))
        .await
        .unwrap();
    executions
        .start(&machine_times_out, &functions, "machine", json!({}))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let resumed = executions
        .resume_due(&task_times_out, &functions)
        .await
        .unwrap();
    assert!(resumed.iter().any(
        |summary| summary.name == "task" && summary.error.as_deref() == Some("States.Timeout")
    ));
    assert_eq!(
        executions.describe("task").unwrap().unwrap().status,
        ExecutionStatus::Failed
    );
    assert_eq!(
        executions.describe("machine").unwrap().unwrap().status,
        ExecutionStatus::TimedOut
    );
    assert_eq!(
        event_types(&executions, "machine").last().unwrap(),
        "ExecutionTimedOut"
    );
    let late = executions
        .send_task_success(
            &task_times_out,
            &functions,
            &functions.token_of(0),
            json!({}),
        )
        .await;
    assert!(matches!(late, Err(AslError::TaskDoesNotExist)));
}

impl Scripted {
    fn token_of(&self, call: usize) -> String {
        self.calls()[call].1["token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn input_and_output_processing_follows_the_spec() {
    let machine = machine(json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "InputPath": "$.data",
                "Parameters": {
                    "FunctionName": "echo",
                    "Payload": {
                        "value.$": "$.value",
                        "name.$": "$$.Execution.Name",
                        "state.$": "$$.State.Name",
                        "nested": {"list": [{"first.$": "$.list[0]"}], "fixed": 7}
                    }
                },
                "ResultSelector": {"echoed.$": "$.Payload", "code.$": "$.StatusCode"},
                "ResultPath": "$.data.result",
                "OutputPath": "$.data",
                "Next": "Keep"
            },
            "Keep": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "echo", "Payload.$": "$.value"},
                "ResultPath": null,
                "Next": "Shape"
            },
            "Shape": {
                "Type": "Pass",
                "Parameters": {
                    "text.$": "States.Format('{} is {}', $.value, $.result.code)",
                    "parsed.$": "States.StringToJson('[1, 2]')",
                    "json.$": "States.JsonToString($.list)",
                    "pair.$": "States.Array($.value, $$.Execution.Name)"
                },
                "ResultPath": "$.shaped",
                "OutputPath": "$.shaped",
                "Next": "Drop"
            },
            "Drop": {"Type": "Pass", "InputPath": null, "Result": {"r": 1}, "ResultPath": "$.added", "End": true}
        }
    }));
    let executions = executions();
    let functions = Scripted::new(|_, payload, _| Ok(payload.clone()));
    let input = json!({"data": {"value": "v", "list": [10, 20]}, "other": true});
    let done = executions
        .start(&machine, &functions, "io", input)
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");

    let calls = functions.calls();
    assert_eq!(
        calls[0].1,
        json!({"value": "v", "name": "io", "state": "Call", "nested": {"list": [{"first": 10}], "fixed": 7}})
    );
    // ResultPath null: the task's result is dropped and its input passes on.
    assert_eq!(calls[1].1, json!("v"));
    let expected_shaped =
        json!({"text": "v is 200", "parsed": [1, 2], "json": "[10,20]", "pair": ["v", "io"]});
    // InputPath null gives the Pass `{}`, but ResultPath writes into its raw input.
    let mut expected = expected_shaped;
    expected["added"] = json!({"r": 1});
    assert_eq!(done.output, Some(expected));
    let history = executions.history("io").unwrap();
    let exited = history
        .iter()
        .find(|event| event.event_type == "TaskStateExited")
        .unwrap();
    assert_eq!(
        exited.details["output"],
        json!({"value": "v", "list": [10, 20], "result": {"echoed": calls[0].1.clone(), "code": 200}})
    );
}

#[tokio::test]
async fn history_records_events_in_order() {
    let machine = machine(json!({
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Result": {"n": 2}, "Next": "Call"},
            "Call": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "double", "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Next": "Big?"
            },
            "Big?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Wait"}],
                "Default": "Small"
            },
            "Small": {"Type": "Fail", "Error": "TooSmall"},
            "Wait": {"Type": "Wait", "Seconds": 60, "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    }));
    let executions = executions();
    let functions =
        Scripted::new(|_, payload, _| Ok(json!({"n": payload["n"].as_i64().unwrap() * 2})));
    let done = executions
        .start(&machine, &functions, "h", json!({}))
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"n": 4})));
    let history = executions.history("h").unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "WaitStateEntered",
            "WaitStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (index, event) in history.iter().enumerate() {
        assert_eq!(
            (event.id, event.previous_event_id),
            (index as i64 + 1, index as i64)
        );
    }
    assert_eq!(history[1].details["name"], "Start");
    assert_eq!(history[2].details["output"], json!({"n": 2}));
    assert_eq!(history[4].details["resource"], "invoke");
}

#[tokio::test]
async fn a_fail_state_and_an_unmatched_choice_fail_the_execution() {
    let machine = machine(json!({
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Choice", "Choices": [
                {"And": [{"Variable": "$.a", "IsPresent": true}, {"Not": {"Variable": "$.a", "BooleanEquals": false}}], "Next": "Stop"}
            ]},
            "Stop": {"Type": "Fail", "Error": "Stopped", "Cause": "a was true"}
        }
    }));
    let executions = executions();
    let functions = saga();
    let stopped = executions
        .start(&machine, &functions, "a", json!({"a": true}))
        .await
        .unwrap();
    assert_eq!(
        (stopped.error.as_deref(), stopped.cause.as_deref()),
        (Some("Stopped"), Some("a was true"))
    );
    assert_eq!(
        event_types(&executions, "a")[3..],
        ["FailStateEntered", "ExecutionFailed"]
    );
    let unmatched = executions
        .start(&machine, &functions, "b", json!({"a": false}))
        .await
        .unwrap();
    assert_eq!(unmatched.error.as_deref(), Some("States.NoChoiceMatched"));
}

#[test]
fn the_repository_workflow_parses_with_its_substitutions() {
    assert_eq!(workflow().name(), "OrderWorkflow");
    let missing = StateMachine::parse(WORKFLOW, &HashMap::new()).unwrap_err();
    assert!(matches!(missing, AslError::Substitution(_)), "{missing}");
}

#[test]
fn unsupported_features_are_refused_naming_the_state() {
    let with_state =
        |state: Value| json!({"StartAt": "S", "States": {"S": state, "End": {"Type": "Succeed"}}});
    let cases = [
        (
            with_state(json!({"Type": "Map", "ItemProcessor": {}, "End": true})),
            "Type Map",
        ),
        (
            with_state(json!({"Type": "Parallel", "Branches": [], "End": true})),
            "Type Parallel",
        ),
        (
            with_state(
                json!({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "Parameters": {}, "End": true}),
            ),
            "Resource arn:aws:states:::sqs:sendMessage",
        ),
        (
            with_state(
                json!({"Type": "Pass", "Parameters": {"id.$": "States.UUID()"}, "End": true}),
            ),
            "States.UUID",
        ),
        (
            with_state(json!({"Type": "Pass", "Assign": {"x": 1}, "End": true})),
            "field Assign",
        ),
        (
            with_state(
                json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f", "InvocationType": "Event"}, "End": true}),
            ),
            "Parameters.InvocationType",
        ),
        (
            with_state(json!({"Type": "Pass", "InputPath": "$.items[*]", "End": true})),
            "$.items[*]",
        ),
        (
            with_state(
                json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "f"}, "End": true}),
            ),
            "$$.Task.Token",
        ),
        (
            with_state(
                json!({"Type": "Choice", "Choices": [{"Variable": "$.a", "StringContains": "x", "Next": "End"}]}),
            ),
            "StringContains",
        ),
    ];
    for (definition, feature) in cases {
        let refused = refusal(definition);
        assert!(refused.starts_with("state \"S\""), "{refused}");
        assert!(
            refused.contains(feature),
            "{refused} does not mention {feature}"
        );
    }
    let jsonata = refusal(
        json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
    );
    assert!(jsonata.contains("QueryLanguage JSONata"), "{jsonata}");
}

#[test]
fn malformed_definitions_are_refused() {
    let cases = [
        (
            json!({"StartAt": "Nope", "States": {"S": {"Type": "Succeed"}}}),
            "StartAt",
        ),
        (
            json!({"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "Gone"}}}),
            "Gone",
        ),
        (
            json!({"StartAt": "S", "States": {"S": {"Type": "Pass"}}}),
            "Next and End",
        ),
        (
            json!({"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f"}, "End": true,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}, {"ErrorEquals": ["X"], "Next": "S"}]}}}),
            "States.ALL",
        ),
    ];
    for (definition, expected) in cases {
        let refused = refusal(definition);
        assert!(
            refused.contains(expected),
            "{refused} does not mention {expected}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_drive_executions_on_one_file() {
    let path = std::env::temp_dir().join(format!("ewf-asl-{}.sqlite", ulid::Ulid::new()));
    let processes = [
        Arc::new(Executions::open(&path).unwrap()),
        Arc::new(Executions::open(&path).unwrap()),
    ];
    let functions = Arc::new(saga());
    let machine = Arc::new(workflow());
    let runs: Vec<_> = (0..8)
        .map(|index| {
            let (executions, functions, machine) = (
                processes[index % 2].clone(),
                functions.clone(),
                machine.clone(),
            );
            tokio::spawn(async move {
                let name = format!("order-{index}");
                executions
                    .start(&machine, functions.as_ref(), &name, input())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap().status, ExecutionStatus::Running);
    }
    // Each process resumes the executions the other one started.
    for index in 0..8 {
        let name = format!("order-{index}");
        let token = functions
            .calls()
            .iter()
            .find(|(_, payload)| {
                payload["action"] == "await" && payload["order"]["orderId"] == name
            })
            .map(|(_, payload)| payload["taskToken"].as_str().unwrap().to_owned())
            .unwrap();
        let done = processes[(index + 1) % 2]
            .send_task_success(
                &machine,
                functions.as_ref(),
                &token,
                json!({ "status": "DELIVERED" }),
            )
            .await
            .unwrap();
        assert_eq!(done.status, ExecutionStatus::Succeeded);
    }
    assert_eq!(
        functions
            .actions()
            .iter()
            .filter(|action| *action == "order:create")
            .count(),
        8
    );
    drop(processes);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

//! The AWS target against moto's server: a CloudFormation stack created there (tables,
//! a bus, a function, a state machine), then `ewf` reads its outputs, seeds its tables,
//! changes its function's environment, lists an order's stored events, and starts and
//! follows a workflow order. Uses EWF_MOTO_ENDPOINT when the test command started moto;
//! otherwise starts moto_server from the project's .venv and stops it at the end.

mod common;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use common::{Run, ewf, run};
use ewf_aws::{DynamoEvents, DynamoInventory, DynamoOrders};
use ewf_domain::ports::{EventStore, InventoryStore, OrderStore};
use ewf_domain::{CustomerId, ItemId, Mode, Order, OrderId, OrderStatus, StoredEvent};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

/// moto's server: the test command's, or one started here and killed when dropped.
struct Moto {
    endpoint: String,
    server: Option<Child>,
}

impl Moto {
    fn start() -> Self {
        if let Ok(endpoint) = std::env::var("EWF_MOTO_ENDPOINT") {
            return Self {
                endpoint,
                server: None,
            };
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup-tools.sh",
            python.display()
        );
        let server = Command::new(python)
            .arg(root.join("scripts/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            server: Some(server),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// The test's view of the stack: its outputs and SDK clients on moto.
struct Stack {
    name: String,
    endpoint: String,
    config: SdkConfig,
    outputs: HashMap<String, String>,
    dir: tempfile::TempDir,
}

fn table(keys: &[(&str, &str)]) -> Value {
    let definitions: Vec<Value> = keys
        .iter()
        .map(|(name, _)| json!({"AttributeName": name, "AttributeType": "S"}))
        .collect();
    let schema: Vec<Value> = keys
        .iter()
        .map(|(name, kind)| json!({"AttributeName": name, "KeyType": kind}))
        .collect();
    json!({
        "Type": "AWS::DynamoDB::Table",
        "Properties": {"BillingMode": "PAY_PER_REQUEST", "AttributeDefinitions": definitions, "KeySchema": schema}
    })
}

/// Tables as the SAM template makes them, a bus, one function with an environment, and
/// a state machine of one Pass state; the outputs `ewf` reads.
fn template() -> Value {
    let mut event_store = table(&[("who", "HASH"), ("timeWhat", "RANGE")]);
    event_store["Properties"]["AttributeDefinitions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"AttributeName": "orderId", "AttributeType": "S"}));
    event_store["Properties"]["GlobalSecondaryIndexes"] = json!([{
        "IndexName": "ByOrder",
        "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}, {"AttributeName": "timeWhat", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"}
    }]);
    let resources = json!({
        "CustomerTable": table(&[("customerId", "HASH")]),
        "InventoryTable": table(&[("itemId", "HASH")]),
        "PaymentTable": table(&[("paymentId", "HASH")]),
        "DeliveryTable": table(&[("customerId", "HASH"), ("orderId", "RANGE")]),
        "OrderTable": table(&[("customerId", "HASH"), ("orderId", "RANGE")]),
        "LedgerTable": table(&[("stepKey", "HASH")]),
        "EventStoreTable": event_store,
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Fn::Sub": "AppEventBus-${AWS::StackName}"}}},
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}, "Action": "sts:AssumeRole"}]
            }}
        },
        "PaymentFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
                "Environment": {"Variables": {"PAYMENT_FAIL_PROBABILITY": "0.2", "LOG_LEVEL": "info"}}
            }
        },
        "EventsDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "AsyncFailureQueue": {"Type": "AWS::SQS::Queue"},
        "StateMachine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "DefinitionString": json!({"StartAt": "Init", "States": {"Init": {"Type": "Pass", "End": true}}}).to_string()
            }
        }
    });
    let reference = |name: &str| json!({"Value": {"Ref": name}});
    let mut outputs = serde_json::Map::new();
    for name in [
        "CustomerTable",
        "InventoryTable",
        "PaymentTable",
        "DeliveryTable",
        "OrderTable",
        "EventStoreTable",
        "LedgerTable",
    ] {
        outputs.insert(name.into(), reference(name));
    }
    // Ref on a queue is its URL.
    for name in ["EventsDeadLetterQueue", "AsyncFailureQueue"] {
        outputs.insert(format!("{name}Url"), reference(name));
    }
    // moto answers Ref on a bus with an object's repr; the name is known anyway.
    outputs.insert(
        "EventBusName".into(),
        json!({"Value": {"Fn::Sub": "AppEventBus-${AWS::StackName}"}}),
    );
    outputs.insert("StateMachineArn".into(), reference("StateMachine"));
    outputs.insert("PaymentFunction".into(), reference("PaymentFunction"));
    // Nothing listens there: the tests never call the HTTP API.
    outputs.insert("HttpApiUrl".into(), json!({"Value": "http://127.0.0.1:9/"}));
    json!({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs})
}

impl Stack {
    async fn create(moto: &Moto, name: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&moto.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await;
        let cloudformation = aws_sdk_cloudformation::Client::new(&config);
        cloudformation
            .create_stack()
            .stack_name(name)
            .template_body(template().to_string())
            .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam)
            .send()
            .await
            .unwrap();
        let described = cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .unwrap();
        let stack = &described.stacks()[0];
        assert_eq!(
            stack.stack_status().map(|status| status.as_str()),
            Some("CREATE_COMPLETE"),
            "{stack:?}"
        );
        let outputs = stack
            .outputs()
            .iter()
            .map(|output| {
                (
                    output.output_key().unwrap().to_owned(),
                    output.output_value().unwrap().to_owned(),
                )
            })
            .collect();
        Self {
            name: name.into(),
            endpoint: moto.endpoint.clone(),
            config,
            outputs,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn output(&self, key: &str) -> &str {
        &self.outputs[key]
    }

    /// `ewf` on this stack, with test credentials and no local AWS configuration.
    fn command(&self) -> Command {
        self.command_on(&self.name)
    }

    fn command_on(&self, stack: &str) -> Command {
        let mut command = ewf(self.dir.path());
        let nowhere = self.dir.path().join("no-aws-config");
        command
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", &nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .args([
                "--stack",
                stack,
                "--region",
                REGION,
                "--endpoint-url",
                &self.endpoint,
            ]);
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.command(), args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(&[args, &["--output", "json"]].concat());
        run.expect_success();
        run.json()
    }

    fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    fn inventory(&self) -> DynamoInventory {
        DynamoInventory::new(
            self.dynamo(),
            self.output("InventoryTable"),
            self.output("LedgerTable"),
        )
    }

    fn orders(&self) -> DynamoOrders {
        DynamoOrders::new(
            self.dynamo(),
            self.output("OrderTable"),
            self.output("LedgerTable"),
        )
    }

    async fn execution_names(&self) -> Vec<String> {
        aws_sdk_sfn::Client::new(&self.config)
            .list_executions()
            .state_machine_arn(self.output("StateMachineArn"))
            .send()
            .await
            .unwrap()
            .executions()
            .iter()
            .map(|execution| execution.name().to_owned())
            .collect()
    }

    /// The first execution of the state machine not named in `known`, once started.
    async fn new_execution(&self, known: &[String]) -> aws_sdk_sfn::types::ExecutionListItem {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = sfn
                .list_executions()
                .state_machine_arn(self.output("StateMachineArn"))
                .send()
                .await
                .unwrap();
            if let Some(execution) = listed
                .executions()
                .iter()
                .find(|execution| !known.iter().any(|name| name == execution.name()))
            {
                return execution.clone();
            }
            assert!(Instant::now() < deadline, "no execution was started");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn available(&self, item: &str) -> i64 {
        self.inventory()
            .get(&ItemId::parse(item).unwrap())
            .await
            .unwrap()
            .unwrap()
            .available
    }
}

fn order(mode: Mode, order_id: &OrderId, status: OrderStatus) -> Order {
    let now = chrono::Utc::now();
    Order {
        customer_id: CustomerId::parse("customer-1").unwrap(),
        order_id: order_id.clone(),
        mode,
        order_status: status,
        item_id: ItemId::parse("item-1").unwrap(),
        item_price: None,
        delivery_price: None,
        total_price: None,
        payment_id: None,
        delivery_address: None,
        failure_reason: None,
        order_date: now,
        update_date: now,
    }
}

#[tokio::test]
async fn the_aws_target_works_on_a_stack_in_moto() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, &format!("ewf-cli-{}", std::process::id())).await;
    stack_outputs_are_read(&stack);
    seed_fills_the_tables_and_keeps_stock(&stack).await;
    set_fail_probability_merges_into_the_function_environment(&stack).await;
    events_lists_the_stored_events_of_an_order(&stack).await;
    a_workflow_order_is_started_and_followed(&stack).await;
    an_order_that_does_not_settle_in_time_is_still_printed(&stack).await;
    a_delivery_event_goes_to_the_bus(&stack).await;
    dead_letters_are_listed_and_redriven_to_the_bus(&stack).await;
    a_missing_stack_is_a_configuration_error(&stack);
}

fn stack_outputs_are_read(stack: &Stack) {
    let outputs = stack.json(&["stack"]);
    assert_eq!(outputs["outputs"]["StackName"], stack.name.as_str());
    assert_eq!(outputs["outputs"]["Region"], REGION);
    for key in [
        "CustomerTable",
        "OrderTable",
        "EventStoreTable",
        "StateMachineArn",
        "PaymentFunction",
    ] {
        assert_eq!(outputs["outputs"][key], stack.output(key), "{key}");
    }
}

async fn seed_fills_the_tables_and_keeps_stock(stack: &Stack) {
    let first = stack.json(&["seed"]);
    // Every document names the stack it was read from.
    let target = format!("stack {} ({REGION})", stack.name);
    assert_eq!(
        first,
        json!({"customers": 3, "itemsWritten": 3, "itemsKept": 0, "target": target})
    );
    let customers = stack
        .dynamo()
        .scan()
        .table_name(stack.output("CustomerTable"))
        .send()
        .await
        .unwrap();
    assert_eq!(customers.count(), 3);
    assert_eq!(stack.available("item-2").await, 5);

    // Stock that moved is kept by a plain seed and restored by --reset.
    let mut item = stack
        .inventory()
        .get(&ItemId::parse("item-2").unwrap())
        .await
        .unwrap()
        .unwrap();
    item.available = 1;
    stack.inventory().put(&item, true).await.unwrap();
    assert_eq!(
        stack.json(&["seed"]),
        json!({"customers": 3, "itemsWritten": 0, "itemsKept": 3, "target": target})
    );
    assert_eq!(stack.available("item-2").await, 1);
    assert_eq!(stack.json(&["seed", "--reset"])["itemsWritten"], 3);
    assert_eq!(stack.available("item-2").await, 5);
}

async fn set_fail_probability_merges_into_the_function_environment(stack: &Stack) {
    assert_eq!(
        stack.json(&["set-fail-probability", "0.7"])["probability"],
        0.7
    );
    let lambda = aws_sdk_lambda::Client::new(&stack.config);
    let environment = |config: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput| {
        config.environment.and_then(|environment| environment.variables).unwrap_or_default()
    };
    let function = stack.output("PaymentFunction");
    let variables = environment(
        lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(
        variables
            .get("PAYMENT_FAIL_PROBABILITY")
            .map(String::as_str),
        Some("0.7")
    );
    assert_eq!(variables.get("LOG_LEVEL").map(String::as_str), Some("info"));

    stack.run(&["set-fail-probability", "2"]).expect_error(2);
    let unchanged = environment(
        lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(unchanged, variables);
}

async fn events_lists_the_stored_events_of_an_order(stack: &Stack) {
    let store = DynamoEvents::new(stack.dynamo(), stack.output("EventStoreTable"));
    let order_id = "01JCLIEVENTS0000000000000A";
    let start = chrono::Utc::now();
    // Stored out of order: the timeline comes back in time order.
    for (offset, detail_type) in [
        (2, "ItemDescribed"),
        (0, "OrderCreated"),
        (1, "ItemReserved"),
    ] {
        let time = start + chrono::Duration::milliseconds(offset);
        let event = StoredEvent {
            who: "C#customer-1".into(),
            time_what: format!(
                "{}#{detail_type}#e-{offset}",
                time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
            event_id: format!("e-{offset}"),
            digest: format!("digest-{offset}"),
            event_time: time,
            event_source: "Order".into(),
            detail_type: detail_type.into(),
            event_detail:
                json!({"customerId": "customer-1", "orderId": order_id, "itemId": "item-1"})
                    .to_string(),
            order_id: Some(order_id.into()),
        };
        assert!(store.append(&event).await.unwrap());
    }
    let timeline = stack.json(&["events", "--order", order_id]);
    assert_eq!(
        (timeline["mode"].as_str(), timeline["customerId"].as_str()),
        (Some("events"), Some("customer-1"))
    );
    let types: Vec<&str> = timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderCreated", "ItemReserved", "ItemDescribed"]);
    assert_eq!(timeline["entries"][0]["detail"]["itemId"], "item-1");

    let unknown = stack.run(&["events", "--order", "01JCLIUNKNOWN0000000000000"]);
    assert!(
        unknown
            .expect_error(3)
            .contains("01JCLIUNKNOWN0000000000000")
    );
}

/// `ewf order create --mode workflow --wait` starts an execution named by a new order
/// id and follows the order table; the test plays the state machine's part and records
/// the order in delivery.
async fn a_workflow_order_is_started_and_followed(stack: &Stack) {
    let child = stack
        .command()
        .args([
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "workflow",
            "--wait",
            "--timeout",
            "60",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let execution = stack.new_execution(&[]).await;
    let order_id = OrderId::parse(execution.name()).unwrap();
    let described = aws_sdk_sfn::Client::new(&stack.config)
        .describe_execution()
        .execution_arn(execution.execution_arn())
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"customerId": "customer-1", "itemId": "item-1"})
    );

    let recorded = order(Mode::Workflow, &order_id, OrderStatus::Delivering);
    assert!(stack.orders().create(&recorded).await.unwrap());
    let created = common::finish(child.wait_with_output().unwrap());
    created.expect_success();
    let shown = created.json();
    assert_eq!(
        (shown["orderId"].as_str(), shown["orderStatus"].as_str()),
        (Some(order_id.as_str()), Some("DELIVERING"))
    );
    let mut described = stack.json(&["order", "describe", "customer-1", order_id.as_str()]);
    let dead_letters = described.as_object_mut().unwrap().remove("deadLetters");
    assert_eq!((described, dead_letters), (shown, Some(json!(0))));

    let history = stack.json(&["events", "--order", order_id.as_str()]);
    assert_eq!(history["mode"], "workflow");
    // moto's history is a fixed one; its details come out as the local stack's do.
    let started = &history["entries"][0];
    assert_eq!(started["type"], "ExecutionStarted");
    assert!(started["detail"]["input"].is_object(), "{history}");
    assert!(started["detail"]["roleArn"].is_string(), "{history}");
    let entered = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["type"] == "PassStateEntered")
        .unwrap_or_else(|| panic!("{history}"));
    assert_eq!(entered["source"], entered["detail"]["name"]);
    assert!(entered["detail"]["input"].is_object(), "{history}");

    stack
        .run(&["order", "describe", "customer-2", order_id.as_str()])
        .expect_error(3);
}

/// A workflow order that is recorded but does not settle within --timeout: its JSON is
/// still printed (a script gets its id) and the exit code is 1, naming order and status.
/// Without --wait, an order never recorded ends the wait at --timeout, not at 30 s.
async fn an_order_that_does_not_settle_in_time_is_still_printed(stack: &Stack) {
    let known = stack.execution_names().await;
    let child = stack
        .command()
        .args([
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "workflow",
            "--expect",
            "DELIVERING",
            "--timeout",
            "3",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let order_id = OrderId::parse(stack.new_execution(&known).await.name()).unwrap();
    let paid = order(Mode::Workflow, &order_id, OrderStatus::Paid);
    assert!(stack.orders().create(&paid).await.unwrap());
    let created = common::finish(child.wait_with_output().unwrap());
    let message = created.expect_error(1);
    assert!(
        message.contains(order_id.as_str()) && message.contains("PAID"),
        "{message}"
    );
    let shown = created.json();
    assert_eq!(
        (shown["orderId"].as_str(), shown["orderStatus"].as_str()),
        (Some(order_id.as_str()), Some("PAID"))
    );

    let started = Instant::now();
    let unrecorded = stack.run(&[
        "order",
        "create",
        "customer-1",
        "item-1",
        "--mode",
        "workflow",
        "--timeout",
        "1",
    ]);
    assert!(
        unrecorded
            .expect_error(1)
            .contains("not recorded within 1s"),
        "{}",
        unrecorded.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Events mode: deliver puts a Logistics event on the stack's bus; nothing consumes it
/// in moto, so the order does not settle and the wait ends with exit code 1.
async fn a_delivery_event_goes_to_the_bus(stack: &Stack) {
    let order_id = OrderId::parse("01JCLIDELIVER000000000000A").unwrap();
    assert!(
        stack
            .orders()
            .create(&order(Mode::Events, &order_id, OrderStatus::Delivering))
            .await
            .unwrap()
    );
    let waited = stack.run(&["deliver", "customer-1", order_id.as_str(), "--timeout", "1"]);
    assert!(
        waited.expect_error(1).contains("did not settle"),
        "{}",
        waited.stderr
    );

    let paid = OrderId::parse("01JCLIPAID0000000000000000").unwrap();
    assert!(
        stack
            .orders()
            .create(&order(Mode::Events, &paid, OrderStatus::Paid))
            .await
            .unwrap()
    );
    let refused = stack.run(&["cancel", "customer-1", paid.as_str()]);
    assert!(refused.expect_error(5).contains("not DELIVERING"));
}

/// A message as EventBridge puts it on a rule's dead-letter queue: the event itself, the
/// failure in attributes.
async fn put_eventbridge_letter(sqs: &aws_sdk_sqs::Client, queue: &str, event: &Value) {
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    sqs.send_message()
        .queue_url(queue)
        .message_body(event.to_string())
        .message_attributes("ERROR_CODE", attribute("SDK_CLIENT_ERROR"))
        .message_attributes("ERROR_MESSAGE", attribute("Rate exceeded"))
        .message_attributes("RETRY_ATTEMPTS", attribute("8"))
        .message_attributes(
            "RULE_ARN",
            attribute("arn:aws:events:us-east-1:123456789012:rule/bus/payment"),
        )
        .message_attributes(
            "TARGET_ARN",
            attribute("arn:aws:lambda:us-east-1:123456789012:function:payment-function"),
        )
        .send()
        .await
        .unwrap();
}

fn estimated(order_id: &str) -> Value {
    json!({
        "version": "0", "id": format!("event-{order_id}"), "detail-type": "DeliveryEstimated",
        "source": "Delivery", "account": "123456789012", "time": "2024-01-02T03:04:05Z",
        "region": REGION, "resources": [],
        "detail": {"customerId": "customer-1", "orderId": order_id, "itemId": "item-1"}
    })
}

/// The messages in a queue, hidden ones included.
async fn queue_length(sqs: &aws_sdk_sqs::Client, queue: &str) -> usize {
    let counts = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .set_attribute_names(Some(counts.to_vec()))
        .send()
        .await
        .unwrap();
    counts
        .iter()
        .map(|count| {
            attributes.attributes().unwrap()[count]
                .parse::<usize>()
                .unwrap()
        })
        .sum()
}

/// One letter in each of the stack's queues (EventBridge's, and Lambda's on-failure
/// destination), for two orders; a rule copies what reaches the bus to a queue of the
/// test's. Redrive publishes the order's event again and empties its queue, and only then.
async fn dead_letters_are_listed_and_redriven_to_the_bus(stack: &Stack) {
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let events = aws_sdk_eventbridge::Client::new(&stack.config);
    let bus = stack.output("EventBusName");
    let captured = sqs
        .create_queue()
        .queue_name(format!("{}-captured", stack.name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let captured_arn = sqs
        .get_queue_attributes()
        .queue_url(&captured)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name("capture")
        .event_bus_name(bus)
        .event_pattern(json!({"source": ["Delivery"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("capture")
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("captured")
                .arn(captured_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let rules_queue = stack.output("EventsDeadLetterQueueUrl");
    let failures_queue = stack.output("AsyncFailureQueueUrl");
    let stuck = OrderId::parse("01JCLIDEADLETTER000000000A").unwrap();
    let other = "01JCLIDEADLETTER000000000B";
    put_eventbridge_letter(&sqs, rules_queue, &estimated(stuck.as_str())).await;
    let record = json!({
        "version": "1.0",
        "timestamp": "2024-01-02T03:04:05.250Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:payment-function:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": estimated(other),
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "ServiceUnavailable", "errorMessage": "throttled"}
    });
    sqs.send_message()
        .queue_url(failures_queue)
        .message_body(record.to_string())
        .send()
        .await
        .unwrap();

    let listed = stack.json(&["dead-letters"]);
    let letters = listed["deadLetters"].as_array().unwrap();
    assert_eq!(letters.len(), 2, "{listed}");
    let of_stuck = stack.json(&["dead-letters", "--order", stuck.as_str()]);
    let letter = &of_stuck["deadLetters"][0];
    assert_eq!(
        of_stuck["deadLetters"].as_array().unwrap().len(),
        1,
        "{of_stuck}"
    );
    assert_eq!(
        (
            letter["orderId"].as_str(),
            letter["eventType"].as_str(),
            letter["source"].as_str(),
            letter["lastError"].as_str(),
            letter["attempts"].as_u64(),
        ),
        (
            Some(stuck.as_str()),
            Some("DeliveryEstimated"),
            Some("Delivery"),
            Some("SDK_CLIENT_ERROR: Rate exceeded"),
            Some(9)
        )
    );
    assert!(
        letter["ageSeconds"]
            .as_i64()
            .is_some_and(|age| (0..60).contains(&age)),
        "{letter}"
    );
    // Listing hides nothing for long: the letters are still there to read.
    assert_eq!(queue_length(&sqs, rules_queue).await, 1);

    assert!(
        stack
            .orders()
            .create(&order(Mode::Events, &stuck, OrderStatus::Reserved))
            .await
            .unwrap()
    );
    let described = stack.json(&["order", "describe", "customer-1", stuck.as_str()]);
    assert_eq!(described["deadLetters"], 1);

    let redriven = stack.json(&["dead-letters", "redrive", "--order", stuck.as_str()]);
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    assert_eq!(queue_length(&sqs, rules_queue).await, 0);
    assert_eq!(queue_length(&sqs, failures_queue).await, 1);
    let received = sqs
        .receive_message()
        .queue_url(&captured)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let published: Vec<Value> = received
        .messages()
        .iter()
        .map(|message| serde_json::from_str(message.body().unwrap()).unwrap())
        .collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        (
            &published[0]["detail-type"],
            &published[0]["source"],
            &published[0]["detail"]
        ),
        (
            &json!("DeliveryEstimated"),
            &json!("Delivery"),
            &estimated(stuck.as_str())["detail"]
        )
    );

    let again = stack.json(&["dead-letters", "redrive", "--order", stuck.as_str()]);
    assert_eq!(again["redriven"], 0, "{again}");
    let rest = stack.json(&["dead-letters", "redrive", "--all"]);
    assert_eq!(rest["redriven"], 1, "{rest}");
    assert_eq!(rest["deadLetters"][0]["orderId"], other);
    assert_eq!(
        rest["deadLetters"][0]["lastError"],
        "ServiceUnavailable: throttled"
    );
    assert_eq!(queue_length(&sqs, failures_queue).await, 0);
    stack.run(&["dead-letters", "redrive"]).expect_error(2);
}

fn a_missing_stack_is_a_configuration_error(stack: &Stack) {
    let missing = run(stack.command_on("no-such-stack"), &["stack"]);
    assert!(missing.expect_error(4).contains("no-such-stack"));
}

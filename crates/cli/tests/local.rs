//! Every subcommand of the built binary on the local target, with a fresh state
//! directory per test; bad input ends with a one-line message, its documented exit code,
//! and no change to the state.

mod common;

use common::{Run, ewf, finish, run};
use ewf_domain::{
    CustomerId, DeliveryStatus, ItemId, Mode, Order, OrderId, OrderStatus, PaymentStatus,
};
use ewf_local::{LocalOptions, LocalStack};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self) -> Command {
        let mut command = ewf(self.dir.path());
        command
            .arg("--local")
            .arg("--state-dir")
            .arg(self.state_dir());
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.command(), args)
    }

    /// Runs with `--output json` and expects success.
    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(&[args, &["--output", "json"]].concat());
        run.expect_success();
        run.json()
    }

    fn seeded() -> Self {
        let local = Self::new();
        local.json(&["seed"]);
        local.json(&["set-fail-probability", "0"]);
        local
    }

    fn create(&self, mode: &str, customer: &str, item: &str) -> Value {
        self.json(&["order", "create", customer, item, "--mode", mode, "--wait"])
    }

    /// `order describe` of an order without dead letters, as the other commands show it.
    fn describe(&self, customer: &str, order: &str) -> Value {
        let mut described = self.json(&["order", "describe", customer, order]);
        let dead_letters = described.as_object_mut().unwrap().remove("deadLetters");
        assert_eq!(dead_letters, Some(json!(0)), "{described}");
        described
    }

    /// The local stack behind the state directory, to look at what the commands did.
    fn stack(&self) -> LocalStack {
        LocalStack::open(LocalOptions {
            state_dir: self.state_dir(),
            ..LocalOptions::default()
        })
        .unwrap()
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

async fn available(stack: &LocalStack, item: &str) -> i64 {
    stack
        .item(&ItemId::parse(item).unwrap())
        .await
        .unwrap()
        .unwrap()
        .available
}

#[tokio::test]
async fn seed_keeps_stock_unless_reset() {
    let local = Local::new();
    let first = local.json(&["seed"]);
    assert_eq!(
        (first["customers"].as_u64(), first["itemsWritten"].as_u64()),
        (Some(3), Some(3))
    );
    local.json(&["set-fail-probability", "0"]);
    local.create("events", "customer-1", "item-1");
    assert_eq!(available(&local.stack(), "item-1").await, 9);

    let again = local.json(&["seed"]);
    assert_eq!(
        (again["itemsWritten"].as_u64(), again["itemsKept"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(available(&local.stack(), "item-1").await, 9);

    let reset = local.json(&["seed", "--reset"]);
    assert_eq!(reset["itemsWritten"].as_u64(), Some(3));
    assert_eq!(available(&local.stack(), "item-1").await, 10);
}

#[tokio::test]
async fn seed_reads_another_data_set() {
    let local = Local::new();
    let data = local.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("customers.json"),
        r#"[{"customerId": "c-9", "name": "Tate", "email": "t@example.net", "address": "Millbank, London SW1P 4RG, UK"}]"#,
    )
    .unwrap();
    std::fs::write(
        data.join("items.json"),
        r#"[{"itemId": "i-9", "name": "Print", "price": "12.50", "available": 2, "reserved": 0}]"#,
    )
    .unwrap();
    let summary = local.json(&["seed", "--data", data.to_str().unwrap()]);
    assert_eq!(
        (
            summary["customers"].as_u64(),
            summary["itemsWritten"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(available(&local.stack(), "i-9").await, 2);

    let missing = local.run(&[
        "seed",
        "--data",
        local.dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert!(missing.expect_error(2).contains("customers.json"));
}

#[tokio::test]
async fn an_events_order_is_created_described_delivered_and_its_events_listed() {
    let local = Local::seeded();
    let order = local.json(&[
        "order",
        "create",
        "customer-1",
        "item-1",
        "--mode",
        "events",
        "--expect",
        "DELIVERING",
    ]);
    assert_eq!(
        (text(&order, "mode"), text(&order, "orderStatus")),
        ("events".into(), "DELIVERING".into())
    );
    let order_id = text(&order, "orderId");

    assert_eq!(local.describe("customer-1", &order_id), order);

    let delivered = local.json(&["deliver", "customer-1", &order_id]);
    assert_eq!(text(&delivered, "orderStatus"), "DELIVERED");

    let timeline = local.json(&["events", "--order", &order_id]);
    assert_eq!(text(&timeline, "mode"), "events");
    assert_eq!(text(&timeline, "customerId"), "customer-1");
    let types: Vec<&str> = timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["type"].as_str().unwrap())
        .collect();
    let expected = [
        "OrderCreated",
        "ItemReserved",
        "ItemDescribed",
        "CustomerDescribed",
        "DeliveryEstimated",
        "PaymentMade",
        "ItemRemoved",
        "DeliveryStarted",
        "Delivered",
        "DeliveryWasDelivered",
        "OrderDelivered",
    ];
    assert_eq!(types, expected);

    // The table form lists the same entries.
    let table = local.run(&["events", "--order", &order_id]);
    table.expect_success();
    assert!(table.stdout.contains("OrderDelivered") && table.stdout.contains("PaymentMade"));
}

/// A fault outside the code: the state file refuses new payments, as a store that is
/// down would, so the Payment service fails transiently on every attempt.
fn break_payments(local: &Local, broken: bool) {
    let file = local.state_dir().join(ewf_local::stack::STATE_FILE);
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.execute_batch(if broken {
        "CREATE TRIGGER break_payments BEFORE INSERT ON payments
         BEGIN SELECT RAISE(ABORT, 'payments are down'); END;"
    } else {
        "DROP TRIGGER break_payments;"
    })
    .unwrap();
}

fn letter_ids(listed: &Value) -> Vec<String> {
    listed["deadLetters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| text(letter, "id"))
        .collect()
}

#[tokio::test]
async fn a_dead_lettered_event_is_listed_and_redriven_once_its_cause_is_fixed() {
    let local = Local::seeded();
    break_payments(&local, true);
    let stuck = local.run(&[
        "order",
        "create",
        "customer-1",
        "item-1",
        "--mode",
        "events",
        "--wait",
        "--timeout",
        "2",
        "--output",
        "json",
    ]);
    stuck.expect_error(1);
    let order_id = text(&stuck.json(), "orderId");
    let stuck_status = text(&stuck.json(), "orderStatus");
    assert_ne!(stuck_status, "DELIVERING");

    let listed = local.json(&["dead-letters"]);
    let letters = listed["deadLetters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    let letter = &letters[0];
    assert_eq!(
        (
            text(letter, "orderId"),
            text(letter, "customerId"),
            text(letter, "eventType"),
            text(letter, "source"),
            text(letter, "target"),
            letter["attempts"].as_u64(),
        ),
        (
            order_id.clone(),
            "customer-1".into(),
            "DeliveryEstimated".into(),
            "Delivery".into(),
            "Payment".into(),
            Some(3),
        )
    );
    assert!(
        text(letter, "lastError").contains("payments are down"),
        "{letter}"
    );
    assert!(letter["ageSeconds"].as_i64().is_some_and(|age| age >= 0));
    assert_eq!(letter["event"]["detail"]["orderId"], order_id.as_str());
    assert_eq!(
        letter_ids(&local.json(&["dead-letters", "--order", &order_id])),
        ["1"]
    );
    let others = local.json(&["dead-letters", "--order", "01JOTHERORDER0000000000000"]);
    assert_eq!(others["deadLetters"], json!([]));
    let table = local.run(&["dead-letters"]);
    table.expect_success();
    assert!(
        table.stdout.contains(&order_id)
            && table.stdout.contains("DeliveryEstimated")
            && table.stdout.contains("payments are down"),
        "{}",
        table.stdout
    );

    let described = local.json(&["order", "describe", "customer-1", &order_id]);
    assert_eq!(described["deadLetters"], 1);
    let described = local.run(&["order", "describe", "customer-1", &order_id]);
    assert!(
        described.stdout.contains("deadLetters"),
        "{}",
        described.stdout
    );

    // Redrive names what it redrives.
    for args in [
        &["dead-letters", "redrive"][..],
        &["dead-letters", "redrive", "--all", "--order", &order_id],
    ] {
        local.run(args).expect_error(2);
    }
    assert_eq!(letter_ids(&local.json(&["dead-letters"])), ["1"]);

    break_payments(&local, false);
    let redriven = local.json(&["dead-letters", "redrive", "--order", &order_id]);
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    assert_eq!(
        text(&redriven["deadLetters"][0], "eventType"),
        "DeliveryEstimated"
    );
    let order = local.json(&["order", "describe", "customer-1", &order_id]);
    assert_eq!(
        (text(&order, "orderStatus"), order["deadLetters"].as_u64()),
        ("DELIVERING".into(), Some(0))
    );
    assert_eq!(local.json(&["dead-letters"])["deadLetters"], json!([]));

    // Again: nothing to redrive, and nothing changes.
    let again = local.json(&["dead-letters", "redrive", "--all"]);
    assert_eq!(
        (&again["redriven"], &again["deadLetters"]),
        (&json!(0), &json!([]))
    );
    assert_eq!(
        local.json(&["order", "describe", "customer-1", &order_id]),
        order
    );
    let stack = local.stack();
    let item = stack
        .item(&ItemId::parse("item-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((item.available, item.reserved), (9, 0));
    let paid = stack
        .stored_events(&OrderId::parse(&order_id).unwrap())
        .await
        .unwrap()
        .iter()
        .filter(|event| event.detail_type == "PaymentMade")
        .count();
    assert_eq!(paid, 1);
}

#[tokio::test]
async fn a_workflow_order_is_canceled_and_its_history_listed() {
    let local = Local::seeded();
    let order = local.create("workflow", "customer-2", "item-2");
    assert_eq!(
        (text(&order, "mode"), text(&order, "orderStatus")),
        ("workflow".into(), "DELIVERING".into())
    );
    let order_id = text(&order, "orderId");
    assert_eq!(available(&local.stack(), "item-2").await, 4);

    let canceled = local.json(&["cancel", "customer-2", &order_id]);
    assert_eq!(text(&canceled, "orderStatus"), "CANCELED");
    assert_eq!(available(&local.stack(), "item-2").await, 5);

    let timeline = local.json(&["events", "--order", &order_id]);
    assert_eq!(text(&timeline, "mode"), "workflow");
    let entries = timeline["entries"].as_array().unwrap();
    assert_eq!(entries.first().unwrap()["type"], "ExecutionStarted");
    assert_eq!(entries.last().unwrap()["type"], "ExecutionSucceeded");
    assert!(
        entries.iter().any(|entry| entry["source"] == "ReserveItem"),
        "{timeline}"
    );
    workflow_entries_have_the_documented_shape(entries);
}

/// The shape `ewf --help` documents, which the AWS target maps its history to.
fn workflow_entries_have_the_documented_shape(entries: &[Value]) {
    let keys = |entry: &Value| -> Vec<String> {
        let mut keys: Vec<String> = entry["detail"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let ids: std::collections::HashSet<&str> = entries
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), entries.len(), "ids are not unique");
    for entry in entries {
        let kind = entry["type"].as_str().unwrap();
        let detail = &entry["detail"];
        if kind.ends_with("StateEntered") {
            assert!(detail["input"].is_object(), "{entry}");
            assert_eq!(entry["source"], detail["name"], "{entry}");
        } else if kind.ends_with("StateExited") {
            assert!(detail.get("output").is_some(), "{entry}");
            assert_eq!(entry["source"], detail["name"], "{entry}");
        } else if kind.starts_with("Task") {
            assert_eq!(detail["resourceType"], "lambda", "{entry}");
            assert_eq!(entry["source"], detail["resource"], "{entry}");
        }
        match kind {
            "ExecutionStarted" => assert_eq!(keys(entry), ["input", "roleArn"], "{entry}"),
            "TaskScheduled" => {
                assert_eq!(
                    keys(entry),
                    [
                        "parameters",
                        "region",
                        "resource",
                        "resourceType",
                        "timeoutInSeconds"
                    ],
                    "{entry}"
                );
                assert!(detail["parameters"]["Payload"].is_object(), "{entry}");
            }
            "TaskSucceeded" | "TaskSubmitted" => {
                assert_eq!(
                    keys(entry),
                    ["output", "resource", "resourceType"],
                    "{entry}"
                );
                assert!(detail["output"].is_object(), "{entry}");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_unmet_expectation_exits_1_and_still_prints_the_order() {
    let local = Local::seeded();
    local.json(&["set-fail-probability", "1"]);
    let run = local.run(&[
        "order",
        "create",
        "customer-1",
        "item-1",
        "--mode",
        "events",
        "--expect",
        "DELIVERING",
        "--output",
        "json",
    ]);
    let message = run.expect_error(1);
    assert!(message.contains("expected DELIVERING"), "{message}");
    // The order is still printed, so a script has its id.
    let order = run.json();
    assert_eq!(text(&order, "orderStatus"), "PAYMENT_FAILED");
    let order_id = text(&order, "orderId");
    assert!(message.contains(&order_id), "{message}");
    assert_eq!(local.describe("customer-1", &order_id), order);
    assert_eq!(available(&local.stack(), "item-1").await, 10);
}

#[tokio::test]
async fn an_unknown_customer_ends_the_saga_failed_and_an_unknown_order_is_not_found() {
    let local = Local::seeded();
    let order = local.create("workflow", "nobody", "item-1");
    assert_eq!(text(&order, "orderStatus"), "FAILED");
    assert_eq!(available(&local.stack(), "item-1").await, 10);
    let order_id = text(&order, "orderId");

    // The same order under another customer, and an order id nobody made.
    let wrong_customer = local.run(&["order", "describe", "customer-1", &order_id]);
    assert!(wrong_customer.expect_error(3).contains("not found"));
    let unknown = local.run(&["deliver", "customer-1", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert!(
        unknown
            .expect_error(3)
            .contains("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    );
    local
        .run(&["events", "--order", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .expect_error(3);
}

#[tokio::test]
async fn malformed_ids_and_probabilities_are_usage_errors_that_change_nothing() {
    let local = Local::seeded();
    local.json(&["set-fail-probability", "0.25"]);
    for args in [
        &["order", "describe", "customer 1", "x"][..],
        &[
            "order",
            "create",
            "customer-1",
            "item'1",
            "--mode",
            "events",
        ],
        &[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "sideways",
        ],
        &["deliver", "customer-1", "order'1"],
        &["cancel", "customer-1", "o 1"],
        &["events", "--order", "o/1"],
        &[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "events",
            "--expect",
            "LOST",
        ],
        &["set-fail-probability", "1.5"],
        &["set-fail-probability", "-0.1"],
        &["set-fail-probability", "often"],
    ] {
        let refused = local.run(args);
        refused.expect_error(2);
        assert_eq!(refused.stdout, "", "{args:?}");
    }
    let stack = local.stack();
    assert_eq!(stack.fail_probability().unwrap(), 0.25);
    assert_eq!(available(&stack, "item-1").await, 10);
}

#[tokio::test]
async fn delivering_an_order_not_in_delivery_is_refused_and_changes_nothing() {
    let local = Local::seeded();
    local.json(&["set-fail-probability", "1"]);
    let order = local.create("events", "customer-3", "item-3");
    assert_eq!(text(&order, "orderStatus"), "PAYMENT_FAILED");
    let order_id = text(&order, "orderId");
    let events_before = local.json(&["events", "--order", &order_id]);

    for command in ["deliver", "cancel"] {
        let refused = local.run(&[command, "customer-3", &order_id]);
        assert!(
            refused.expect_error(5).contains("DELIVERING"),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(local.describe("customer-3", &order_id), order);
    assert_eq!(local.json(&["events", "--order", &order_id]), events_before);
    assert_eq!(available(&local.stack(), "item-3").await, 100);
}

/// How many orders each race test runs, and how many of them race at a time.
const RACES: usize = 100;
const RACES_AT_ONCE: usize = 8;

#[tokio::test]
async fn a_workflow_delivery_and_cancellation_racing_have_one_winner() {
    delivery_and_cancellation_race(Mode::Workflow).await;
}

#[tokio::test]
async fn an_events_delivery_and_cancellation_racing_have_one_winner() {
    delivery_and_cancellation_race(Mode::Events).await;
}

/// `ewf deliver` and `ewf cancel` started together on each of 100 orders (two
/// processes each): one exits 0 printing its own outcome, the other exits 5 naming the
/// outcome that won, and order, delivery, payment and stock agree with the winner.
async fn delivery_and_cancellation_race(mode: Mode) {
    let local = Local::seeded();
    let stack = local.stack();
    let item = ItemId::parse("item-3").unwrap();
    let stock = available(&stack, "item-3").await;
    let mut orders = Vec::with_capacity(RACES);
    for index in 0..RACES {
        let customer = CustomerId::parse(&format!("customer-{}", index % 3 + 1)).unwrap();
        let order = stack
            .create_order(mode, &customer, &item, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(order.order_status, OrderStatus::Delivering, "{order:?}");
        orders.push(order);
    }

    let mut winners = Vec::with_capacity(RACES);
    for (wave, batch) in orders.chunks(RACES_AT_ONCE).enumerate() {
        let children: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(index, order)| {
                let ewf_on = |command: &'static str| {
                    let mut child = local.command();
                    child
                        .args([command, order.customer_id.as_str(), order.order_id.as_str()])
                        .args(["--output", "json", "--timeout", "60"])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    child
                };
                // Each is started first half of the time.
                if (wave + index) % 2 == 0 {
                    let deliver = ewf_on("deliver").spawn().unwrap();
                    (deliver, ewf_on("cancel").spawn().unwrap())
                } else {
                    let cancel = ewf_on("cancel").spawn().unwrap();
                    (ewf_on("deliver").spawn().unwrap(), cancel)
                }
            })
            .collect();
        for (order, (deliver, cancel)) in batch.iter().zip(children) {
            let [deliver, cancel] =
                [deliver, cancel].map(|child| finish(child.wait_with_output().unwrap()));
            winners.push(race_winner(order, &deliver, &cancel));
        }
    }

    for (order, won) in orders.iter().zip(&winners) {
        race_state_agrees(&stack, order, won).await;
    }
    let canceled = winners.iter().filter(|won| **won == "canceled").count();
    assert!(
        canceled > 0 && canceled < RACES,
        "every race had the same winner: {canceled} of {RACES} canceled"
    );
    // Every canceled order's item came back; no reservation is left.
    let after = stack.item(&item).await.unwrap().unwrap();
    assert_eq!(
        (after.available, after.reserved),
        (stock - RACES as i64 + canceled as i64, 0)
    );

    // Late, after the race: refused the same way.
    let index = winners.iter().position(|won| *won == "canceled").unwrap();
    let order = &orders[index];
    let late = local.run(&[
        "deliver",
        order.customer_id.as_str(),
        order.order_id.as_str(),
    ]);
    assert!(
        late.expect_error(5)
            .contains("was already canceled (CANCELED); not delivered"),
        "{}",
        late.stderr
    );
}

/// Which of the two won ("delivered" or "canceled"), checking that exactly one did and
/// that the other was refused naming the winner.
fn race_winner(order: &Order, deliver: &Run, cancel: &Run) -> &'static str {
    let (won, winner, loser, lost) = match (deliver.code, cancel.code) {
        (0, _) => ("delivered", deliver, cancel, "canceled"),
        (_, 0) => ("canceled", cancel, deliver, "delivered"),
        _ => panic!(
            "no winner for {}: deliver {}: {}; cancel {}: {}",
            order.order_id, deliver.code, deliver.stderr, cancel.code, cancel.stderr
        ),
    };
    let status = won.to_uppercase();
    assert_eq!(
        text(&winner.json(), "orderStatus"),
        status,
        "{}",
        order.order_id
    );
    let refusal = loser.expect_error(5);
    assert!(
        refusal.contains(&format!(
            "order {} was already {won} ({status}); not {lost}",
            order.order_id
        )),
        "{refusal}"
    );
    won
}

/// The order, its delivery, its payment agree with the race's winner.
async fn race_state_agrees(stack: &LocalStack, order: &Order, won: &str) {
    let (customer, order_id) = (&order.customer_id, &order.order_id);
    let now = stack
        .describe_order(customer, order_id)
        .await
        .unwrap()
        .unwrap();
    let delivery = stack.delivery(customer, order_id).await.unwrap().unwrap();
    let payment = stack
        .payment(order.payment_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let expected = match won {
        "delivered" => (
            OrderStatus::Delivered,
            DeliveryStatus::Delivered,
            PaymentStatus::Paid,
        ),
        _ => (
            OrderStatus::Canceled,
            DeliveryStatus::Canceled,
            PaymentStatus::Canceled,
        ),
    };
    assert_eq!(
        (now.order_status, delivery.status, payment.status),
        expected,
        "{order_id}"
    );
}

#[tokio::test]
async fn the_probability_setting_persists_between_commands() {
    let local = Local::seeded();
    assert_eq!(
        local.json(&["set-fail-probability", "0.75"])["probability"],
        0.75
    );
    assert_eq!(local.stack().fail_probability().unwrap(), 0.75);
    let outputs = local.json(&["stack"]);
    assert_eq!(outputs["outputs"]["PaymentFailProbability"], "0.75");
    assert_eq!(
        outputs["outputs"]["StateDir"],
        local.state_dir().display().to_string()
    );
    // Only values a script can use: the local API has no URL until it is served.
    assert!(outputs["outputs"].get("HttpApiUrl").is_none(), "{outputs}");
}

#[test]
fn without_a_stack_the_local_stack_is_used() {
    let dir = tempfile::tempdir().unwrap();
    // No --local and no stack configured: the default state directory in the working directory.
    let seeded = run(ewf(dir.path()), &["seed", "--output", "json"]);
    seeded.expect_success();
    assert_eq!(seeded.json()["customers"], 3);
    assert!(
        dir.path()
            .join(".ewf")
            .join(ewf_local::stack::STATE_FILE)
            .exists()
    );
    // stderr is not a terminal here, and the choice is still said (see tests/targets.rs).
    assert!(
        seeded.stderr.contains("using the local stack"),
        "{}",
        seeded.stderr
    );
}

#[test]
fn the_demo_passes_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let demo = run(
        ewf(dir.path()),
        &["demo", "--rng-seed", "7", "--output", "json"],
    );
    demo.expect_success();
    let report = demo.json();
    assert_eq!(report["ok"], true, "{report}");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 14); // seven scenarios, both modes
    let statuses: Vec<(&str, &str, &str)> = runs
        .iter()
        .map(|run| {
            (
                run["scenario"].as_str().unwrap(),
                run["mode"].as_str().unwrap(),
                run["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&("payment failed", "events", "PAYMENT_FAILED")));
    assert!(statuses.contains(&("item not available", "workflow", "ITEM_NOT_AVAILABLE")));
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["outcomes", "parity", "conservation"]);
    assert_eq!(report["timeline"]["mode"], "events");
    // The temporary state is gone, and nothing was written to the working directory.
    assert!(!dir.path().join(".ewf").exists());

    let table = run(ewf(dir.path()), &["demo"]);
    table.expect_success();
    assert!(table.stdout.contains("parity") && table.stdout.contains("conservation"));
}

#[test]
fn the_bench_reports_every_phase_of_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let bench = run(
        ewf(dir.path()),
        &[
            "bench",
            "--orders",
            "40",
            "--concurrency",
            "4",
            "--output",
            "json",
        ],
    );
    bench.expect_success();
    let report = bench.json();
    let phases: Vec<(&str, &str, u64, u64)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            (
                result["mode"].as_str().unwrap(),
                result["phase"].as_str().unwrap(),
                result["orders"].as_u64().unwrap(),
                result["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("workflow", "create", 40, 0),
            ("workflow", "deliver", 40, 0),
            ("events", "create", 40, 0),
            ("events", "deliver", 40, 0)
        ]
    );
    assert!(report["results"][0]["ordersPerSecond"].as_f64().unwrap() > 0.0);
    run(ewf(dir.path()), &["bench", "--orders", "0"]).expect_error(2);
}

#[test]
fn completions_are_printed_for_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run(ewf(dir.path()), &["completions", "bash"]);
    bash.expect_success();
    assert!(bash.stdout.contains("set-fail-probability"));
    // --expect completes to the order statuses.
    assert!(bash.stdout.contains("ITEM_NOT_AVAILABLE"));
    run(ewf(dir.path()), &["completions", "cmd.exe"]).expect_error(2);
}

#[test]
fn deploy_says_how_to_install_a_missing_sam() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = ewf(dir.path());
    command.env("PATH", dir.path());
    let run = run(command, &["deploy", "--stack", "ewf-test"]);
    assert!(run.expect_error(4).contains("scripts/setup-tools.sh"));
}

/// Fake SAM CLI and cargo-lambda in `dir/bin`: sam writes its arguments, a line per
/// call, to `dir/sam.log` (with the endpoint it was given, if any) and exits with
/// `sam_exit`.
fn fake_tools(dir: &std::path::Path, tools: &[&str], sam_exit: i32) -> Command {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in tools {
        let script = format!(
            "#!/bin/sh\necho \"$@${{AWS_ENDPOINT_URL:+ @ $AWS_ENDPOINT_URL}}\" >> \"$SAM_LOG\"\nexit {sam_exit}\n"
        );
        let path = bin.join(tool);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = ewf(dir);
    command
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("SAM_LOG", dir.join("sam.log"))
        .env_remove("AWS_ENDPOINT_URL");
    command
}

#[test]
fn deploy_and_delete_run_sam_with_the_stack_settings() {
    let dir = tempfile::tempdir().unwrap();
    let tools = ["sam", "cargo-lambda"];
    let deploy = [
        "deploy",
        "--stack",
        "ewf-test",
        "--region",
        "eu-west-2",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--",
        "--parameter-overrides",
        "ApiAuthorization=NONE",
    ];
    run(fake_tools(dir.path(), &tools, 0), &deploy).expect_success();
    let delete = [
        "delete",
        "--stack",
        "ewf-test",
        "--region",
        "eu-west-2",
        "--yes",
    ];
    run(fake_tools(dir.path(), &tools, 0), &delete).expect_success();
    let log = std::fs::read_to_string(dir.path().join("sam.log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(calls.len(), 3, "{log}");
    // The build gets the template parameters too; both reach the emulator named by
    // --endpoint-url (as AWS_ENDPOINT_URL, which sam honours).
    assert_eq!(
        calls[0],
        "build --beta-features --parameter-overrides ApiAuthorization=NONE @ http://127.0.0.1:9"
    );
    assert!(
        calls[1].starts_with("deploy --stack-name ewf-test --region eu-west-2 ")
            && calls[1]
                .ends_with(" --parameter-overrides ApiAuthorization=NONE @ http://127.0.0.1:9"),
        "{}",
        calls[1]
    );
    assert_eq!(
        calls[2],
        "delete --stack-name ewf-test --region eu-west-2 --no-prompts"
    );

    // A failing sam is a service error; a missing cargo-lambda is named.
    run(fake_tools(dir.path(), &tools, 1), &deploy).expect_error(5);
    let other = tempfile::tempdir().unwrap();
    let missing = run(fake_tools(other.path(), &["sam"], 0), &deploy);
    assert!(missing.expect_error(4).contains("cargo-lambda"));
    // Without a stack, delete has nothing to delete and runs nothing.
    let nothing = run(fake_tools(other.path(), &["sam"], 0), &["delete", "--yes"]);
    nothing.expect_error(4);
    assert!(!other.path().join("sam.log").exists());
}

#[test]
fn help_documents_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let help = run(ewf(dir.path()), &["--help"]);
    help.expect_success();
    for line in [
        "130  interrupted",
        "3    not found",
        "4    configuration or credentials",
        "TaskScheduled {resourceType, resource, region, parameters,",
    ] {
        assert!(help.stdout.contains(line), "{line}");
    }
    let create = run(ewf(dir.path()), &["order", "create", "--help"]);
    create.expect_success();
    assert!(
        create.stdout.contains("DELIVERING") && create.stdout.contains("PAYMENT_FAILED"),
        "{}",
        create.stdout
    );
}

/// Sends SIGINT, as Ctrl-C does.
fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_answers_http_and_stops_on_ctrl_c() {
    let local = Local::seeded();
    let mut child = local
        .command()
        .args(["local", "serve", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let customer: Value = reqwest::get(format!("{base}/customer/describe/customer-1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(customer["name"], "Buckingham Palace");
    let missing = reqwest::get(format!("{base}/customer/describe/nobody"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    interrupt(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn following_a_timeline_ends_with_the_order_or_on_ctrl_c() {
    let local = Local::seeded();
    let order = local.create("events", "customer-1", "item-1");
    let order_id = text(&order, "orderId");

    let mut child = local
        .command()
        .args([
            "events", "--order", &order_id, "--follow", "--output", "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // One JSON line per entry; the order waits for its delivery after DeliveryStarted.
    for line in lines.by_ref() {
        let entry: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if entry["type"] == "DeliveryStarted" {
            break;
        }
    }
    local.json(&["deliver", "customer-1", &order_id]);
    let rest: Vec<Value> = lines
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(rest.last().unwrap()["type"], "OrderDelivered");
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // A workflow order waiting for its delivery is followed until interrupted.
    let waiting = local.create("workflow", "customer-1", "item-1");
    let mut child = local
        .command()
        .args(["events", "--order", &text(&waiting, "orderId"), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("ExecutionStarted"), "{first}");
    interrupt(&child);
    let interrupted = finish(child.wait_with_output().unwrap());
    assert!(interrupted.expect_error(130).contains("interrupted"));
    let order = local
        .stack()
        .describe_order(
            &CustomerId::parse("customer-1").unwrap(),
            &OrderId::parse(&text(&waiting, "orderId")).unwrap(),
        )
        .await;
    assert_eq!(order.unwrap().unwrap().order_status.as_str(), "DELIVERING");
}

//! `ewf demo`: every scenario in both modes on fresh state, then the checks that the two
//! sagas agree (parity) and that no stock was lost (conservation).

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output::Output;
use crate::output::timeline_table;
use crate::targets::local::LocalTarget;
use crate::targets::{self, Outcome, Target, Timeline, finish_delivery};
use ewf_domain::sample::SampleData;
use ewf_domain::{
    Address, Customer, CustomerId, Item, ItemId, Mode, Money, Order, OrderId, OrderStatus,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use ulid::Ulid;

/// An item seeded with no stock, for the "item not available" scenario.
const SOLD_OUT_ITEM: &str = "demo-sold-out";
/// A customer that is never seeded.
const UNKNOWN_CUSTOMER: &str = "demo-unknown-customer";
/// An item so dear that, with its delivery, it costs more than a payment may be: the
/// payment service refuses the order.
const DEAR_ITEM: &str = "demo-dear";
/// A customer living where no delivery can go.
const FAR_CUSTOMER: &str = "demo-far-customer";
/// How long one order may take to settle.
const SETTLE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub customer: &'static str,
    pub item: &'static str,
    pub fail_probability: f64,
    pub finish: Option<Outcome>,
    pub expected: OrderStatus,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "delivered",
        customer: "customer-1",
        item: "item-1",
        fail_probability: 0.0,
        finish: Some(Outcome::Delivered),
        expected: OrderStatus::Delivered,
    },
    Scenario {
        name: "canceled",
        customer: "customer-2",
        item: "item-2",
        fail_probability: 0.0,
        finish: Some(Outcome::Canceled),
        expected: OrderStatus::Canceled,
    },
    Scenario {
        name: "payment failed",
        customer: "customer-3",
        item: "item-3",
        fail_probability: 1.0,
        finish: None,
        expected: OrderStatus::PaymentFailed,
    },
    Scenario {
        name: "item not available",
        customer: "customer-1",
        item: SOLD_OUT_ITEM,
        fail_probability: 0.0,
        finish: None,
        expected: OrderStatus::ItemNotAvailable,
    },
    Scenario {
        name: "unknown customer",
        customer: UNKNOWN_CUSTOMER,
        item: "item-1",
        fail_probability: 0.0,
        finish: None,
        expected: OrderStatus::Failed,
    },
    Scenario {
        name: "unroutable address",
        customer: FAR_CUSTOMER,
        item: "item-1",
        fail_probability: 0.0,
        finish: None,
        expected: OrderStatus::Failed,
    },
    Scenario {
        name: "total over the limit",
        customer: "customer-2",
        item: DEAR_ITEM,
        fail_probability: 0.0,
        finish: None,
        expected: OrderStatus::Failed,
    },
];

/// The scenario whose events-mode timeline the demo prints: it shows the compensation.
const SHOWN_TIMELINE: &str = "canceled";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
struct Stock {
    available: i64,
    reserved: i64,
}

impl Stock {
    fn of(item: Option<&Item>) -> Self {
        item.map_or_else(Self::default, |item| Self {
            available: item.available,
            reserved: item.reserved,
        })
    }

    fn delta(self, before: Self) -> (i64, i64) {
        (
            self.available - before.available,
            self.reserved - before.reserved,
        )
    }
}

impl std::fmt::Display for Stock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.available, self.reserved)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    scenario: &'static str,
    mode: Mode,
    order_id: OrderId,
    item_id: ItemId,
    status: OrderStatus,
    expected: OrderStatus,
    stock_before: Stock,
    stock_after: Stock,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_status: Option<String>,
    /// Stored events (events mode) or state transitions (workflow mode).
    steps: usize,
    elapsed_ms: u128,
    /// The order record as the run left it, for parity.
    #[serde(skip)]
    order: Order,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    failures: Vec<String>,
}

impl Check {
    fn new(name: &'static str, failures: Vec<String>) -> Self {
        Self {
            name,
            ok: failures.is_empty(),
            failures,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rng_seed: Option<u64>,
    runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Timeline>,
    checks: Vec<Check>,
    ok: bool,
}

pub async fn run(global: &Global, output: &Output, rng_seed: Option<u64>) -> Result<()> {
    let (target, _scratch) = open_target(global, rng_seed).await?;
    let data = demo_data();
    let spinner = output.spinner(format!("demo on the {}: seeding", target.describe()));
    target.seed(&data, true).await?;
    let previous = target.fail_probability().await?;
    let runs = run_scenarios(target.as_ref(), &spinner).await;
    // Leave the setting as it was, even when a scenario failed.
    target.set_fail_probability(previous).await?;
    let runs = runs?;
    let shown = runs
        .iter()
        .find(|run| run.scenario == SHOWN_TIMELINE && run.mode == Mode::Events);
    let timeline = match shown {
        Some(run) => target.timeline(&run.order_id).await?,
        None => None,
    };
    let checks = vec![
        Check::new("outcomes", outcome_failures(&runs)),
        Check::new("parity", parity_failures(&runs)),
        Check::new(
            "conservation",
            conservation_failures(target.as_ref(), &data, &runs).await?,
        ),
    ];
    drop(spinner);
    let ok = checks.iter().all(|check| check.ok);
    let report = Report {
        target: target.describe(),
        rng_seed,
        runs,
        timeline,
        checks,
        ok,
    };
    if output.is_json() {
        output.json(&report);
    } else {
        print_report(output, &report);
    }
    if ok {
        return Ok(());
    }
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| check.name)
        .collect();
    Err(
        CliError::expectation(format!("demo checks failed: {}", failed.join(", ")))
            .hint("the failures are listed above; run with EWF_LOG=debug for the services' logs"),
    )
}

/// The stack named by `--stack`, or a local stack: in `--state-dir`, or in a temporary
/// directory that lives as long as the second value.
pub async fn open_target(
    global: &Global,
    rng_seed: Option<u64>,
) -> Result<(Box<dyn Target>, Option<tempfile::TempDir>)> {
    if global.local || global.named_stack().is_none() {
        global.refuse_aws_options_without_stack()?;
    }
    Ok(match (global.named_stack(), &global.state_dir) {
        (Some(settings), _) if !global.local => (targets::connect(&settings).await?, None),
        (_, Some(dir)) => (
            Box::new(LocalTarget::open(dir.clone(), rng_seed, None)?),
            None,
        ),
        (_, None) => {
            let dir = tempfile::Builder::new()
                .prefix("ewf-scratch-")
                .tempdir()
                .map_err(|err| {
                    CliError::config(format!("cannot create a temporary directory: {err}"))
                        .hint("pass --state-dir DIR")
                })?;
            let target = LocalTarget::open(dir.path().to_path_buf(), rng_seed, None)?;
            (Box::new(target), Some(dir))
        }
    })
}

/// The built-in sample data plus an item with no stock, an item priced at the limit
/// of a payment, and a customer no delivery can reach.
pub fn demo_data() -> SampleData {
    let mut data = SampleData::builtin();
    let items = [
        (
            SOLD_OUT_ITEM,
            "Sold-out Gadget",
            "Never in stock: the demo's item-not-available scenario",
            Money::new(9_999, 2),
            0,
        ),
        (
            DEAR_ITEM,
            "Crown Jewel",
            "Priced at a payment's limit: with its delivery, the payment is refused",
            Money::new(99_999_999, 2),
            5,
        ),
    ];
    for (id, name, description, price, available) in items {
        if let Ok(item_id) = ItemId::parse(id) {
            data.items.push(Item {
                item_id,
                name: name.into(),
                description: description.into(),
                price,
                available,
                reserved: 0,
            });
        }
    }
    if let (Ok(customer_id), Ok(address)) = (
        CustomerId::parse(FAR_CUSTOMER),
        Address::parse("1 Sunken Road, Atlantis"),
    ) {
        data.customers.push(Customer {
            customer_id,
            name: "Lost City".into(),
            email: "someone@example.net".into(),
            address,
            description: "Beyond any road: the demo's unroutable-address scenario".into(),
        });
    }
    data
}

async fn run_scenarios(target: &dyn Target, spinner: &crate::output::Spinner) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut probability = None;
    for scenario in SCENARIOS {
        if probability != Some(scenario.fail_probability) {
            target
                .set_fail_probability(scenario.fail_probability)
                .await?;
            probability = Some(scenario.fail_probability);
        }
        for mode in [Mode::Workflow, Mode::Events] {
            spinner.set_message(format!("demo: {} ({mode})", scenario.name));
            runs.push(run_one(target, scenario, mode).await?);
        }
    }
    Ok(runs)
}

async fn run_one(target: &dyn Target, scenario: &Scenario, mode: Mode) -> Result<Run> {
    let customer = CustomerId::parse(scenario.customer)?;
    let item = ItemId::parse(scenario.item)?;
    let before = Stock::of(target.item(&item).await?.as_ref());
    let started = Instant::now();
    let mut order = target
        .start_order(mode, &customer, &item, true, SETTLE)
        .await?;
    if let Some(outcome) = scenario
        .finish
        .filter(|_| order.order_status == OrderStatus::Delivering)
    {
        order = finish_delivery(target, &customer, &order.order_id, outcome, SETTLE).await?;
    }
    let elapsed_ms = started.elapsed().as_millis();
    let stock_after = Stock::of(target.item(&item).await?.as_ref());
    let steps = target
        .timeline(&order.order_id)
        .await?
        .map_or(0, |timeline| timeline.steps());
    Ok(Run {
        scenario: scenario.name,
        mode,
        order_id: order.order_id.clone(),
        item_id: item,
        status: order.order_status,
        expected: scenario.expected,
        stock_before: before,
        stock_after,
        payment_status: payment_status(target, &order).await?,
        steps,
        elapsed_ms,
        order,
    })
}

async fn payment_status(target: &dyn Target, order: &Order) -> Result<Option<String>> {
    let Some(id) = &order.payment_id else {
        return Ok(None);
    };
    Ok(target
        .payment(id)
        .await?
        .map(|payment| payment.status.to_string()))
}

fn outcome_failures(runs: &[Run]) -> Vec<String> {
    runs.iter()
        .filter(|run| run.status != run.expected)
        .map(|run| {
            format!(
                "{} ({}): {} instead of {}",
                run.scenario, run.mode, run.status, run.expected
            )
        })
        .collect()
}

/// The fields of an order record that differ between runs of one scenario by nature:
/// ids, times and the mode itself.
const UNCOMPARED: &[&str] = &["orderId", "paymentId", "orderDate", "updateDate", "mode"];

/// Both modes of a scenario end alike: the whole order record but its ids and times,
/// the stock movement and the payment's status. Each failure names a field that differs.
fn parity_failures(runs: &[Run]) -> Vec<String> {
    let mut by_scenario: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        by_scenario.entry(run.scenario).or_default().push(run);
    }
    let mut failures = Vec::new();
    for (scenario, runs) in by_scenario {
        let [first, second] = runs.as_slice() else {
            failures.push(format!("{scenario}: expected one run per mode"));
            continue;
        };
        let (ends, others) = (comparable(first), comparable(second));
        let fields: BTreeSet<&String> = ends.keys().chain(others.keys()).collect();
        for field in fields {
            let (end, other) = (ends.get(field), others.get(field));
            if end != other {
                failures.push(format!(
                    "{scenario}: {field} differs: {} {}, {} {}",
                    first.mode,
                    shown(end),
                    second.mode,
                    shown(other)
                ));
            }
        }
    }
    failures
}

/// What parity compares of a run, by field name: the order record without the fields
/// that differ by nature (ids in its failure reason made placeholders), the stock
/// movement and the payment's status.
fn comparable(run: &Run) -> BTreeMap<String, Value> {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(&run.order) else {
        unreachable!("an order serialises as a JSON object");
    };
    for field in UNCOMPARED {
        fields.remove(*field);
    }
    if let Some(reason) = &run.order.failure_reason {
        fields.insert(
            "failureReason".into(),
            Value::String(without_ids(reason, &run.order)),
        );
    }
    let (available, reserved) = run.stock_after.delta(run.stock_before);
    fields.insert("stock".into(), json!(format!("{available:+}/{reserved:+}")));
    fields.insert("paymentStatus".into(), json!(run.payment_status));
    fields.into_iter().collect()
}

/// The text with the order's ids, and any other ULID in it, replaced by placeholders.
fn without_ids(text: &str, order: &Order) -> String {
    let mut text = text.replace(order.order_id.as_str(), "<orderId>");
    if let Some(payment) = &order.payment_id {
        text = text.replace(payment.as_str(), "<paymentId>");
    }
    text.split_inclusive(|c: char| !c.is_ascii_alphanumeric())
        .map(|piece| {
            let word = piece.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            if Ulid::from_string(word).is_ok() {
                piece.replacen(word, "<id>", 1)
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

/// A compared value as a failure shows it.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "none".into(),
        Some(Value::String(text)) => format!("{text:?}"),
        Some(other) => other.to_string(),
    }
}

/// For every item, once the orders have ended: each sold item was taken from what was
/// available, and nothing else moved: no reservation is left behind.
async fn conservation_failures(
    target: &dyn Target,
    data: &SampleData,
    runs: &[Run],
) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    for seeded in &data.items {
        let sold = runs
            .iter()
            .filter(|run| run.item_id == seeded.item_id)
            .filter(|run| matches!(run.status, OrderStatus::Delivered | OrderStatus::Delivering))
            .count();
        let now = Stock::of(target.item(&seeded.item_id).await?.as_ref());
        failures.extend(conservation(seeded, sold, now));
    }
    Ok(failures)
}

/// What is wrong with an item's stock `now` after `sold` of it were sold, if anything.
fn conservation(seeded: &Item, sold: usize, now: Stock) -> Option<String> {
    let expected = Stock {
        available: seeded.available - i64::try_from(sold).unwrap_or(i64::MAX),
        reserved: seeded.reserved,
    };
    (now != expected).then(|| {
        format!(
            "{}: {now} available/reserved after {sold} sold, expected {expected} (seeded {})",
            seeded.item_id,
            Stock::of(Some(seeded))
        )
    })
}

fn print_report(output: &Output, report: &Report) {
    output.print(&format!("ewf demo on the {}", report.target));
    let mut table = output.table(&[
        "scenario",
        "mode",
        "status",
        "stock before (avail/res)",
        "stock after",
        "payment",
        "events / transitions",
        "ms",
    ]);
    for run in &report.runs {
        table.add_row(vec![
            comfy_table::Cell::new(run.scenario),
            comfy_table::Cell::new(run.mode),
            output.status_cell(run.status.as_str()),
            comfy_table::Cell::new(run.stock_before),
            comfy_table::Cell::new(run.stock_after),
            comfy_table::Cell::new(run.payment_status.as_deref().unwrap_or("-")),
            comfy_table::Cell::new(run.steps),
            comfy_table::Cell::new(run.elapsed_ms),
        ]);
    }
    output.print(&table.to_string());
    if let Some(timeline) = &report.timeline {
        output.print(&format!(
            "\nTimeline of the {SHOWN_TIMELINE} order in events mode ({}):",
            timeline.order_id
        ));
        output.print(&timeline_table(output, timeline).to_string());
    }
    let mut checks = output.table(&["check", "result", "details"]);
    for check in &report.checks {
        checks.add_row(vec![
            comfy_table::Cell::new(check.name),
            output.status_cell(if check.ok { "ok" } else { "FAIL" }),
            comfy_table::Cell::new(check.failures.join("\n")),
        ]);
    }
    output.print(&format!("\n{checks}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ewf_domain::PaymentId;

    fn run(scenario: &'static str, mode: Mode, status: OrderStatus, after: (i64, i64)) -> Run {
        let before = Stock {
            available: 10,
            reserved: 0,
        };
        let order_id = OrderId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap();
        let detail = ewf_domain::OrderDetail::new(
            CustomerId::parse("customer-1").unwrap(),
            order_id.clone(),
            ItemId::parse("item-1").unwrap(),
        );
        let mut order = Order::new(&detail, mode, chrono::Utc::now());
        order.order_status = status;
        order.total_price = Some(Money::new(40_419, 2));
        Run {
            scenario,
            mode,
            order_id,
            item_id: ItemId::parse("item-1").unwrap(),
            status,
            expected: status,
            stock_before: before,
            stock_after: Stock {
                available: after.0,
                reserved: after.1,
            },
            payment_status: None,
            steps: 0,
            elapsed_ms: 0,
            order,
        }
    }

    fn canceled(mode: Mode) -> Run {
        run("canceled", mode, OrderStatus::Canceled, (10, 0))
    }

    #[test]
    fn parity_fails_when_the_modes_end_apart() {
        assert!(parity_failures(&[canceled(Mode::Workflow), canceled(Mode::Events)]).is_empty());
        let apart = [
            canceled(Mode::Workflow),
            run("canceled", Mode::Events, OrderStatus::Canceled, (9, 1)),
        ];
        assert_eq!(
            parity_failures(&apart),
            [r#"canceled: stock differs: workflow "+0/+0", events "-1/+1""#]
        );
    }

    #[test]
    fn parity_fails_on_any_field_of_the_order_record() {
        let mut events = canceled(Mode::Events);
        events.order.total_price = None;
        events.order.delivery_address = Some(ewf_domain::Address::parse("Millbank").unwrap());
        assert_eq!(
            parity_failures(&[canceled(Mode::Workflow), events]),
            [
                r#"canceled: deliveryAddress differs: workflow none, events "Millbank""#,
                r#"canceled: totalPrice differs: workflow "404.19", events none"#,
            ]
        );
    }

    #[test]
    fn parity_ignores_ids_and_times_even_in_the_failure_reason() {
        let reason = |payment: &str| {
            format!("payment {payment} of 404.19 declined for order 01KDX8Q7V3M2N4P6R8S0T2W4Y7")
        };
        let with_payment = |mut run: Run, payment: &str| {
            run.order.payment_id = Some(PaymentId::parse(payment).unwrap());
            run.order.failure_reason = Some(reason(payment));
            run
        };
        let workflow = with_payment(canceled(Mode::Workflow), "01KDX8Q7V3M2N4P6R8S0T2W4Y8");
        let mut events = with_payment(canceled(Mode::Events), "01KDX8Q7V3M2N4P6R8S0T2W4YA");
        events.order.order_id = OrderId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y9").unwrap();
        events.order.update_date += chrono::Duration::seconds(1);
        assert!(parity_failures(&[workflow.clone(), events.clone()]).is_empty());

        let mut other = workflow;
        other.order.failure_reason =
            Some("payment 01KDX8Q7V3M2N4P6R8S0T2W4Y8 of 1.00 declined".into());
        let failures = parity_failures(&[other, events]);
        assert_eq!(
            failures,
            [concat!(
                r#"canceled: failureReason differs: workflow "payment <paymentId> of 1.00 declined", "#,
                r#"events "payment <paymentId> of 404.19 declined for order <id>""#
            )]
        );
    }

    #[test]
    fn conservation_fails_on_a_leaked_reservation() {
        let seeded = SampleData::builtin().items[0].clone();
        let stock = |available, reserved| Stock {
            available,
            reserved,
        };
        assert_eq!(
            conservation(&seeded, 2, stock(seeded.available - 2, 0)),
            None
        );
        // A reservation never released: the total still adds up, the stock does not.
        let leaked = conservation(&seeded, 1, stock(seeded.available - 2, 1)).unwrap();
        assert!(leaked.contains("after 1 sold"), "{leaked}");
        assert!(conservation(&seeded, 0, stock(seeded.available + 1, 0)).is_some());
    }
}

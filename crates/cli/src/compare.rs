//! `ewf compare`: the two sagas side by side. Runs orders of each of the demo's
//! scenarios in both modes, one at a time, and reports per mode and scenario the
//! latency to settle and to finish, the work one order costs (counted where the
//! target counts it), its cost per million orders from a price table, and a sequence
//! diagram of one order.

use crate::bench::percentile;
use crate::cli::{Format, Global};
use crate::demo::{SCENARIOS, Scenario, demo_data, open_target};
use crate::diagram;
use crate::error::{CliError, Exit, Result};
use crate::output::Output;
use crate::targets::{Outcome, Target, finish_delivery, order_work};
use ewf_domain::work::{CostLine, PriceTable, Work, cost_per_million, total};
use ewf_domain::{CustomerId, ItemId, Mode, Money, OrderStatus};
use rust_decimal::Decimal;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The memory of every function (`MemorySize` in the template's globals).
pub const LAMBDA_MEMORY_MB: u64 = 128;
/// How long one order may take to settle, and then to finish.
const SETTLE: Duration = Duration::from_secs(60);
/// On a deployed stack, the pause after a row's orders: their last invocations (the
/// event store's, a rule's retry) end in the row's window, not the next one's.
const QUIET: Duration = Duration::from_secs(3);
const WINDOW_MARGIN: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Latency {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            p50_ms: percentile(&samples, 0.50),
            p90_ms: percentile(&samples, 0.90),
            p99_ms: percentile(&samples, 0.99),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    scenario: &'static str,
    mode: Mode,
    orders: u64,
    /// Orders that did not end as the scenario expects.
    unexpected: u64,
    /// To DELIVERING or a final status, and to the final status.
    settle: Latency,
    finish: Latency,
    /// The work of all the orders; `perOrder` divides it.
    work: Work,
    per_order: PerOrder,
    cost: Vec<CostLine>,
    cost_per_million_orders: Decimal,
    /// The diagram of the first order.
    diagram: Option<String>,
    #[serde(skip)]
    first_unexpected: Option<String>,
    /// When the row's orders ran, and their work ended.
    #[serde(skip)]
    window: (SystemTime, SystemTime),
}

/// The work of one order, on average.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PerOrder {
    invocations: Decimal,
    transitions: Decimal,
    events: Decimal,
    deliveries: Option<Decimal>,
    read_units: Option<Decimal>,
    write_units: Option<Decimal>,
    api_requests: Decimal,
    billed_ms: Option<Decimal>,
    log_bytes: Option<Decimal>,
}

impl PerOrder {
    fn of(work: &Work, orders: u64) -> Self {
        let orders = Decimal::from(orders.max(1));
        let each = |value: u64| (Decimal::from(value) / orders).round_dp(2).normalize();
        Self {
            invocations: each(work.invocation_total()),
            transitions: each(work.transitions),
            events: each(work.events),
            deliveries: work.deliveries.map(each),
            read_units: work.read_units.map(each),
            write_units: work.write_units.map(each),
            api_requests: each(work.http_requests + work.rest_requests),
            billed_ms: work.billed_ms.map(each),
            log_bytes: work.log_bytes.map(each),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    target: String,
    date: String,
    orders_per_scenario: u32,
    region: String,
    currency: String,
    memory_mb: u64,
    /// Which figures were counted and which derived, on this target.
    notes: Vec<&'static str>,
    rows: Vec<Row>,
    prices: PriceTable,
}

const COUNTED_NOTES: &[&str] = &[
    "Counted on the local stack, on the paths the services take: Lambda invocations per function, events published and rule deliveries, DynamoDB read and write units from the size of each item read or written (DynamoDB's on-demand rules: 4 KB a strongly consistent read, 1 KB a write, twice that in a transaction), API requests.",
    "State transitions: the states entered in each execution's history.",
    "Lambda duration: handler time measured on this machine, each invocation rounded up to 1 ms as Lambda bills it; on Lambda, add cold starts and the SDK's network time.",
    "Log bytes: the functions' JSON lines at the template's level (info), counted as they are formatted, each with the span the Lambda runtime puts on it, and the line each invocation ends with (the DynamoDB capacity it consumed); plus Lambda's own start and report records, 375 bytes an invocation (derived from their shape).",
    "The deadline sweep (a scheduled invocation every minute on AWS) is a fixed cost of the stack, not of an order, and is left out.",
];

const UNLOGGED_NOTE: &str = "Some rows' windows held none of the functions' log lines (an endpoint without CloudWatch Logs?): their invocations are derived (each stored event times its rules' targets, the workflow's tasks), their duration, capacity and log bytes not counted.";

const DERIVED_NOTES: &[&str] = &[
    "Measured from the functions' CloudWatch Logs for each row's window (from its first order to 3 s after its last): Lambda invocations per function and billed duration from Lambda's platform.report records; DynamoDB read and write units from the line each invocation ends with, the capacity DynamoDB reported (a refused conditional write, which DynamoDB bills without reporting it, at its least: a unit an item, two in a transaction); log bytes, every line of those invocations. The deadline sweep's invocations are left out. CloudWatch Logs usually holds the lines within seconds; compare reads again until every invocation has its report, for at most 3 minutes.",
    "Read from each order's records: state transitions from its execution history; events published from the event store.",
    "Derived: rule deliveries (each stored event times its rules' targets, retries not seen); API requests (one to create an order, one to deliver or cancel it).",
];

pub struct CompareArgs {
    pub orders: u32,
    pub scenarios: Option<String>,
    pub prices: Option<std::path::PathBuf>,
}

pub async fn run(global: &Global, output: &Output, args: CompareArgs) -> Result<()> {
    let prices = read_prices(args.prices.as_deref())?;
    let scenarios = chosen(args.scenarios.as_deref())?;
    let (target, _scratch) = open_target(global, None).await?;
    let mut data = demo_data();
    // Stock for every order of every scenario; the sold-out item stays sold out.
    let orders_in_all = i64::from(args.orders) * 2 * scenarios.len() as i64;
    for item in data.items.iter_mut().filter(|item| item.available > 0) {
        item.available = item.available.max(orders_in_all);
    }
    let spinner = output.spinner(format!("compare on the {}: seeding", target.describe()));
    target.seed(&data, true).await?;
    target.count_work();
    let previous = target.fail_probability().await?;
    let mut rows = Vec::new();
    let mut result = Ok(());
    for scenario in &scenarios {
        if let Err(err) = target.set_fail_probability(scenario.fail_probability).await {
            result = Err(err);
            break;
        }
        for mode in [Mode::Workflow, Mode::Events] {
            spinner.set_message(format!("compare: {} ({mode})", scenario.name));
            match measure(target.as_ref(), scenario, mode, args.orders, &prices).await {
                Ok(row) => rows.push(row),
                Err(err) => result = Err(err),
            }
            if result.is_err() {
                break;
            }
        }
        if result.is_err() {
            break;
        }
    }
    // Leave the setting as it was, even when a run failed.
    target.set_fail_probability(previous).await?;
    result?;
    spinner.set_message(
        "compare: reading the functions' logs (CloudWatch Logs holds them within a minute)",
    );
    let mut unlogged = false;
    for row in &mut rows {
        unlogged |= !read_logs(target.as_ref(), row, &prices).await?;
    }
    drop(spinner);
    let counted = target.work_reading().await?.is_some();
    let mut notes = if counted {
        COUNTED_NOTES
    } else {
        DERIVED_NOTES
    }
    .to_vec();
    if !counted && unlogged {
        notes.push(UNLOGGED_NOTE);
    }
    let report = Report {
        target: target.describe(),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        orders_per_scenario: args.orders,
        region: prices.region.clone(),
        currency: prices.currency.clone(),
        memory_mb: LAMBDA_MEMORY_MB,
        notes,
        rows,
        prices,
    };
    match global.output {
        Format::Json => output.json(&report),
        Format::Markdown => output.print(&markdown(&report)),
        _ => print_tables(output, &report),
    }
    if let Some(row) = report.rows.iter().find(|row| row.unexpected > 0) {
        return Err(CliError::expectation(format!(
            "{} of the {} orders of {} ({}) did not end as expected: {}",
            row.unexpected,
            row.orders,
            row.scenario,
            row.mode,
            row.first_unexpected.as_deref().unwrap_or("")
        ))
        .hint(
            "look at the order with `ewf events --order <id>`; `ewf demo` checks every scenario",
        ));
    }
    Ok(())
}

fn read_prices(path: Option<&Path>) -> Result<PriceTable> {
    let Some(path) = path else {
        return PriceTable::builtin().map_err(|err| {
            CliError::config(format!("the built-in price table is malformed: {err}"))
                .hint("report this bug; pass --prices FILE meanwhile")
        });
    };
    let text = std::fs::read_to_string(path).map_err(|err| {
        CliError::new(
            Exit::Usage,
            format!("cannot read {}: {err}", path.display()),
        )
        .hint("--prices needs a JSON file shaped as data/prices.json")
    })?;
    PriceTable::parse(&text).map_err(|err| {
        CliError::new(
            Exit::Usage,
            format!("{} is no price table: {err}", path.display()),
        )
        .hint("shape it as data/prices.json")
    })
}

/// The scenarios named in `list` (comma-separated, as the demo names them), or all.
fn chosen(list: Option<&str>) -> Result<Vec<&'static Scenario>> {
    let Some(list) = list else {
        return Ok(SCENARIOS.iter().collect());
    };
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            SCENARIOS
                .iter()
                .find(|scenario| scenario.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<_> = SCENARIOS.iter().map(|scenario| scenario.name).collect();
                    CliError::new(Exit::Usage, format!("no scenario {name:?}")).hint(format!(
                        "--scenarios takes a comma-separated list of: {}",
                        names.join(", ")
                    ))
                })
        })
        .collect()
}

/// Runs `orders` orders of the scenario in one mode, one after the other, so that the
/// target's counters hold one order's work at a time.
async fn measure(
    target: &dyn Target,
    scenario: &Scenario,
    mode: Mode,
    orders: u32,
    prices: &PriceTable,
) -> Result<Row> {
    let customer = CustomerId::parse(scenario.customer)?;
    let item = ItemId::parse(scenario.item)?;
    let (mut settle, mut finish) = (Vec::new(), Vec::new());
    // Summed from the first order's, so that a figure the target lacks stays lacking.
    let mut work: Option<Work> = None;
    let mut diagram = None;
    let mut unexpected = Vec::new();
    let counted = target.work_reading().await?.is_some();
    // A second early: the clock of CloudWatch's timestamps is not this one (the previous
    // row's quiet time keeps the windows apart).
    let window_start = SystemTime::now() - WINDOW_MARGIN;
    for _ in 0..orders {
        let before = target.work_reading().await?;
        let started = Instant::now();
        let mut order = target
            .start_order(mode, &customer, &item, true, SETTLE)
            .await?;
        settle.push(millis(started.elapsed()));
        let finished = scenario
            .finish
            .filter(|_| order.order_status == OrderStatus::Delivering);
        if let Some(outcome) = finished {
            order = finish_delivery(target, &customer, &order.order_id, outcome, SETTLE).await?;
        }
        finish.push(millis(started.elapsed()));
        if order.order_status != scenario.expected {
            unexpected.push(format!(
                "order {} is {}, expected {}",
                order.order_id, order.order_status, scenario.expected
            ));
        }
        let after = target.work_reading().await?;
        let timeline = target.timeline(&order.order_id).await?;
        let requests = requests(mode, finished);
        let counted = before.as_ref().zip(after.as_ref());
        let done = order_work(timeline.as_ref(), counted, requests);
        work = Some(match work {
            Some(work) => work.plus(&done),
            None => done,
        });
        if diagram.is_none() {
            diagram = timeline.as_ref().map(diagram::sequence);
        }
    }
    if !counted {
        // The last invocations end after the order does: the next row starts later.
        tokio::time::sleep(QUIET).await;
    }
    let window = (window_start, SystemTime::now());
    let orders = u64::from(orders);
    let work = work.unwrap_or_default();
    let (per_order, cost, cost_per_million_orders) = priced(&work, orders, prices);
    Ok(Row {
        scenario: scenario.name,
        mode,
        orders,
        unexpected: unexpected.len() as u64,
        settle: Latency::of(settle),
        finish: Latency::of(finish),
        per_order,
        cost_per_million_orders,
        cost,
        work,
        diagram,
        first_unexpected: unexpected.into_iter().next(),
        window,
    })
}

/// The work of one order, what each service costs for a million, and the total.
fn priced(work: &Work, orders: u64, prices: &PriceTable) -> (PerOrder, Vec<CostLine>, Money) {
    let cost = cost_per_million(work, orders, prices, LAMBDA_MEMORY_MB);
    let sum = total(&cost);
    (PerOrder::of(work, orders), cost, sum)
}

/// Replaces what a row's work says of invocations, duration, capacity and logs by what
/// the target's logs show for its window, where it keeps such logs; whether they did.
async fn read_logs(target: &dyn Target, row: &mut Row, prices: &PriceTable) -> Result<bool> {
    let (from, to) = row.window;
    let Some(logged) = target.logged_work(from, to).await? else {
        return Ok(false);
    };
    row.work = Work {
        invocations: logged.invocations,
        billed_ms: logged.billed_ms,
        read_units: logged.read_units,
        write_units: logged.write_units,
        log_bytes: logged.log_bytes,
        ..std::mem::take(&mut row.work)
    };
    (row.per_order, row.cost, row.cost_per_million_orders) = priced(&row.work, row.orders, prices);
    Ok(true)
}

/// The API requests an order of `mode` takes (HTTP, REST), as a client makes them: the
/// events saga starts on the HTTP API, the workflow on the REST API; a workflow's
/// delivery is finished on the HTTP API, an events-mode one by a Logistics event.
fn requests(mode: Mode, finished: Option<Outcome>) -> (u64, u64) {
    match mode {
        Mode::Events => (1, 0),
        Mode::Workflow => (u64::from(finished.is_some()), 1),
    }
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

/// The cost of a row per service, in the order the lines come.
fn by_service(row: &Row) -> Vec<(&'static str, Option<Decimal>)> {
    let mut services: Vec<(&'static str, Option<Decimal>)> = Vec::new();
    for line in &row.cost {
        match services
            .iter_mut()
            .find(|(service, _)| *service == line.service)
        {
            Some((_, sum)) => {
                *sum = sum
                    .zip(line.per_million_orders)
                    .map(|(a, b)| a + b)
                    .or(*sum);
            }
            None => services.push((line.service, line.per_million_orders)),
        }
    }
    services
}

fn money(value: Option<Decimal>) -> String {
    value.map_or_else(|| "n/a".into(), |value| value.round_dp(2).to_string())
}

fn opt(value: Option<Decimal>) -> String {
    value.map_or_else(|| "n/a".into(), |value| value.to_string())
}

/// The summary's cells of a row: latencies, then the work of one order.
fn summary_cells(row: &Row) -> Vec<String> {
    let each = &row.per_order;
    vec![
        row.scenario.to_owned(),
        row.mode.to_string(),
        format!(
            "{:.1} / {:.1} / {:.1}",
            row.settle.p50_ms, row.settle.p90_ms, row.settle.p99_ms
        ),
        format!(
            "{:.1} / {:.1} / {:.1}",
            row.finish.p50_ms, row.finish.p90_ms, row.finish.p99_ms
        ),
        each.invocations.to_string(),
        each.transitions.to_string(),
        format!("{} / {}", each.events, opt(each.deliveries)),
        format!("{} / {}", opt(each.read_units), opt(each.write_units)),
        each.api_requests.to_string(),
        opt(each.billed_ms),
        opt(each.log_bytes),
    ]
}

const SUMMARY: &[&str] = &[
    "scenario",
    "mode",
    "settle ms p50/p90/p99",
    "finish ms p50/p90/p99",
    "invocations",
    "transitions",
    "events / deliveries",
    "read / write units",
    "API requests",
    "billed ms",
    "log bytes",
];

/// The cost table's cells of a row: per service, then the total.
fn cost_cells(row: &Row) -> (Vec<String>, Vec<String>) {
    let services = by_service(row);
    let mut header = vec!["scenario".to_owned(), "mode".to_owned()];
    header.extend(services.iter().map(|(service, _)| (*service).to_owned()));
    header.push("total".into());
    let mut cells = vec![row.scenario.to_owned(), row.mode.to_string()];
    cells.extend(services.iter().map(|(_, cost)| money(*cost)));
    cells.push(money(Some(row.cost_per_million_orders)));
    (header, cells)
}

fn print_tables(output: &Output, report: &Report) {
    output.print(&format!(
        "ewf compare on the {}: {} orders per scenario and mode; work per order",
        report.target, report.orders_per_scenario
    ));
    let mut table = output.table(SUMMARY);
    for row in &report.rows {
        table.add_row(summary_cells(row));
    }
    output.print(&table.to_string());
    if let Some(first) = report.rows.first() {
        output.print(&format!(
            "\nCost per million orders ({}, {}, {} MB functions):",
            report.currency, report.region, report.memory_mb
        ));
        let header = cost_cells(first).0;
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut costs = output.table(&header);
        for row in &report.rows {
            costs.add_row(cost_cells(row).1);
        }
        output.print(&costs.to_string());
    }
    for note in &report.notes {
        output.print(&format!("- {note}"));
    }
}

fn markdown_row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

fn markdown_table(header: &[String], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut text = markdown_row(header);
    text.push('\n');
    text.push_str(&markdown_row(&vec!["---".to_owned(); header.len()]));
    for row in rows {
        text.push('\n');
        text.push_str(&markdown_row(&row));
    }
    text
}

/// A report to paste into a design document: the figures, how they were obtained, and
/// the diagram of one order of each mode and scenario.
fn markdown(report: &Report) -> String {
    let mut text = format!(
        "## Orchestration or choreography: what one order costs\n\n\
         `ewf compare` on the {}, {}: {} orders per scenario and mode, one at a time. \
         Prices: {} ({}), functions of {} MB.\n\n### Latency and work per order\n\n",
        report.target,
        report.date,
        report.orders_per_scenario,
        report.region,
        report.currency,
        report.memory_mb
    );
    let header: Vec<String> = SUMMARY.iter().map(|cell| (*cell).to_owned()).collect();
    text.push_str(&markdown_table(
        &header,
        report.rows.iter().map(summary_cells),
    ));
    if let Some(first) = report.rows.first() {
        text.push_str(&format!(
            "\n\n### Cost per million orders ({})\n\n",
            report.currency
        ));
        let header = cost_cells(first).0;
        text.push_str(&markdown_table(
            &header,
            report.rows.iter().map(|row| cost_cells(row).1),
        ));
    }
    text.push_str("\n\n### Lambda invocations per order, by function\n\n");
    let header: Vec<String> = ["scenario", "mode", "invocations"]
        .iter()
        .map(|cell| (*cell).to_owned())
        .collect();
    text.push_str(&markdown_table(
        &header,
        report.rows.iter().map(|row| {
            let orders = Decimal::from(row.orders.max(1));
            let functions: Vec<String> = row
                .work
                .invocations
                .iter()
                .map(|(function, count)| {
                    format!(
                        "{function} {}",
                        (Decimal::from(*count) / orders).round_dp(2).normalize()
                    )
                })
                .collect();
            vec![
                row.scenario.to_owned(),
                row.mode.to_string(),
                functions.join(", "),
            ]
        }),
    ));
    text.push_str("\n\n### How the figures were obtained\n\n");
    for note in &report.notes {
        text.push_str(&format!("- {note}\n"));
    }
    text.push_str("\n### Prices\n\n");
    let header: Vec<String> = ["unit", "price", "per", "source", "read"]
        .iter()
        .map(|cell| (*cell).to_owned())
        .collect();
    text.push_str(&markdown_table(
        &header,
        report.prices.units().into_iter().map(|unit| {
            vec![
                unit.unit.clone(),
                unit.price.to_string(),
                unit.per.to_string(),
                unit.source.clone(),
                unit.read.clone().unwrap_or_else(|| "not checked".into()),
            ]
        }),
    ));
    text.push_str("\n\n### One order of each\n");
    for row in &report.rows {
        if let Some(diagram) = &row.diagram {
            text.push_str(&format!(
                "\n#### {} ({})\n\n```mermaid\n{diagram}```\n",
                row.scenario, row.mode
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_is_the_templates() {
        let template = include_str!("../../../template.yaml");
        let globals = template
            .split("\nGlobals:")
            .nth(1)
            .and_then(|rest| rest.split("\nResources:").next())
            .unwrap();
        assert!(
            globals.contains(&format!("MemorySize: {LAMBDA_MEMORY_MB}\n")),
            "template.yaml's MemorySize is not {LAMBDA_MEMORY_MB}"
        );
    }

    #[test]
    fn scenarios_are_chosen_by_the_demos_names() {
        let names: Vec<_> = chosen(Some("delivered, Canceled"))
            .unwrap()
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["delivered", "canceled"]);
        assert_eq!(chosen(None).unwrap().len(), SCENARIOS.len());
        assert_eq!(chosen(Some("lost")).unwrap_err().exit, Exit::Usage);
    }
}

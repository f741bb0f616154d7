//! The everyday commands: seed, orders, deliveries, the payment setting, timelines,
//! stack outputs, the local server and completions.

use crate::cli::{Cli, Command, FinishArgs, Format, Global, LocalCommand, OrderArgs, OrderCommand};
use crate::error::{CliError, Exit, Result};
use crate::output::{Output, timeline_table};
use crate::targets::local::LocalTarget;
use crate::targets::{
    Outcome, Target, Timeline, TimelineEntry, finish_delivery, not_settled, order_not_found,
};
use crate::{bench, compare, dead_letters, demo, deploy, diagram, interruptible};
use clap::CommandFactory;
use comfy_table::Cell;
use ewf_domain::sample::SampleData;
use ewf_domain::settings::FAIL_PROBABILITY_VAR;
use ewf_domain::time;
use ewf_domain::{CustomerId, ItemId, Mode, Order, OrderId, OrderStatus};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often `events --follow` looks for new entries.
const FOLLOW_POLL: Duration = Duration::from_secs(1);
/// How often `events` reads a timeline that lags its order again.
const TIMELINE_POLL: Duration = Duration::from_millis(500);
/// How long `events` looks for an order that nothing is known of yet.
const UNKNOWN_ORDER_GRACE: Duration = Duration::from_secs(5);

pub async fn run(mut cli: Cli, output: &Output) -> Result<()> {
    // A lock on the state file is waited for within the command's own deadline.
    cli.global.lock_wait = cli
        .command
        .timeout()
        .map(|timeout| timeout.min(ewf_sqlite::BUSY_TIMEOUT));
    // These run on the local stack only: AWS options would be ignored.
    if matches!(cli.command, Command::Bench { .. } | Command::Local(_)) {
        cli.global.local = true;
        cli.global.refuse_aws_options_without_stack()?;
    }
    // The server stops on Ctrl-C by itself, and that is its normal end.
    let result = if matches!(cli.command, Command::Local(_)) {
        dispatch(&cli.global, output, cli.command).await
    } else {
        interruptible(dispatch(&cli.global, output, cli.command)).await
    };
    result.map_err(|err| match cli.global.local_state_file() {
        Some(path) => err.explain_state(&path),
        None => err,
    })
}

async fn dispatch(global: &Global, output: &Output, command: Command) -> Result<()> {
    supported(&command, global.output)?;
    match command {
        Command::Seed { reset, data } => seed(global, output, reset, data.as_deref()).await,
        Command::Order(OrderCommand::Create {
            customer,
            item,
            mode,
            wait,
            expect,
            timeout,
        }) => {
            let wait = wait || expect.is_some();
            create(
                global,
                output,
                mode.into(),
                (&customer, &item),
                wait,
                expect,
                timeout,
            )
            .await
        }
        Command::Order(OrderCommand::Describe(args)) => describe(global, output, &args).await,
        Command::Deliver(args) => finish(global, output, &args, Outcome::Delivered).await,
        Command::Cancel(args) => finish(global, output, &args, Outcome::Canceled).await,
        Command::SetFailProbability { probability } => {
            let target = global.open(output).await?;
            let spinner = output.spinner("updating the payment failure probability");
            target.set_fail_probability(probability).await?;
            drop(spinner);
            output.show(&json!({ "probability": probability }), |_| {
                let mut table = output.table(&["setting", "value"]);
                table.add_row(vec![
                    FAIL_PROBABILITY_VAR.to_owned(),
                    probability.to_string(),
                ]);
                table
            });
            Ok(())
        }
        Command::Events {
            order,
            follow,
            timeout,
        } => events(global, output, &order, follow, Duration::from_secs(timeout)).await,
        Command::DeadLetters(args) => dead_letters::run(global, output, args).await,
        Command::Stack => {
            let target = global.open(output).await?;
            let outputs = target.outputs().await?;
            if !outputs.iter().any(|(key, _)| key == "HttpApiUrl") {
                // Not an output of the local stack: scripts reading it get no sentence.
                output.note("the local stack serves its HTTP API while `ewf local serve` runs (http://127.0.0.1:3000 by default)");
            }
            let map: serde_json::Map<_, _> = outputs
                .iter()
                .map(|(key, value)| (key.clone(), json!(value)))
                .collect();
            output.show(
                &json!({ "target": target.describe(), "outputs": map }),
                |_| {
                    let mut table = output.table(&["output", "value"]);
                    table.add_rows(
                        outputs
                            .iter()
                            .map(|(key, value)| vec![key.clone(), value.clone()]),
                    );
                    table
                },
            );
            Ok(())
        }
        Command::Deploy { guided, sam_args } => {
            deploy::deploy(global, output, guided, sam_args).await
        }
        Command::Delete { yes } => deploy::delete(global, output, yes).await,
        Command::Demo { rng_seed } => demo::run(global, output, rng_seed).await,
        Command::Bench {
            orders,
            concurrency,
            mode,
        } => bench::run(output, orders, concurrency, mode.modes()).await,
        Command::Compare {
            orders,
            scenarios,
            prices,
        } => {
            let args = compare::CompareArgs {
                orders,
                scenarios,
                prices,
            };
            compare::run(global, output, args).await
        }
        Command::Local(LocalCommand::Serve { port }) => serve(global, output, port).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ewf", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Markdown is for `compare` only, mermaid for `events` only (not `--follow`).
fn supported(command: &Command, format: Format) -> Result<()> {
    let fits = match format {
        Format::Table | Format::Json => true,
        Format::Markdown => matches!(command, Command::Compare { .. }),
        Format::Mermaid => matches!(command, Command::Events { follow: false, .. }),
    };
    if fits {
        return Ok(());
    }
    Err(CliError::new(
        Exit::Usage,
        "--output markdown is for `ewf compare`, --output mermaid for `ewf events` (without --follow)",
    )
    .hint("use --output table or json here"))
}

async fn seed(global: &Global, output: &Output, reset: bool, data: Option<&Path>) -> Result<()> {
    let data = match data {
        None => SampleData::builtin(),
        Some(dir) => SampleData::from_dir(dir).map_err(|err| {
            CliError::new(Exit::Usage, err).hint(
                "--data needs a directory with customers.json and items.json, shaped as in data/",
            )
        })?,
    };
    let target = global.open(output).await?;
    let spinner = output.spinner(format!("seeding {}", target.describe()));
    let summary = target.seed(&data, reset).await?;
    drop(spinner);
    output.show(&summary, |summary| {
        let mut table =
            output.table(&["customers", "items written", "items kept (existing stock)"]);
        table.add_row(vec![
            summary.customers,
            summary.items_written,
            summary.items_kept,
        ]);
        table
    });
    Ok(())
}

async fn create(
    global: &Global,
    output: &Output,
    mode: Mode,
    (customer, item): (&CustomerId, &ItemId),
    wait: bool,
    expect: Option<OrderStatus>,
    timeout: u64,
) -> Result<()> {
    let target = global.open(output).await?;
    let timeout = Duration::from_secs(timeout);
    let spinner = output.spinner(format!("creating a {mode} order of {item} for {customer}"));
    let order = target
        .start_order(mode, customer, item, wait, timeout)
        .await?;
    drop(spinner);
    // Shown even when it disappoints, so a script still has the order id.
    show_order(output, &order);
    if wait && !order.order_status.is_settled() {
        return Err(not_settled(&order, timeout));
    }
    match expect {
        Some(expected) if order.order_status != expected => Err(CliError::expectation(format!(
            "order {} is {}, expected {expected}",
            order.order_id, order.order_status
        ))
        .hint(format!(
            "see what happened with `ewf events --order {}`",
            order.order_id
        ))),
        _ => Ok(()),
    }
}

async fn describe(global: &Global, output: &Output, args: &OrderArgs) -> Result<()> {
    let target = global.open(output).await?;
    let order = target
        .describe_order(&args.customer, &args.order)
        .await?
        .ok_or_else(|| order_not_found(&args.customer, &args.order))?;
    // The order is shown all the same when its dead letters cannot be read (e.g. a
    // stack deployed before they were an output, or no permission on its queues).
    let dead_letters = match target.dead_letters(Some(&args.order)).await {
        Ok(letters) => Some(letters.len()),
        Err(err) => {
            output.note(&format!("could not read the dead letters: {err}"));
            None
        }
    };
    if let Some(count @ 1..) = dead_letters {
        output.note(&format!(
            "{count} event(s) of this order failed every delivery attempt, so its saga is stuck: \
             see `ewf dead-letters --order {order}`, fix the cause, then `ewf dead-letters redrive --order {order}`",
            order = args.order
        ));
    }
    show_order_with(output, &order, dead_letters);
    Ok(())
}

async fn finish(
    global: &Global,
    output: &Output,
    args: &FinishArgs,
    outcome: Outcome,
) -> Result<()> {
    let target = global.open(output).await?;
    let OrderArgs { customer, order } = &args.order;
    let spinner = output.spinner(format!("finishing the delivery of {order}"));
    let timeout = Duration::from_secs(args.timeout);
    let order = finish_delivery(target.as_ref(), customer, order, outcome, timeout).await?;
    drop(spinner);
    show_order(output, &order);
    Ok(())
}

pub fn show_order(output: &Output, order: &Order) {
    show_order_with(output, order, None);
}

/// The order, and how many dead letters it has when that was asked.
fn show_order_with(output: &Output, order: &Order, dead_letters: Option<usize>) {
    fn text<T: ToString>(value: Option<&T>) -> String {
        value.map(ToString::to_string).unwrap_or_default()
    }
    let mut shown = json!(order);
    if let Some(count) = dead_letters {
        shown["deadLetters"] = json!(count);
    }
    output.show(&shown, |_| {
        let mut table = output.table(&["field", "value"]);
        table.add_row(vec![Cell::new("orderId"), Cell::new(&order.order_id)]);
        table.add_row(vec![
            Cell::new("orderStatus"),
            output.status_cell(order.order_status.as_str()),
        ]);
        let rows = [
            ("customerId", order.customer_id.to_string()),
            ("mode", order.mode.to_string()),
            ("itemId", order.item_id.to_string()),
            ("itemPrice", text(order.item_price.as_ref())),
            ("deliveryPrice", text(order.delivery_price.as_ref())),
            ("totalPrice", text(order.total_price.as_ref())),
            ("paymentId", text(order.payment_id.as_ref())),
            ("deliveryAddress", text(order.delivery_address.as_ref())),
            ("failureReason", text(order.failure_reason.as_ref())),
            ("orderDate", time::format(&order.order_date)),
            ("updateDate", time::format(&order.update_date)),
        ];
        table.add_rows(
            rows.into_iter()
                .map(|(field, value)| vec![field.to_owned(), value]),
        );
        if let Some(count) = dead_letters {
            table.add_row(vec!["deadLetters".to_owned(), count.to_string()]);
        }
        table
    });
}

async fn events(
    global: &Global,
    output: &Output,
    order: &OrderId,
    follow: bool,
    timeout: Duration,
) -> Result<()> {
    let target = global.open(output).await?;
    // A diagram is drawn once, of the whole timeline.
    if !follow || output.format() == Format::Mermaid {
        let (timeline, short_of) = whole_timeline(target.as_ref(), order, timeout).await?;
        if output.format() == Format::Mermaid {
            output.print(diagram::sequence(&timeline).trim_end());
        } else {
            output.show(&timeline, |timeline| timeline_table(output, timeline));
        }
        return match short_of {
            None => Ok(()),
            Some(status) => Err(CliError::expectation(format!(
                "the timeline of order {order} did not catch up with its status {status} within {}s",
                timeout.as_secs()
            ))
            .hint("run it again, or wait longer with --timeout")),
        };
    }
    let mut timeline = target
        .timeline(order)
        .await?
        .ok_or_else(|| no_timeline(order))?;
    let mut seen = HashSet::new();
    print_entries(output, unseen(&timeline.entries, &mut seen));
    loop {
        // Decided before the next read: the event store may lag the order by a moment,
        // so the end is a read after the order finished that brings nothing new.
        let done = finished(target.as_ref(), &timeline).await?;
        tokio::time::sleep(FOLLOW_POLL).await;
        timeline = target.timeline(order).await?.unwrap_or(timeline);
        let new = unseen(&timeline.entries, &mut seen);
        if done && new.is_empty() {
            return Ok(());
        }
        print_entries(output, new);
    }
}

/// The order's timeline once it tells everything up to the order's current status, or
/// as it is when `timeout` runs out, with the status it did not reach. An order nothing
/// is known of yet is looked for a little while: its first events may be on their way.
async fn whole_timeline(
    target: &dyn Target,
    order: &OrderId,
    timeout: Duration,
) -> Result<(Timeline, Option<OrderStatus>)> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        let timeline = target.timeline(order).await?;
        let now = Instant::now();
        match timeline {
            None if now >= deadline.min(start + UNKNOWN_ORDER_GRACE) => {
                return Err(no_timeline(order));
            }
            None => {}
            Some(timeline) => {
                let recorded = match timeline.customer() {
                    Some(customer) => target.describe_order(&customer, order).await?,
                    None => None,
                };
                // Without an order record, the timeline is all there is to go by.
                match recorded.filter(|recorded| !timeline.reaches(recorded)) {
                    None => return Ok((timeline, None)),
                    Some(recorded) if now >= deadline => {
                        return Ok((timeline, Some(recorded.order_status)));
                    }
                    Some(_) => {}
                }
            }
        }
        tokio::time::sleep(TIMELINE_POLL.min(deadline.saturating_duration_since(now))).await;
    }
}

fn no_timeline(order: &OrderId) -> CliError {
    CliError::not_found(format!("no events and no execution found for order {order}")).hint(
        "check the order id (`ewf order create` prints it); events appear once the order is created",
    )
}

/// The entries not seen before, in timeline order, now marked seen. Told apart by id,
/// not position: on AWS the event store is written by separate invocations and sorted
/// by time, so an earlier event stored late lands among those already printed.
fn unseen<'a>(entries: &'a [TimelineEntry], seen: &mut HashSet<String>) -> Vec<&'a TimelineEntry> {
    entries
        .iter()
        .filter(|entry| seen.insert(entry.id.clone()))
        .collect()
}

fn print_entries(output: &Output, entries: Vec<&TimelineEntry>) {
    for entry in entries {
        if output.is_json() {
            // One JSON object per line, so a script can read entries as they come.
            output.print(&serde_json::to_string(entry).expect("a timeline entry is plain data"));
        } else {
            output.print(&format!(
                "{}  {:<28} {}",
                time::format(&entry.time),
                entry.kind,
                entry.source
            ));
        }
    }
}

/// Whether nothing more will be added to a timeline: the execution ended, or the order
/// is in a final status.
async fn finished(target: &dyn Target, timeline: &Timeline) -> Result<bool> {
    if timeline.mode == Mode::Workflow {
        return Ok(timeline.execution_ended());
    }
    let Some(customer) = &timeline.customer_id else {
        return Ok(false);
    };
    let order = target.describe_order(customer, &timeline.order_id).await?;
    Ok(order.is_some_and(|order| order.order_status.is_terminal()))
}

async fn serve(global: &Global, output: &Output, port: u16) -> Result<()> {
    let target = LocalTarget::open(global.state_dir(), None, None)?;
    let (listener, address) = ewf_local::serve::bind(port).await.map_err(|err| {
        CliError::config(format!("cannot listen on 127.0.0.1:{port}: {err}"))
            .hint("pick another --port, or --port 0 for any free one")
    })?;
    output.print(&format!("http://{address}"));
    output.note(
        "serving the local stack's HTTP API (GET routes of the API, POST /order); Ctrl-C stops",
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    ewf_local::serve::serve(target.stack().clone(), listener, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, millis: i64) -> TimelineEntry {
        TimelineEntry {
            id: id.into(),
            time: chrono::DateTime::from_timestamp_millis(millis).unwrap(),
            kind: format!("Event{id}"),
            source: "Order".into(),
            detail: json!({}),
        }
    }

    #[test]
    fn following_prints_an_earlier_event_stored_late_and_nothing_twice() {
        let mut seen = HashSet::new();
        let first = [entry("a", 1), entry("c", 3)];
        let ids = |entries: Vec<&TimelineEntry>| -> Vec<String> {
            entries.into_iter().map(|entry| entry.id.clone()).collect()
        };
        assert_eq!(ids(unseen(&first, &mut seen)), ["a", "c"]);
        // `b` was stored after `c` but happened before it: it lands in the middle.
        let second = [entry("a", 1), entry("b", 2), entry("c", 3), entry("d", 4)];
        assert_eq!(ids(unseen(&second, &mut seen)), ["b", "d"]);
        assert!(unseen(&second, &mut seen).is_empty());
    }
}

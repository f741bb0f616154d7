//! `ewf bench`: how fast the local stack takes orders to DELIVERING and then delivers
//! them, at a given concurrency, on fresh state.

use crate::error::{CliError, Result};
use crate::output::Output;
use crate::targets::local::LocalTarget;
use ewf_domain::sample::SampleData;
use ewf_domain::{CustomerId, Item, ItemId, Mode, Money, Order, OrderStatus};
use ewf_local::LocalError;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const BENCH_ITEM: &str = "bench-item";
/// How long one order may take to settle: well beyond the latencies measured.
const SETTLE: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhaseResult {
    mode: Mode,
    /// `create` (to DELIVERING) or `deliver` (to DELIVERED).
    phase: &'static str,
    orders: usize,
    /// Orders that failed or did not reach the phase's status.
    failed: usize,
    seconds: f64,
    orders_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    /// Why the first failed order failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_failure: Option<String>,
}

#[derive(Serialize)]
struct Report {
    orders: u32,
    concurrency: u32,
    results: Vec<PhaseResult>,
}

/// One operation's latency and the order it produced.
type Sample = (Duration, Result<Order, LocalError>);

pub async fn run(output: &Output, orders: u32, concurrency: u32, modes: &[Mode]) -> Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("ewf-bench-")
        .tempdir()
        .map_err(|err| {
            CliError::config(format!("cannot create a temporary directory: {err}"))
                .hint("check TMPDIR")
        })?;
    let target = LocalTarget::open(scratch.path().to_path_buf(), None, None)?;
    let stack = target.stack().clone();
    let customer = CustomerId::parse("customer-1")?;
    let item = ItemId::parse(BENCH_ITEM)?;
    stack
        .seed(&bench_data(&item, orders, modes.len()), true)
        .await?;
    stack.set_fail_probability(0.0)?;

    let count = usize::try_from(orders).unwrap_or(usize::MAX);
    let workers = usize::try_from(concurrency).unwrap_or(1);
    let mut results = Vec::new();
    for &mode in modes {
        let bar = output.bar(u64::from(orders), format!("{mode}: create"));
        let (customer, item, stack_for_create) = (customer.clone(), item.clone(), stack.clone());
        let (elapsed, created) = measure(count, workers, bar.clone(), move |_| {
            let (stack, customer, item) =
                (stack_for_create.clone(), customer.clone(), item.clone());
            async move { stack.create_order(mode, &customer, &item, SETTLE).await }
        })
        .await?;
        bar.finish_and_clear();
        results.push(summarise(
            mode,
            "create",
            elapsed,
            &created,
            OrderStatus::Delivering,
        ));

        let delivering: Arc<Vec<Order>> = Arc::new(
            created
                .into_iter()
                .filter_map(|(_, order)| order.ok())
                .filter(|order| order.order_status == OrderStatus::Delivering)
                .collect(),
        );
        let bar = output.bar(delivering.len() as u64, format!("{mode}: deliver"));
        let stack_for_deliver = stack.clone();
        let to_deliver = delivering.clone();
        let (elapsed, delivered) = measure(delivering.len(), workers, bar.clone(), move |index| {
            let (stack, orders) = (stack_for_deliver.clone(), to_deliver.clone());
            async move {
                let order = &orders[index];
                stack
                    .deliver(&order.customer_id, &order.order_id, SETTLE)
                    .await
            }
        })
        .await?;
        bar.finish_and_clear();
        results.push(summarise(
            mode,
            "deliver",
            elapsed,
            &delivered,
            OrderStatus::Delivered,
        ));
    }

    let report = Report {
        orders,
        concurrency,
        results,
    };
    output.show(&report, |report| {
        let mut table = output.table(&[
            "mode", "phase", "orders", "failed", "s", "orders/s", "p50 ms", "p90 ms", "p99 ms",
        ]);
        for result in &report.results {
            table.add_row(vec![
                result.mode.to_string(),
                result.phase.to_owned(),
                result.orders.to_string(),
                result.failed.to_string(),
                format!("{:.2}", result.seconds),
                format!("{:.0}", result.orders_per_second),
                format!("{:.1}", result.p50_ms),
                format!("{:.1}", result.p90_ms),
                format!("{:.1}", result.p99_ms),
            ]);
        }
        table
    });
    let failed: usize = report.results.iter().map(|result| result.failed).sum();
    if let Some(first) = report
        .results
        .iter()
        .find_map(|result| result.first_failure.as_deref())
    {
        return Err(CliError::expectation(format!(
            "{failed} orders failed or did not reach their status; the first: {first}"
        ))
        .hint("run with EWF_LOG=warn to see the services' logs"));
    }
    Ok(())
}

/// The sample customers and one item with stock for every order of every mode.
fn bench_data(item: &ItemId, orders: u32, modes: usize) -> SampleData {
    let stock = i64::from(orders) * i64::try_from(modes).unwrap_or(1);
    SampleData {
        customers: SampleData::builtin().customers,
        items: vec![Item {
            item_id: item.clone(),
            name: "Benchmark Widget".into(),
            description: "Stock for ewf bench".into(),
            price: Money::new(1_000, 2),
            available: stock,
            reserved: 0,
        }],
    }
}

/// Runs `operation(0..count)` on `workers` tasks; returns the wall time and each
/// operation's latency and result.
async fn measure<F, Fut>(
    count: usize,
    workers: usize,
    bar: indicatif::ProgressBar,
    operation: F,
) -> Result<(Duration, Vec<Sample>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Order, LocalError>> + Send + 'static,
{
    let operation = Arc::new(operation);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..workers.min(count) {
        let (operation, next, bar) = (operation.clone(), next.clone(), bar.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return samples;
                }
                let begun = Instant::now();
                let result = operation(index).await;
                samples.push((begun.elapsed(), result));
                bar.inc(1);
            }
        });
    }
    let mut samples = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined.map_err(|err| {
            CliError::service(format!("a bench worker failed: {err}")).hint("report this bug")
        })?);
    }
    Ok((started.elapsed(), samples))
}

fn summarise(
    mode: Mode,
    phase: &'static str,
    elapsed: Duration,
    samples: &[Sample],
    expected: OrderStatus,
) -> PhaseResult {
    let failures: Vec<String> = samples
        .iter()
        .filter_map(|(_, result)| match result {
            Ok(order) if order.order_status == expected => None,
            Ok(order) => Some(format!(
                "order {} is {}, not {expected}",
                order.order_id, order.order_status
            )),
            Err(err) => Some(err.to_string()),
        })
        .collect();
    // Only the orders that got there count, in the rate and in the latencies.
    let mut latencies: Vec<f64> = samples
        .iter()
        .filter(|(_, result)| matches!(result, Ok(order) if order.order_status == expected))
        // Whole microseconds, so that the JSON shows milliseconds with three decimals.
        .map(|(latency, _)| latency.as_micros() as f64 / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let seconds = elapsed.as_secs_f64();
    PhaseResult {
        mode,
        phase,
        orders: samples.len(),
        failed: failures.len(),
        seconds,
        orders_per_second: if seconds > 0.0 {
            latencies.len() as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        first_failure: failures.into_iter().next(),
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.9), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

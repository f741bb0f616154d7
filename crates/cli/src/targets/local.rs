//! The embedded local stack as a target.

use super::{DeadLetter, Outcome, Target, Timeline, TimelineEntry, order_not_found};
use crate::cli::DEFAULT_TIMEOUT;
use crate::error::Result;
use async_trait::async_trait;
use ewf_domain::sample::SampleData;
use ewf_domain::work::Work;
use ewf_domain::{CustomerId, Delivery, Item, ItemId, Mode, Order, OrderId, Payment, PaymentId};
use ewf_local::asl::HistoryEvent;
use ewf_local::{LocalError, LocalOptions, LocalStack, SeedSummary};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct LocalTarget {
    stack: LocalStack,
    state_dir: PathBuf,
}

impl LocalTarget {
    /// Opens the local stack in `state_dir`, waiting at most `lock_wait` (default 10 s)
    /// for another process's lock on its state file.
    pub fn open(
        state_dir: PathBuf,
        rng_seed: Option<u64>,
        lock_wait: Option<Duration>,
    ) -> Result<Self> {
        let options = LocalOptions {
            state_dir: state_dir.clone(),
            rng_seed,
            busy_timeout: lock_wait,
            ..LocalOptions::default()
        };
        Ok(Self {
            stack: LocalStack::open(options)?,
            state_dir,
        })
    }

    pub fn stack(&self) -> &LocalStack {
        &self.stack
    }
}

#[async_trait]
impl Target for LocalTarget {
    fn describe(&self) -> String {
        format!("local stack in {}", self.state_dir.display())
    }

    async fn seed(&self, data: &SampleData, reset: bool) -> Result<SeedSummary> {
        Ok(self.stack.seed(data, reset).await?)
    }

    async fn start_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
        _settle: bool,
        timeout: Duration,
    ) -> Result<Order> {
        // The local stack runs the saga itself, so it always runs it until it settles.
        match self.stack.create_order(mode, customer, item, timeout).await {
            Err(LocalError::NotSettled { order, .. }) => self
                .stack
                .describe_order(customer, &order)
                .await?
                .ok_or_else(|| order_not_found(customer, &order)),
            other => Ok(other?),
        }
    }

    async fn describe_order(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>> {
        Ok(self.stack.describe_order(customer, order).await?)
    }

    async fn delivery_state(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<(Order, Option<Delivery>)>> {
        self.stack.drain().await?;
        let Some(found) = self.stack.describe_order(customer, order).await? else {
            return Ok(None);
        };
        Ok(Some((found, self.stack.delivery(customer, order).await?)))
    }

    async fn report_delivery(&self, order: &Order, outcome: Outcome) -> Result<()> {
        Ok(self.stack.report_delivery(order, outcome).await?)
    }

    async fn settle_final(&self, order: &Order, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self
            .stack
            .settle_final(&order.customer_id, &order.order_id, left)
            .await
        {
            Err(LocalError::NotSettled { .. }) => Ok(()),
            other => other.map(drop).map_err(Into::into),
        }
    }

    async fn fail_probability(&self) -> Result<f64> {
        Ok(self.stack.fail_probability()?)
    }

    async fn set_fail_probability(&self, probability: f64) -> Result<()> {
        Ok(self.stack.set_fail_probability(probability)?)
    }

    async fn timeline(&self, order: &OrderId) -> Result<Option<Timeline>> {
        let history = self.stack.execution_history(order)?;
        if !history.is_empty() {
            return Ok(Some(workflow_timeline(order, history)));
        }
        let events = self.stack.stored_events(order).await?;
        Ok((!events.is_empty()).then(|| Timeline::from_events(order, events)))
    }

    async fn item(&self, id: &ItemId) -> Result<Option<Item>> {
        Ok(self.stack.item(id).await?)
    }

    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>> {
        Ok(self.stack.payment(id).await?)
    }

    async fn dead_letters(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>> {
        let letters = self.stack.dead_letters(order)?;
        Ok(letters.into_iter().map(dead_letter).collect())
    }

    async fn redrive(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>> {
        let letters = self.stack.redrive(order, DEFAULT_TIMEOUT).await?;
        Ok(letters.into_iter().map(dead_letter).collect())
    }

    async fn outputs(&self) -> Result<Vec<(String, String)>> {
        Ok(vec![
            ("StateDir".into(), self.state_dir.display().to_string()),
            (
                "StateFile".into(),
                self.state_dir
                    .join(ewf_local::stack::STATE_FILE)
                    .display()
                    .to_string(),
            ),
            (
                "PaymentFailProbability".into(),
                self.stack.fail_probability()?.to_string(),
            ),
            // No HttpApiUrl: the API is served only while `ewf local serve` runs.
        ])
    }

    fn count_work(&self) {
        self.stack.meter().start();
    }

    async fn work_reading(&self) -> Result<Option<Work>> {
        // What an order set going (the event store's deliveries, say) is its work too.
        self.stack.drain().await?;
        Ok(Some(self.stack.meter().reading()))
    }
}

fn dead_letter(letter: ewf_local::bus::DeadLetter) -> DeadLetter {
    DeadLetter::new(
        letter.id.to_string(),
        letter.target,
        letter.event,
        (letter.last_error, letter.attempts),
        letter.dead_at,
    )
}

fn workflow_timeline(order: &OrderId, history: Vec<HistoryEvent>) -> Timeline {
    let entries = history
        .into_iter()
        .map(|event| {
            TimelineEntry::from_history(event.id, event.timestamp, event.event_type, event.details)
        })
        .collect();
    Timeline {
        order_id: order.clone(),
        mode: Mode::Workflow,
        customer_id: None,
        entries,
    }
}

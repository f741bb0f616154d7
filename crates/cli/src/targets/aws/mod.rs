//! A deployed stack as a target: physical names from the CloudFormation outputs, the
//! services reached as a user would reach them (HTTP API, StartExecution, PutEvents).

mod environment;
mod errors;
mod function_logs;
mod history;
mod queues;
mod sigv4;
mod stack;
mod tls;

use super::{AwsSettings, DeadLetter, Outcome, Target, Timeline, TimelineEntry};
use crate::error::{CliError, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sfn::types::ExecutionStatus;
use environment::variables;
use errors::{aws_error, store_error};
use ewf_aws::{
    DynamoCustomers, DynamoDeliveries, DynamoEvents, DynamoInventory, DynamoOrders, DynamoPayments,
};
use ewf_delivery::DELIVERY_FINISHED;
use ewf_domain::events::{DetailType, FunctionName, LOGISTICS_SOURCE};
use ewf_domain::ports::{
    DeliveryStore, EventStore, InventoryStore, OrderStore, PaymentStore, Random,
};
use ewf_domain::sample::SampleData;
use ewf_domain::settings::{
    DEFAULT_FAIL_PROBABILITY, FAIL_PROBABILITY_VAR, parse_fail_probability,
};
use ewf_domain::system::SeededRandom;
use ewf_domain::work::Work;
use ewf_domain::{
    CustomerId, Delivery, Item, ItemId, Mode, Order, OrderId, OrderRef, Payment, PaymentId,
};
use ewf_local::SeedSummary;
use history::history_entry;
use queues::{DeadLetterQueues, Held, LIST_HIDE, REDRIVE_HIDE};
use serde_json::{Value, json};
use sigv4::{SignedHttp, Through, credentials_of, no_credentials};
use stack::OutputsError::{Refused, Unreached};
use stack::{load_config, missing_output, required_output, stack_outputs};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tls::CaBundle;

/// How often a follow-up polls.
const POLL: Duration = Duration::from_millis(500);
/// How long CloudWatch Logs may take to hold every line of a window (usually seconds).
const LOGS_WAIT: Duration = Duration::from_secs(180);
const LOGS_POLL: Duration = Duration::from_secs(5);
/// What `ewf compare` makes of a window without the functions' logs.
const UNLOGGED: &str = "invocations stay derived, duration, capacity and log bytes uncounted";
pub struct AwsTarget {
    stack: String,
    region: String,
    outputs: BTreeMap<String, String>,
    sfn: aws_sdk_sfn::Client,
    lambda: aws_sdk_lambda::Client,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    http: SignedHttp,
    /// The HTTP API's base URL as `ewf` calls it; `None` without one.
    api_base: Option<String>,
    customers: DynamoCustomers,
    inventory: DynamoInventory,
    orders: DynamoOrders,
    payments: DynamoPayments,
    deliveries: DynamoDeliveries,
    event_store: DynamoEvents,
}

impl AwsTarget {
    pub async fn connect(settings: &AwsSettings) -> Result<Self> {
        let ca_bundle = CaBundle::configured(settings.profile.as_deref()).await?;
        // Checked first: reqwest refuses a malformed bundle with an error, the SDK panics.
        if let Some(bundle) = &ca_bundle {
            bundle.certificates()?;
        }
        let config = load_config(settings, ca_bundle.as_ref()).await?;
        let region = config.region().map(ToString::to_string).ok_or_else(|| {
            CliError::config("no AWS region")
                .hint("pass --region, set AWS_REGION or give the profile a region")
        })?;
        let provider = config.credentials_provider().ok_or_else(no_credentials)?;
        // Early, so that missing credentials are said as such rather than as a failed call.
        credentials_of(&provider).await?;
        // The first call: an endpoint that cannot be reached is said here, by its URL.
        let endpoint = settings
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://cloudformation.{region}.amazonaws.com"));
        let outputs = stack_outputs(
            &aws_sdk_cloudformation::Client::new(&config),
            &settings.stack,
            &region,
        )
        .await
        .map_err(|err| match err {
            Unreached(cause) => CliError::config(format!("cannot connect to {endpoint}: {cause}"))
                .hint("check --endpoint-url (is the emulator running?), --region and the network"),
            Refused(err) => err,
        })?;
        let http_api = outputs.get("HttpApiUrl");
        let (api_base, through) = match (&settings.api_url, &settings.endpoint_url, http_api) {
            (Some(url), _, _) => (Some(url.trim_end_matches('/').to_owned()), None),
            (None, Some(endpoint), Some(api)) => {
                let through = Through::new(api, endpoint)?;
                (Some(through.base.clone()), Some(through))
            }
            (None, _, api) => (api.map(|url| url.trim_end_matches('/').to_owned()), None),
        };
        let http = SignedHttp::new(
            provider,
            region.clone(),
            ca_bundle.as_ref(),
            through.as_ref(),
        )?;
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        let output = |key: &str| required_output(&outputs, &settings.stack, key);
        let ledger = output("LedgerTable")?;
        Ok(Self {
            customers: DynamoCustomers::new(dynamo.clone(), output("CustomerTable")?),
            inventory: DynamoInventory::new(
                dynamo.clone(),
                output("InventoryTable")?,
                ledger.clone(),
            ),
            orders: DynamoOrders::new(dynamo.clone(), output("OrderTable")?, ledger.clone()),
            payments: DynamoPayments::new(dynamo.clone(), output("PaymentTable")?, ledger.clone()),
            deliveries: DynamoDeliveries::new(dynamo.clone(), output("DeliveryTable")?, ledger),
            event_store: DynamoEvents::new(dynamo, output("EventStoreTable")?),
            sfn: aws_sdk_sfn::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            http,
            api_base,
            stack: settings.stack.clone(),
            region,
            outputs,
        })
    }

    fn output(&self, key: &str) -> Result<String> {
        required_output(&self.outputs, &self.stack, key)
    }

    fn api_url(&self, path: &str) -> Result<String> {
        // Ids are checked to be URL-safe characters, so the path needs no escaping.
        self.api_base
            .as_ref()
            .map(|base| format!("{base}/{path}"))
            .ok_or_else(|| missing_output(&self.stack, "HttpApiUrl"))
    }

    /// Puts one event on the stack's bus, failing unless the bus took it.
    async fn put_event(&self, source: &str, detail_type: &str, detail: Value) -> Result<()> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(self.output("EventBusName")?)
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let sent = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|err| aws_error("PutEvents", err))?;
        // PutEvents answers 200 with the entries it refused.
        if sent.failed_entry_count > 0 {
            let reason = sent
                .entries
                .unwrap_or_default()
                .into_iter()
                .find_map(|entry| {
                    Some(format!(
                        "{}: {}",
                        entry.error_code.unwrap_or_default(),
                        entry.error_message?
                    ))
                })
                .unwrap_or_default();
            return Err(CliError::service(format!(
                "the bus refused the {detail_type} event: {reason}"
            ))
            .hint("retry"));
        }
        Ok(())
    }

    fn dead_letter_queues(&self) -> Result<DeadLetterQueues> {
        let urls = ["EventsDeadLetterQueueUrl", "AsyncFailureQueueUrl"]
            .into_iter()
            .map(|key| self.output(key))
            .collect::<Result<_>>()?;
        Ok(DeadLetterQueues::new(self.sqs.clone(), urls, &self.outputs))
    }

    /// Publishes held letters' events again, deleting each once its event is on the
    /// bus; on the first failure, releases the rest and says how far it got.
    async fn publish_again(
        &self,
        queues: &DeadLetterQueues,
        held: Vec<Held>,
    ) -> Result<Vec<DeadLetter>> {
        let mut redriven = Vec::with_capacity(held.len());
        let mut pending = held.into_iter();
        while let Some(letter) = pending.next() {
            let event = &letter.letter.event;
            let published = self
                .put_event(
                    &letter.letter.source,
                    &letter.letter.event_type,
                    event["detail"].clone(),
                )
                .await;
            // A letter published but not deleted is published again by the next redrive:
            // harmless, as every handler is idempotent.
            if let Err(err) = published.and(queues.delete(&letter).await) {
                queues.release(&pending.collect::<Vec<_>>()).await;
                return Err(CliError::new(
                    err.exit,
                    format!(
                        "redrive stopped at letter {} after {} redriven: {}",
                        letter.letter.id,
                        redriven.len(),
                        err.message
                    ),
                ));
            }
            redriven.push(letter.letter);
        }
        Ok(redriven)
    }

    /// The execution of a workflow order: the state machine ARN with `execution` for
    /// `stateMachine`, and the order id as its name.
    fn execution_arn(&self, order: &OrderId) -> Result<String> {
        let machine = self.output("StateMachineArn")?;
        Ok(format!(
            "{}:{order}",
            machine.replacen(":stateMachine:", ":execution:", 1)
        ))
    }

    async fn start(&self, mode: Mode, customer: &CustomerId, item: &ItemId) -> Result<OrderId> {
        match mode {
            Mode::Events => {
                let body = self
                    .http
                    .get(&self.api_url(&format!("order/create/{customer}/{item}"))?)
                    .await?
                    .into_success("create order")?;
                let order: Order = serde_json::from_value(body).map_err(|err| {
                    CliError::service(format!("the create order reply is not an order: {err}"))
                        .hint("check that the stack runs this version of ewf (`ewf deploy`)")
                })?;
                Ok(order.order_id)
            }
            Mode::Workflow => {
                let order_id =
                    OrderId::generate(chrono::Utc::now(), SeededRandom::new(None).id_bits());
                let input = json!({ "customerId": customer, "itemId": item });
                self.sfn
                    .start_execution()
                    .state_machine_arn(self.output("StateMachineArn")?)
                    .name(order_id.as_str())
                    .input(input.to_string())
                    .send()
                    .await
                    .map_err(|err| aws_error("StartExecution", err))?;
                Ok(order_id)
            }
        }
    }

    /// Polls the order until `done` holds or `deadline` passes, and returns it as last
    /// seen (`None`: not recorded). A workflow whose execution ended without the order
    /// getting there is an error: nothing more will happen.
    async fn follow(
        &self,
        mode: Mode,
        customer: &CustomerId,
        order_id: &OrderId,
        deadline: Instant,
        done: impl Fn(&Order) -> bool + Send + Sync,
    ) -> Result<Option<Order>> {
        loop {
            let order = self.describe_order(customer, order_id).await?;
            if order.as_ref().is_some_and(&done) || Instant::now() >= deadline {
                return Ok(order);
            }
            if mode == Mode::Workflow
                && let Some(status) = self.execution_end(order_id).await?
            {
                let order = self.describe_order(customer, order_id).await?;
                return order.filter(|order| done(order)).map(Some).ok_or_else(|| {
                    CliError::service(format!("the execution of order {order_id} ended {status} before the order got there"))
                        .hint(format!("see why with `ewf events --order {order_id}`"))
                });
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// The execution's final status, or `None` while it runs.
    async fn execution_end(&self, order: &OrderId) -> Result<Option<ExecutionStatus>> {
        let execution = self
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(order)?)
            .send()
            .await
            .map_err(|err| aws_error("DescribeExecution", err))?;
        Ok(Some(execution.status).filter(|status| *status != ExecutionStatus::Running))
    }

    async fn execution_history(&self, order: &OrderId) -> Result<Option<Vec<TimelineEntry>>> {
        let arn = self.execution_arn(order)?;
        let mut entries = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(&arn)
                .set_next_token(next_token)
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(err) if err.code() == Some("ExecutionDoesNotExist") => return Ok(None),
                Err(err) => return Err(aws_error("GetExecutionHistory", err)),
            };
            entries.extend(page.events.iter().map(history_entry));
            next_token = page.next_token;
            if next_token.is_none() {
                return Ok(Some(entries));
            }
        }
    }
}

impl AwsTarget {
    /// Each function's log group, as Lambda names it.
    fn log_groups(&self) -> Result<Vec<(FunctionName, String)>> {
        FunctionName::ALL
            .iter()
            .map(|function| {
                let name = self.output(&format!("{function}Function"))?;
                Ok((*function, format!("/aws/lambda/{name}")))
            })
            .collect()
    }
}

fn epoch_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

#[async_trait]
impl Target for AwsTarget {
    fn describe(&self) -> String {
        format!("stack {} ({})", self.stack, self.region)
    }

    async fn seed(&self, data: &SampleData, reset: bool) -> Result<SeedSummary> {
        self.customers
            .batch_put(&data.customers)
            .await
            .map_err(store_error)?;
        let items_written = if reset {
            self.inventory
                .batch_put(&data.items)
                .await
                .map_err(store_error)?;
            data.items.len()
        } else {
            // Existing items keep their stock: conditional puts, in batches.
            self.inventory
                .put_absent(&data.items)
                .await
                .map_err(store_error)?
        };
        Ok(SeedSummary {
            customers: data.customers.len(),
            items_written,
            items_kept: data.items.len() - items_written,
        })
    }

    async fn start_order(
        &self,
        mode: Mode,
        customer: &CustomerId,
        item: &ItemId,
        settle: bool,
        timeout: Duration,
    ) -> Result<Order> {
        let deadline = Instant::now() + timeout;
        let order_id = self.start(mode, customer, item).await?;
        // Without `settle`, the order is shown as soon as it is recorded.
        self.follow(mode, customer, &order_id, deadline, |order| {
            !settle || order.order_status.is_settled()
        })
        .await?
        .ok_or_else(|| {
            CliError::expectation(format!(
                "order {order_id} was not recorded within {}s",
                timeout.as_secs()
            ))
            .hint(format!(
                "it may still be: check with `ewf order describe {customer} {order_id}`, or wait longer with --timeout"
            ))
        })
    }

    async fn describe_order(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<Order>> {
        self.orders.get(customer, order).await.map_err(store_error)
    }

    async fn delivery_state(
        &self,
        customer: &CustomerId,
        order: &OrderId,
    ) -> Result<Option<(Order, Option<Delivery>)>> {
        let Some(found) = self.describe_order(customer, order).await? else {
            return Ok(None);
        };
        let delivery = self
            .deliveries
            .get(customer, order)
            .await
            .map_err(store_error)?;
        Ok(Some((found, delivery)))
    }

    async fn report_delivery(&self, order: &Order, outcome: Outcome) -> Result<()> {
        let (customer, order_id) = (&order.customer_id, &order.order_id);
        match order.mode {
            Mode::Events => {
                let detail_type = match outcome {
                    Outcome::Delivered => DetailType::Delivered,
                    Outcome::Canceled => DetailType::DeliveryCanceled,
                };
                let detail = OrderRef {
                    customer_id: customer.clone(),
                    order_id: order_id.clone(),
                };
                self.put_event(LOGISTICS_SOURCE, detail_type.as_str(), json!(detail))
                    .await?;
            }
            Mode::Workflow => {
                let action = match outcome {
                    Outcome::Delivered => "delivered",
                    Outcome::Canceled => "cancel",
                };
                let response = self
                    .http
                    .get(&self.api_url(&format!("delivery/{action}/{customer}/{order_id}"))?)
                    .await?;
                // Ended already: the first outcome stands, and the caller reads it.
                if response.status != 409
                    || response.body.get("error").and_then(Value::as_str) != Some(DELIVERY_FINISHED)
                {
                    response.into_success("finish delivery")?;
                }
            }
        }
        Ok(())
    }

    async fn settle_final(&self, order: &Order, deadline: Instant) -> Result<()> {
        self.follow(
            order.mode,
            &order.customer_id,
            &order.order_id,
            deadline,
            |order| order.order_status.is_terminal(),
        )
        .await
        .map(drop)
    }

    async fn fail_probability(&self) -> Result<f64> {
        let function = self.output("PaymentFunction")?;
        match variables(&self.configuration(&function).await?).get(FAIL_PROBABILITY_VAR) {
            None => Ok(DEFAULT_FAIL_PROBABILITY),
            Some(text) => parse_fail_probability(text).map_err(|_| {
                CliError::service(format!(
                    "{function} has {FAIL_PROBABILITY_VAR}={text:?}, not a number"
                ))
                .hint("set it with `ewf set-fail-probability`")
            }),
        }
    }

    async fn set_fail_probability(&self, probability: f64) -> Result<()> {
        let function = self.output("PaymentFunction")?;
        self.set_variable(&function, FAIL_PROBABILITY_VAR, probability.to_string())
            .await
    }

    async fn timeline(&self, order: &OrderId) -> Result<Option<Timeline>> {
        if let Some(entries) = self.execution_history(order).await? {
            return Ok(Some(Timeline {
                order_id: order.clone(),
                mode: Mode::Workflow,
                customer_id: None,
                entries,
            }));
        }
        let events = self
            .event_store
            .for_order(order.as_str())
            .await
            .map_err(store_error)?;
        Ok((!events.is_empty()).then(|| Timeline::from_events(order, events)))
    }

    async fn item(&self, id: &ItemId) -> Result<Option<Item>> {
        self.inventory.get(id).await.map_err(store_error)
    }

    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>> {
        self.payments.get(id).await.map_err(store_error)
    }

    async fn dead_letters(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>> {
        let queues = self.dead_letter_queues()?;
        let held = queues.read(LIST_HIDE).await?;
        queues.release(&held).await;
        Ok(held
            .into_iter()
            .map(|held| held.letter)
            .filter(|letter| letter.concerns(order))
            .collect())
    }

    async fn redrive(&self, order: Option<&OrderId>) -> Result<Vec<DeadLetter>> {
        let queues = self.dead_letter_queues()?;
        let (chosen, others): (Vec<Held>, Vec<Held>) = queues
            .read(REDRIVE_HIDE)
            .await?
            .into_iter()
            .partition(|held| held.letter.concerns(order) && held.letter.is_event());
        queues.release(&others).await;
        self.publish_again(&queues, chosen).await
    }

    /// Read again until every invocation seen has Lambda's report and a second read
    /// finds nothing new, for at most [`LOGS_WAIT`]; then what is there.
    async fn logged_work(&self, from: SystemTime, to: SystemTime) -> Result<Option<Work>> {
        let groups = self.log_groups()?;
        let (from, to) = (epoch_millis(from), epoch_millis(to));
        let deadline = Instant::now() + LOGS_WAIT;
        let mut previous = None;
        loop {
            let tally = match function_logs::read(&self.logs, &groups, from, to).await {
                Ok(tally) => tally,
                Err(err) => {
                    tracing::warn!(error = %err.message, "the functions' logs cannot be read; {UNLOGGED}");
                    return Ok(None);
                }
            };
            let complete = tally.unreported() == 0 && previous.as_ref() == Some(&tally);
            if complete || Instant::now() >= deadline {
                let work = tally.work();
                if work.invocation_total() == 0 {
                    tracing::warn!(
                        "the functions' logs hold no invocation of the window (does this endpoint keep CloudWatch Logs?); {UNLOGGED}"
                    );
                    return Ok(None);
                }
                if !complete {
                    tracing::warn!(
                        unreported = tally.unreported(),
                        "CloudWatch Logs did not hold the whole window in time; counting what it holds"
                    );
                }
                return Ok(Some(work));
            }
            previous = Some(tally);
            tokio::time::sleep(LOGS_POLL).await;
        }
    }

    async fn outputs(&self) -> Result<Vec<(String, String)>> {
        let mut outputs = vec![
            ("StackName".to_owned(), self.stack.clone()),
            ("Region".to_owned(), self.region.clone()),
        ];
        outputs.extend(
            self.outputs
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        Ok(outputs)
    }
}

//! A deployed stack as a target: physical names from the CloudFormation outputs, the
//! services reached as a user would reach them (HTTP API, StartExecution, PutEvents).

use super::function_logs;
use super::queues::{DeadLetterQueues, Held, LIST_HIDE, REDRIVE_HIDE};
use super::sigv4::{SignedHttp, Through, credentials_of, no_credentials};
use super::tls::CaBundle;
use super::{AwsSettings, DeadLetter, Outcome, Target, Timeline, TimelineEntry, causes};
use crate::error::{CliError, Result};
use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::{Environment, LastUpdateStatus};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
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
    StoreError,
};
use ewf_local::SeedSummary;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Payment function's setting, and its value when the variable is absent (as in the template).
/// How often a follow-up polls.
const POLL: Duration = Duration::from_millis(500);
/// How long a function configuration update may take.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times a configuration update is tried when another writer got in first.
const UPDATE_ATTEMPTS: u32 = 3;
/// How long CloudWatch Logs may take to hold every line of a window (usually seconds).
const LOGS_WAIT: Duration = Duration::from_secs(180);
const LOGS_POLL: Duration = Duration::from_secs(5);
/// The AWS error codes that mean credentials or permissions are wrong (exit 4).
const CREDENTIALS: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
];
const CREDENTIALS_HINT: &str =
    "check your credentials and permissions (--profile, `aws sso login`)";

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

    async fn configuration(&self, function: &str) -> Result<GetFunctionConfigurationOutput> {
        self.lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|err| aws_error("GetFunctionConfiguration", err))
    }

    /// The function's configuration once no update is in progress: Lambda refuses an
    /// update while another one (e.g. a deploy's) is being applied.
    async fn settled_configuration(
        &self,
        function: &str,
    ) -> Result<GetFunctionConfigurationOutput> {
        let deadline = Instant::now() + UPDATE_TIMEOUT;
        loop {
            let config = self.configuration(function).await?;
            if config.last_update_status != Some(LastUpdateStatus::InProgress) {
                return Ok(config);
            }
            if Instant::now() >= deadline {
                return Err(CliError::service(format!(
                    "the update of {function} is still in progress"
                ))
                .hint("check it with `aws lambda get-function-configuration`"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Merges `name=value` into the function's environment (an update replaces all of
    /// it). The update names the revision it read, so that a concurrent writer's change
    /// is not lost: Lambda refuses it, and it is read and tried again.
    async fn set_variable(&self, function: &str, name: &str, value: String) -> Result<()> {
        let mut attempt = 1;
        loop {
            let config = self.settled_configuration(function).await?;
            let mut variables = variables(&config);
            variables.insert(name.to_owned(), value.clone());
            let updated = self
                .lambda
                .update_function_configuration()
                .function_name(function)
                .set_revision_id(config.revision_id)
                .environment(
                    Environment::builder()
                        .set_variables(Some(variables))
                        .build(),
                )
                .send()
                .await;
            match updated {
                Ok(_) => break,
                // Another writer's update came between the read and this one.
                Err(err)
                    if attempt < UPDATE_ATTEMPTS
                        && matches!(
                            err.code(),
                            Some("PreconditionFailedException" | "ResourceConflictException")
                        ) =>
                {
                    attempt += 1;
                }
                Err(err) => return Err(aws_error("UpdateFunctionConfiguration", err)),
            }
        }
        let config = self.settled_configuration(function).await?;
        if config.last_update_status == Some(LastUpdateStatus::Failed) {
            let reason = config.last_update_status_reason.unwrap_or_default();
            return Err(
                CliError::service(format!("the update of {function} failed: {reason}"))
                    .hint("fix the cause and run set-fail-probability again"),
            );
        }
        Ok(())
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

fn variables(config: &GetFunctionConfigurationOutput) -> HashMap<String, String> {
    config
        .environment
        .as_ref()
        .and_then(|environment| environment.variables.clone())
        .unwrap_or_default()
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
            let tally = function_logs::read(&self.logs, &groups, from, to).await?;
            let complete = tally.unreported() == 0 && previous.as_ref() == Some(&tally);
            if complete || Instant::now() >= deadline {
                if !complete {
                    tracing::warn!(
                        unreported = tally.unreported(),
                        "CloudWatch Logs did not hold the whole window in time; counting what it holds"
                    );
                }
                return Ok(Some(tally.work()));
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

async fn load_config(settings: &AwsSettings, ca_bundle: Option<&CaBundle>) -> Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(bundle) = ca_bundle {
        loader = loader.http_client(bundle.sdk_client()?);
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok(loader.load().await)
}

/// Why the stack's outputs were not read: its endpoint could not be reached (no
/// connection, or none in time), or it answered with an error.
enum OutputsError {
    Unreached(String),
    Refused(CliError),
}
use OutputsError::{Refused, Unreached};

impl From<CliError> for OutputsError {
    fn from(err: CliError) -> Self {
        Refused(err)
    }
}

async fn stack_outputs(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
    region: &str,
) -> Result<BTreeMap<String, String>, OutputsError> {
    let described = cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|err| {
            if let SdkError::DispatchFailure(failure) = &err
                && (failure.is_io() || failure.is_timeout())
            {
                Unreached(causes(&err))
            } else if err.code() == Some("ValidationError") {
                Refused(
                    CliError::config(format!("stack {stack} not found in {region}")).hint(
                        "deploy it with `ewf deploy`, or check --stack, --region and --profile",
                    ),
                )
            } else {
                Refused(aws_error("DescribeStacks", err))
            }
        })?;
    let stack = described
        .stacks
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            CliError::config(format!("stack {stack} not found in {region}"))
                .hint("deploy it with `ewf deploy`")
        })?;
    Ok(stack
        .outputs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|output| Some((output.output_key?, output.output_value?)))
        .collect())
}

fn required_output(outputs: &BTreeMap<String, String>, stack: &str, key: &str) -> Result<String> {
    outputs
        .get(key)
        .cloned()
        .ok_or_else(|| missing_output(stack, key))
}

fn missing_output(stack: &str, key: &str) -> CliError {
    CliError::config(format!("stack {stack} has no output {key}"))
        .hint("deploy this version of the template with `ewf deploy`")
}

/// An AWS error, classified: credentials and permissions are configuration (exit 4),
/// everything else a service error.
pub(super) fn aws_error<E, R>(action: &str, err: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // The service's own words when there are some; the whole chain otherwise.
    let message = match (err.code(), err.message()) {
        (Some(code), Some(text)) => format!("{action} failed: {code}: {text}"),
        _ => format!("{action} failed: {}", causes(&err)),
    };
    match err.code() {
        Some(code) if CREDENTIALS.contains(&code) => {
            CliError::config(message).hint(CREDENTIALS_HINT)
        }
        Some(
            "ResourceNotFoundException" | "ExecutionDoesNotExist" | "StateMachineDoesNotExist",
        ) => CliError::not_found(message).hint("check the stack's resources with `ewf stack`"),
        _ => CliError::service(message)
            .hint("retry; check --region and --endpoint-url if it persists"),
    }
}

/// A DynamoDB adapter's error. Its message names DynamoDB and includes the SDK's error
/// with its code, which tells credentials and permissions (exit 4) from the rest.
fn store_error(err: StoreError) -> CliError {
    let message = err.to_string();
    if CREDENTIALS.iter().any(|code| message.contains(code)) {
        CliError::config(message).hint(CREDENTIALS_HINT)
    } else {
        CliError::service(message).hint("retry; check the stack with `ewf stack` if it persists")
    }
}

/// One Step Functions history event as a timeline entry, its details mapped to the
/// fields the local stack's history has (see [`TimelineEntry::from_history`]).
fn history_entry(event: &HistoryEvent) -> TimelineEntry {
    let time =
        chrono::DateTime::from_timestamp(event.timestamp.secs(), event.timestamp.subsec_nanos())
            .unwrap_or_default();
    TimelineEntry::from_history(
        event.id,
        time,
        event.r#type.as_str().to_owned(),
        history_detail(event),
    )
}

/// The fields of a history event's `...EventDetails` that both targets have, with JSON
/// text parsed; absent fields are left out.
fn history_detail(event: &HistoryEvent) -> Value {
    let mut detail = Detail::default();
    if let Some(started) = &event.execution_started_event_details {
        detail
            .json("input", started.input.as_deref())
            .text("roleArn", started.role_arn.as_deref());
    } else if let Some(succeeded) = &event.execution_succeeded_event_details {
        detail.json("output", succeeded.output.as_deref());
    } else if let Some(failed) = &event.execution_failed_event_details {
        detail.failure(failed.error.as_deref(), failed.cause.as_deref());
    } else if let Some(timed_out) = &event.execution_timed_out_event_details {
        detail.failure(timed_out.error.as_deref(), timed_out.cause.as_deref());
    } else if let Some(aborted) = &event.execution_aborted_event_details {
        detail.failure(aborted.error.as_deref(), aborted.cause.as_deref());
    } else if let Some(entered) = &event.state_entered_event_details {
        detail
            .text("name", Some(&entered.name))
            .json("input", entered.input.as_deref());
    } else if let Some(exited) = &event.state_exited_event_details {
        detail
            .text("name", Some(&exited.name))
            .json("output", exited.output.as_deref());
    } else if let Some(scheduled) = &event.task_scheduled_event_details {
        detail
            .task(&scheduled.resource_type, &scheduled.resource)
            .text("region", Some(&scheduled.region))
            .json("parameters", Some(&scheduled.parameters));
        if let Some(seconds) = scheduled.timeout_in_seconds {
            detail.0.insert("timeoutInSeconds".into(), json!(seconds));
        }
    } else if let Some(started) = &event.task_started_event_details {
        detail.task(&started.resource_type, &started.resource);
    } else if let Some(submitted) = &event.task_submitted_event_details {
        detail
            .task(&submitted.resource_type, &submitted.resource)
            .json("output", submitted.output.as_deref());
    } else if let Some(succeeded) = &event.task_succeeded_event_details {
        detail
            .task(&succeeded.resource_type, &succeeded.resource)
            .json("output", succeeded.output.as_deref());
    } else if let Some(failed) = &event.task_failed_event_details {
        detail
            .task(&failed.resource_type, &failed.resource)
            .failure(failed.error.as_deref(), failed.cause.as_deref());
    } else if let Some(timed_out) = &event.task_timed_out_event_details {
        detail
            .task(&timed_out.resource_type, &timed_out.resource)
            .failure(timed_out.error.as_deref(), timed_out.cause.as_deref());
    }
    Value::Object(detail.0)
}

/// A history event's detail as it is built, field by field.
#[derive(Default)]
struct Detail(Map<String, Value>);

impl Detail {
    fn text(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), json!(value));
        }
        self
    }

    /// JSON text as the value it holds (as the text itself, should it not be JSON).
    fn json(&mut self, key: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text {
            let value = serde_json::from_str(text).unwrap_or_else(|_| json!(text));
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    fn task(&mut self, resource_type: &str, resource: &str) -> &mut Self {
        self.text("resourceType", Some(resource_type))
            .text("resource", Some(resource))
    }

    fn failure(&mut self, error: Option<&str>, cause: Option<&str>) -> &mut Self {
        self.text("error", error).text("cause", cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::{
        ExecutionStartedEventDetails, HistoryEventType, StateEnteredEventDetails,
        TaskFailedEventDetails, TaskScheduledEventDetails,
    };

    fn event(id: i64, kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(id)
            .previous_event_id(id - 1)
            .timestamp(DateTime::from_millis(1_704_164_645_250))
            .r#type(kind)
    }

    #[test]
    fn history_events_map_to_the_fields_of_the_local_history() {
        let entered = event(2, HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name("ReserveItem")
                    .input(r#"{"customerId":"customer-1","itemId":"item-1"}"#)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            history_entry(&entered),
            TimelineEntry {
                id: "2".into(),
                time: "2024-01-02T03:04:05.250Z".parse().unwrap(),
                kind: "TaskStateEntered".into(),
                source: "ReserveItem".into(),
                detail: json!({
                    "name": "ReserveItem",
                    "input": {"customerId": "customer-1", "itemId": "item-1"}
                }),
            }
        );

        let scheduled = event(3, HistoryEventType::TaskScheduled)
            .task_scheduled_event_details(
                TaskScheduledEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke")
                    .region("eu-west-2")
                    .parameters(r#"{"FunctionName":"reserve","Payload":{"itemId":"item-1"}}"#)
                    .timeout_in_seconds(30)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let scheduled = history_entry(&scheduled);
        assert_eq!(scheduled.source, "invoke");
        assert_eq!(
            scheduled.detail,
            json!({
                "resourceType": "lambda",
                "resource": "invoke",
                "region": "eu-west-2",
                "parameters": {"FunctionName": "reserve", "Payload": {"itemId": "item-1"}},
                "timeoutInSeconds": 30
            })
        );

        let failed = event(4, HistoryEventType::TaskFailed)
            .task_failed_event_details(
                TaskFailedEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke")
                    .error("PaymentFailed")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        // No cause given: none shown, rather than a null.
        assert_eq!(
            history_entry(&failed).detail,
            json!({"resourceType": "lambda", "resource": "invoke", "error": "PaymentFailed"})
        );

        let started = event(1, HistoryEventType::ExecutionStarted)
            .execution_started_event_details(
                ExecutionStartedEventDetails::builder()
                    .input("{}")
                    .role_arn("arn:aws:iam::123456789012:role/workflow")
                    .build(),
            )
            .build()
            .unwrap();
        let started = history_entry(&started);
        assert_eq!(
            (started.source.as_str(), started.detail),
            (
                "",
                json!({"input": {}, "roleArn": "arn:aws:iam::123456789012:role/workflow"})
            )
        );
    }

    #[test]
    fn dynamodb_permission_errors_are_configuration_errors() {
        let denied = store_error(StoreError::new(
            "DynamoDB GetItem on table Orders failed: service error: unhandled error (AccessDeniedException): User is not authorized",
        ));
        assert_eq!(denied.exit, crate::error::Exit::Config);
        assert!(
            denied.message.starts_with("DynamoDB GetItem"),
            "{}",
            denied.message
        );
        assert!(denied.message.contains("credentials"), "{}", denied.message);
        let throttled = store_error(StoreError::new(
            "DynamoDB GetItem on table Orders failed: service error: ProvisionedThroughputExceededException",
        ));
        assert_eq!(throttled.exit, crate::error::Exit::Service);
    }
}

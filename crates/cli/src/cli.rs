//! The command line: every option and subcommand, with the help text users read.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ewf_domain::settings::parse_fail_probability;
use ewf_domain::{CustomerId, ItemId, Mode, OrderId, OrderStatus};
use std::path::PathBuf;
use std::time::Duration;

/// How long a command waits for an order by default (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const EXIT_CODES: &str = "\
Target: a deployed stack when one is named (--stack, the EWF_STACK variable, or stack_name
in ./samconfig.toml), otherwise the embedded local stack in --state-dir (a note on stderr
says so, terminal or not). --local always picks the local stack. --profile, --region and
--endpoint-url without a stack (or with --local) are a usage error. JSON documents name
their target.

Exit codes:
  0    success
  1    an expectation was not met: --expect saw another status, the order did not settle
       within --timeout (the order is still printed), a demo check (parity,
       conservation) failed, or an order of `compare` did not end as its scenario does
  2    usage: a malformed option, id or value (e.g. a probability outside 0..1), a
       command without its subcommand, AWS-only options without a stack
  3    not found: an unknown order or execution, or another lookup of something that
       is not there (an unknown customer on `order create` is no lookup: the saga runs
       and ends the order FAILED, so --expect DELIVERING exits 1)
  4    configuration or credentials: no stack, no region, no credentials, a missing
       tool, an endpoint refusing connections; a state file not writable or not a file
  5    the service refused or failed (e.g. delivering an order that is not in delivery,
       or whose delivery was canceled first: of a deliver and a cancel racing on one
       order, one succeeds and the other exits 5 naming the outcome that won); a
       damaged state file, or one locked by another process past --timeout
  130  interrupted (Ctrl-C)

Errors are one line on stderr, saying what to do next. Data goes to stdout; progress and
notes go to stderr, and only when stderr is a terminal (the note naming an implicitly
chosen local stack always). NO_COLOR turns colours off.
EWF_LOG sets the log filter (e.g. EWF_LOG=debug).

JSON output (--output json): one document on stdout; fields marked ? may be absent.
Times are RFC 3339 in UTC to the nanosecond, e.g. 2026-12-03T06:40:00.123456789Z.
  seed                   {customers, itemsWritten, itemsKept}
  order create|describe, deliver, cancel
                         the order: {customerId, orderId, mode, orderStatus, itemId, itemPrice?,
                         deliveryPrice?, totalPrice?, paymentId?, deliveryAddress?,
                         failureReason?, orderDate, updateDate}
  set-fail-probability   {probability}
  order describe         also deadLetters?: how many dead letters the order has (absent
                         when they could not be read)
  dead-letters           {deadLetters: [letter]}; a letter: {id, orderId?, customerId?,
                         eventType, source, target, lastError, attempts, deadAt,
                         ageSeconds, event}: the event's detail-type and source (empty
                         when the letter holds no event), the service it failed to reach,
                         and the event as that service received it
  dead-letters redrive   {redriven, deadLetters: [letter]}: the letters published again
  compare                {target, date, ordersPerScenario, region, currency, memoryMb,
                         notes, rows: [{scenario, mode, orders, unexpected, settle, finish
                         ({p50Ms, p90Ms, p99Ms}), work {invocations: {function: n},
                         billedMs?, transitions, events, deliveries?, readUnits?,
                         writeUnits?, httpRequests, restRequests, logBytes?}, perOrder,
                         cost: [{service, item, perOrder?, perMillionOrders?}],
                         costPerMillionOrders, diagram?}], prices (the table used,
                         as data/prices.json)}: a figure the target cannot
                         count is null and not priced; --output markdown: a report
  events                 {orderId, mode, customerId?,
                         entries: [{id, time, type, source, detail}]};
                         with --follow, one entry object per line instead;
                         --output mermaid: a sequence diagram.
                         Events mode: a stored event (id, detail-type, source, detail).
                         Workflow mode: an execution history event, alike on both targets:
                         its id and type; source the state's name (state events) or the
                         task's resource (task events); detail the fields of its
                         ...EventDetails, with input, output and parameters as JSON:
                         ExecutionStarted {input, roleArn}; ExecutionSucceeded {output};
                         ExecutionFailed, ...TimedOut, ...Aborted {error?, cause?};
                         <Kind>StateEntered {name, input}; <Kind>StateExited {name, output};
                         TaskScheduled {resourceType, resource, region, parameters,
                         timeoutInSeconds?}; TaskStarted {resourceType, resource};
                         TaskSubmitted, TaskSucceeded {resourceType, resource, output};
                         TaskFailed, TaskTimedOut {resourceType, resource, error?, cause?}
  stack                  {target, outputs: {name: value}}
  demo                   {target, rngSeed?, runs: [{scenario, mode, orderId, itemId, status,
                         expected, stockBefore, stockAfter, paymentStatus?, steps, elapsedMs}],
                         timeline?, checks: [{name, ok, failures}], ok}
  bench                  {orders, concurrency, results: [{mode, phase, orders, failed, seconds,
                         ordersPerSecond, p50Ms, p90Ms, p99Ms, firstFailure?}]}";

/// Deploy, seed and exercise the order sagas, on AWS or on the embedded local stack.
#[derive(Debug, Parser)]
#[command(name = "ewf", version, after_long_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Use the embedded local stack, even when a stack is configured.
    #[arg(long, global = true)]
    pub local: bool,
    /// Where the local stack keeps its state [default: .ewf].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The deployed CloudFormation stack to use.
    #[arg(long, global = true, env = "EWF_STACK", value_name = "NAME")]
    pub stack: Option<String>,
    /// AWS profile, as for the AWS CLI.
    #[arg(long, global = true, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// AWS region, as for the AWS CLI.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS request to this endpoint (an emulator such as moto). The HTTP API's
    /// requests go there too, addressed to the API's host name (the Host header).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The HTTP API's base URL, instead of the stack's HttpApiUrl output (for an emulator
    /// that serves the API at a URL of its own).
    #[arg(long, global = true, env = "EWF_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// Output format: tables for people, or JSON for scripts (shapes in `ewf --help`);
    /// markdown for `compare`, mermaid for `events`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// How long the local stack may wait for another process's lock on its state file:
    /// a command's own `--timeout`, when it has one.
    #[arg(skip)]
    pub lock_wait: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// A report to paste into a document (`compare`).
    Markdown,
    /// A sequence diagram (`events`).
    Mermaid,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the sample customers and items (idempotent: existing items keep their stock).
    Seed {
        /// Overwrite existing items, restoring their stock.
        #[arg(long)]
        reset: bool,
        /// Read customers.json and items.json from DIR instead of the built-in data.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Create or describe orders.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Mark an order's delivery delivered (events mode: a Logistics event on the bus;
    /// workflow mode: the delivery service) and wait for the order to settle. A
    /// delivery keeps its first outcome: exit 5 if it was canceled first.
    Deliver(FinishArgs),
    /// Cancel an order's delivery; the saga returns the item and cancels the payment.
    /// Exit 5 if the delivery was delivered first.
    Cancel(FinishArgs),
    /// Set the probability (0 to 1) that a payment fails.
    SetFailProbability {
        /// 0 never fails, 1 always fails.
        #[arg(value_parser = parse_fail_probability, value_name = "0..1")]
        probability: f64,
    },
    /// An order's timeline: its stored events (events mode) or its execution history
    /// (workflow mode). The mode is found from the order id.
    Events {
        /// The order id, as `ewf order create` prints it.
        #[arg(long, value_name = "ORDER_ID")]
        order: OrderId,
        /// Keep printing new entries until the order is finished.
        #[arg(long)]
        follow: bool,
        /// How long to wait, in seconds, for the timeline to catch up with the order
        /// (events are stored apart from the order and may lag it); when it runs out,
        /// the timeline is shown as it is and the exit code is 1.
        #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs(), value_name = "SECS")]
        timeout: u64,
    },
    /// Events mode: the events whose delivery to a service failed every attempt (a
    /// transient failure that outlasted the retries), which left their orders stuck.
    /// Fix the cause, then `ewf dead-letters redrive`.
    DeadLetters(DeadLettersArgs),
    /// The target's outputs: tables, bus, state machine, endpoints.
    Stack,
    /// Build and deploy the SAM template (sam build, sam deploy).
    Deploy {
        /// Ask for every deployment parameter (sam deploy --guided).
        #[arg(long)]
        guided: bool,
        /// More arguments for sam deploy, after `--`: for example
        /// `-- --parameter-overrides ApiAuthorization=NONE`.
        #[arg(last = true, value_name = "SAM_DEPLOY_ARGS")]
        sam_args: Vec<std::ffi::OsString>,
    },
    /// Delete the deployed stack (sam delete).
    Delete {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Every scenario in both modes on fresh state, with parity and conservation checks.
    /// Runs on the local stack (a temporary state directory unless --state-dir is given),
    /// or on the stack named by --stack / EWF_STACK.
    Demo {
        /// Seed the random generator (ids, payment draws) for a reproducible run.
        #[arg(long, value_name = "N")]
        rng_seed: Option<u64>,
    },
    /// Throughput and latency of the local stack: orders to DELIVERING, then deliveries.
    Bench {
        /// Orders per mode.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        orders: u32,
        /// Orders in flight at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
        concurrency: u32,
        /// Which saga to measure.
        #[arg(long, value_enum, default_value_t = BenchMode::Both)]
        mode: BenchMode,
    },
    /// The two sagas side by side: orders of every scenario in both modes, one at a
    /// time, with the latency to settle and finish (p50/p90/p99), the work one order
    /// costs (invocations, transitions, events, capacity units, API requests), its cost
    /// per million orders from a price table, and a diagram of one order
    /// (--output markdown). Runs on the local stack unless a stack is given.
    Compare {
        /// Orders per scenario and mode.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        orders: u32,
        /// Comma-separated scenarios, named as in `ewf demo` [default: all].
        #[arg(long, value_name = "LIST")]
        scenarios: Option<String>,
        /// Unit prices (JSON shaped as data/prices.json) [default: built in, us-east-1].
        #[arg(long, value_name = "FILE")]
        prices: Option<PathBuf>,
    },
    /// The embedded local stack.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell, e.g. bash, zsh, fish.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's own `--timeout`, for the commands that have one.
    pub fn timeout(&self) -> Option<Duration> {
        let seconds = match self {
            Self::Order(OrderCommand::Create { timeout, .. }) => *timeout,
            Self::Deliver(args) | Self::Cancel(args) => args.timeout,
            _ => return None,
        };
        Some(Duration::from_secs(seconds))
    }
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Start an order. On the local stack the saga always runs until the order settles
    /// (DELIVERING or a final status); on AWS, --wait follows it until then.
    Create {
        /// The customer, e.g. customer-1.
        customer: CustomerId,
        /// The item, e.g. item-1.
        item: ItemId,
        /// workflow: Step Functions orchestrates; events: the services react to events.
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Wait until the order settles (DELIVERING or a final status).
        #[arg(long)]
        wait: bool,
        /// Exit 1 unless the order settles in STATUS (implies --wait).
        #[arg(long, value_name = "STATUS", ignore_case = true, value_parser = status_parser())]
        expect: Option<OrderStatus>,
        /// How long to wait for the order (to be recorded, or with --wait to settle), in
        /// seconds; when it runs out, the order is shown as last seen and the exit code is 1.
        #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs(), value_name = "SECS")]
        timeout: u64,
    },
    /// Show an order.
    Describe(OrderArgs),
}

#[derive(Debug, Args)]
pub struct OrderArgs {
    /// The customer, e.g. customer-1.
    pub customer: CustomerId,
    /// The order id, as `ewf order create` prints it.
    pub order: OrderId,
}

#[derive(Debug, Args)]
pub struct FinishArgs {
    #[command(flatten)]
    pub order: OrderArgs,
    /// How long to wait for the order to reach its final status, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs(), value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeadLettersArgs {
    /// Only the dead letters of this order.
    #[arg(long, value_name = "ORDER_ID")]
    pub order: Option<OrderId>,
    #[command(subcommand)]
    pub command: Option<DeadLettersCommand>,
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Publish the dead letters' events again (each removed once published again) and
    /// print what was redriven. Safe to repeat: every handler is idempotent.
    Redrive(RedriveArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RedriveArgs {
    /// Only the dead letters of this order.
    #[arg(long, value_name = "ORDER_ID")]
    pub order: Option<OrderId>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Serve the HTTP API of the local stack on 127.0.0.1 until Ctrl-C.
    Serve {
        /// The port on 127.0.0.1 (0: any free port; the URL is printed).
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Workflow,
    Events,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Workflow => Mode::Workflow,
            ModeArg::Events => Mode::Events,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    Workflow,
    Events,
    Both,
}

impl BenchMode {
    pub fn modes(self) -> &'static [Mode] {
        match self {
            Self::Workflow => &[Mode::Workflow],
            Self::Events => &[Mode::Events],
            Self::Both => &[Mode::Workflow, Mode::Events],
        }
    }
}

/// The order statuses as `--expect`'s possible values, so that `--help` and the shell
/// completions list them.
fn status_parser() -> impl TypedValueParser<Value = OrderStatus> {
    PossibleValuesParser::new(OrderStatus::ALL.iter().map(|status| status.as_str()))
        .try_map(|text| text.parse::<OrderStatus>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn expect_takes_the_order_statuses_in_any_case() {
        let expect = |value: &str| {
            Cli::try_parse_from([
                "ewf", "order", "create", "c-1", "i-1", "--mode", "events", "--expect", value,
            ])
            .map(|cli| match cli.command {
                Command::Order(OrderCommand::Create { expect, .. }) => expect,
                _ => None,
            })
        };
        assert_eq!(
            expect("PAYMENT_FAILED").unwrap(),
            Some(OrderStatus::PaymentFailed)
        );
        assert_eq!(expect("delivering").unwrap(), Some(OrderStatus::Delivering));
        let refused = expect("LOST").unwrap_err().to_string();
        assert!(refused.contains("ITEM_NOT_AVAILABLE"), "{refused}");
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "ewf", "order", "describe", "c-1", "o-1", "--local", "--output", "json",
        ])
        .unwrap();
        assert!(cli.global.local);
        assert_eq!(cli.global.output, Format::Json);
    }
}

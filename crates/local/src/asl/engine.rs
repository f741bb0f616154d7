//! Running executions: one driver at a time advances an execution, state by state,
//! storing every transition; a task token reply resumes it from the store.

use super::definition::{Pass, State, StateKind, StateMachine, Task, Transition};
use super::history::{Details, entered, event, json_text, state_event, task_event};
use super::path::{place, select, select_owned};
use super::store::{Cursor, Delivery, End, Event, Phase, Record, Reply, Store};
use super::{AslError, ExecutionStatus, ExecutionSummary, Failure, HistoryEvent, errors};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use ewf_domain::entry::FunctionError;
use ewf_domain::ports::TaskResult;
use serde_json::{Value, json};
use std::time::Duration;
use ulid::Ulid;

type Timestamp = DateTime<Utc>;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "local";

/// Calls the functions the Task states name.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Invokes a function by the FunctionName in the state's Parameters (already
    /// substituted) and returns its output, or the error it raised.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError>;
}

/// The durable store of executions, and the driver that advances them.
pub struct Executions {
    store: Store,
    time_scale: f64,
}

impl Executions {
    /// Opens (creating if needed) the executions' tables in a SQLite file that other
    /// processes may share.
    pub fn open(path: &std::path::Path) -> Result<Self, AslError> {
        Self::shared(ewf_sqlite::connect(path)?)
    }

    /// The executions' tables on a connection the rest of the process uses too.
    pub fn shared(connection: ewf_sqlite::SharedConnection) -> Result<Self, AslError> {
        Ok(Self {
            store: Store::shared(connection)?,
            time_scale: 1.0,
        })
    }

    /// A private in-memory store, for tests.
    pub fn in_memory() -> Result<Self, AslError> {
        Ok(Self {
            store: Store::in_memory()?,
            time_scale: 1.0,
        })
    }

    /// Multiplies the Wait states' durations and the Retry intervals (0 runs them at
    /// once), so that local runs and tests need not wait real seconds. Timeouts are
    /// not scaled.
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = if scale.is_finite() && scale >= 0.0 {
            scale
        } else {
            1.0
        };
        self
    }

    /// Starts an execution and runs it until it ends, waits for a task token or for
    /// time to pass (a Wait, a retry's delay). As on AWS, starting again with the same
    /// name and input while it runs returns it; any other reuse of a name is
    /// ExecutionAlreadyExists.
    pub async fn start(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
        name: &str,
        input: Value,
    ) -> Result<ExecutionSummary, AslError> {
        let driver = Ulid::new().to_string();
        match self.create(machine, name, input, Some(&driver))? {
            Some(summary) => Ok(summary),
            None => self.drive(machine, invoker, driver, name).await,
        }
    }

    /// StartExecution that leaves the running to [`Executions::resume_due`]: the
    /// execution is stored, ready at its first state, and held by nobody.
    pub fn submit(
        &self,
        machine: &StateMachine,
        name: &str,
        input: Value,
    ) -> Result<ExecutionSummary, AslError> {
        match self.create(machine, name, input, None)? {
            Some(existing) => Ok(existing),
            None => self.describe(name)?.ok_or(AslError::TaskDoesNotExist),
        }
    }

    /// Stores a new execution, held by `driver` if given. The execution already there
    /// if the name is taken by a running execution with the same input (as on AWS,
    /// starting it again returns it); `None` once created.
    fn create(
        &self,
        machine: &StateMachine,
        name: &str,
        input: Value,
        driver: Option<&str>,
    ) -> Result<Option<ExecutionSummary>, AslError> {
        let now = Utc::now();
        let summary = ExecutionSummary {
            name: name.to_owned(),
            execution_arn: format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:execution:{}:{name}",
                machine.name()
            ),
            status: ExecutionStatus::Running,
            input: input.clone(),
            output: None,
            error: None,
            cause: None,
            start_date: now,
            stop_date: None,
        };
        let deadline = machine
            .timeout_seconds
            .map(|seconds| later(now, Duration::from_secs(seconds)));
        let first = machine
            .state(&machine.start_at)
            .ok_or_else(|| unknown_state(name, &machine.start_at))?;
        let input_json = json_text(&input);
        let events = [
            event(
                "ExecutionStarted",
                Details {
                    input: Some(&input_json),
                    role_arn: Some(&role(machine)),
                    ..Details::default()
                },
            ),
            entered(first, &machine.start_at, &input_json),
        ];
        let cursor = Cursor::enter(&machine.start_at, input.clone(), now);
        if !self
            .store
            .create(&summary, deadline, &cursor, driver, &events)?
        {
            return match self.describe(name)? {
                Some(existing)
                    if existing.status == ExecutionStatus::Running && existing.input == input =>
                {
                    Ok(Some(existing))
                }
                _ => Err(AslError::ExecutionAlreadyExists(name.to_owned())),
            };
        }
        tracing::info!(
            execution = name,
            machine = machine.name(),
            "execution started"
        );
        Ok(None)
    }

    /// SendTaskSuccess: the task waiting on `token` returns `output`, and the execution
    /// runs on. Called while the execution is still being driven (for instance by the
    /// very function that received the token), it stores the output for that driver.
    pub async fn send_task_success(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
        token: &str,
        output: Value,
    ) -> Result<ExecutionSummary, AslError> {
        self.reply(machine, invoker, token, Reply::Success(output))
            .await
    }

    /// SendTaskSuccess or SendTaskFailure that leaves the driving to
    /// [`Executions::resume_due`]: for a caller that runs inside one of the invoker's
    /// tasks.
    pub fn record(&self, token: &str, result: &TaskResult) -> Result<(), AslError> {
        let reply = match result {
            TaskResult::Success(output) => Reply::Success(output.clone()),
            TaskResult::Failure { error, cause } => Reply::Failure(Failure::new(error, cause)),
        };
        match self.store.deliver(token, &reply, Utc::now())? {
            Delivery::Stored(_) => Ok(()),
            Delivery::Expired(_) => Err(AslError::TaskTimedOut),
        }
    }

    /// SendTaskFailure: the task waiting on `token` fails with `error` and `cause`, which
    /// its Retry and Catch then handle.
    pub async fn send_task_failure(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<ExecutionSummary, AslError> {
        self.reply(
            machine,
            invoker,
            token,
            Reply::Failure(Failure::new(error, cause)),
        )
        .await
    }

    /// Advances every execution that has something to do and nobody to do it: a task
    /// or execution timeout that has passed, a Wait that is over, or a driver that
    /// died mid-state. Call it now and then (e.g. when the local stack starts).
    pub async fn resume_due(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
    ) -> Result<Vec<ExecutionSummary>, AslError> {
        let mut advanced = Vec::new();
        for name in self.store.due(Utc::now())? {
            advanced.push(self.advance(machine, invoker, &name).await?);
        }
        Ok(advanced)
    }

    /// When the next execution has something to do that is not due yet (a retry, a
    /// Wait, a deadline), if one has.
    pub fn next_wake(&self) -> Result<Option<Timestamp>, AslError> {
        self.store.next_wake()
    }

    /// DescribeExecution.
    pub fn describe(&self, name: &str) -> Result<Option<ExecutionSummary>, AslError> {
        Ok(self.store.load(name)?.map(|record| record.summary))
    }

    /// GetExecutionHistory, oldest event first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, AslError> {
        self.store.history(name)
    }

    async fn reply(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
        token: &str,
        reply: Reply,
    ) -> Result<ExecutionSummary, AslError> {
        match self.store.deliver(token, &reply, Utc::now())? {
            Delivery::Stored(name) => self.advance(machine, invoker, &name).await,
            Delivery::Expired(name) => {
                // Let the execution record the timeout before telling the caller.
                self.advance(machine, invoker, &name).await?;
                Err(AslError::TaskTimedOut)
            }
        }
    }

    /// Drives the execution if nobody else does; otherwise its driver will see what
    /// changed, and this returns it as it stands.
    async fn advance(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
        name: &str,
    ) -> Result<ExecutionSummary, AslError> {
        let driver = Ulid::new().to_string();
        if self.store.claim(name, &driver, Utc::now())? {
            self.drive(machine, invoker, driver, name).await
        } else {
            self.describe(name)?.ok_or(AslError::TaskDoesNotExist)
        }
    }

    /// Drives the execution that `driver` holds.
    async fn drive(
        &self,
        machine: &StateMachine,
        invoker: &dyn TaskInvoker,
        driver: String,
        name: &str,
    ) -> Result<ExecutionSummary, AslError> {
        Driver {
            executions: self,
            machine,
            invoker,
            driver,
            unsaved: Vec::new(),
        }
        .drive(name)
        .await
    }

    fn scaled(&self, duration: Duration) -> Duration {
        Duration::try_from_secs_f64(duration.as_secs_f64() * self.time_scale)
            .unwrap_or(Duration::MAX)
    }
}

/// What running (part of) a state came to.
enum Step {
    /// The state is done: record `events`, leave with `output` to `next`.
    Done {
        events: Vec<Event>,
        output: Value,
        next: Transition,
    },
    /// An error nothing handles: the execution fails.
    Failed {
        events: Vec<Event>,
        failure: Failure,
    },
    /// The task runs again after `delay`.
    Retry {
        events: Vec<Event>,
        attempts: Vec<u64>,
        delay: Duration,
    },
    /// A Wait state sleeps until then.
    Sleep(Timestamp),
    /// Taken up before its time (a retry's delay is not over).
    Early,
    /// The task waits for its token; the cursor is already stored.
    Suspend,
    /// Another driver took the execution over.
    Lost,
}

impl Step {
    /// The step with `earlier` events recorded before its own.
    fn after(mut self, earlier: impl IntoIterator<Item = Event>) -> Self {
        if let Step::Done { events, .. }
        | Step::Failed { events, .. }
        | Step::Retry { events, .. } = &mut self
        {
            events.splice(0..0, earlier);
        }
        self
    }
}

/// How a driver goes on after a step.
enum Next {
    /// At this cursor (stored, or to be stored with the driver's unsaved events).
    At(Cursor),
    /// From the execution as stored (something else may have changed it).
    Reload,
    /// It no longer drives the execution.
    Stop,
}

fn continue_if(holds: bool) -> Next {
    if holds { Next::Reload } else { Next::Stop }
}

/// One claim on one execution.
struct Driver<'a> {
    executions: &'a Executions,
    machine: &'a StateMachine,
    invoker: &'a dyn TaskInvoker,
    driver: String,
    /// Events of transitions not stored yet. A transition from one state to the next is
    /// stored with the next write the driver has to make (a task token, a retry, a
    /// wait, the end): one write for a run of states instead of one each. Were the
    /// process to stop in between, the execution would resume from the last stored
    /// state and invoke its (idempotent) functions again.
    unsaved: Vec<Event>,
}

impl Driver<'_> {
    fn store(&self) -> &Store {
        &self.executions.store
    }

    /// The unsaved events followed by `events`, taking the unsaved ones.
    fn with_unsaved(&mut self, events: impl IntoIterator<Item = Event>) -> Vec<Event> {
        let mut all = std::mem::take(&mut self.unsaved);
        all.extend(events);
        all
    }

    /// Stores the execution at `cursor` with the unsaved events and `events`; false
    /// when the driver no longer holds it.
    fn save(
        &mut self,
        name: &str,
        cursor: &Cursor,
        events: impl IntoIterator<Item = Event>,
        now: Timestamp,
    ) -> Result<bool, AslError> {
        let events = self.with_unsaved(events);
        self.store().save(name, &self.driver, cursor, &events, now)
    }

    /// Stores the execution at `cursor`, to be taken up again at `wake_at` by whoever
    /// looks for due executions, and lets go of it: a driver never sleeps holding an
    /// execution (nor the transaction it may be part of).
    fn park(
        &mut self,
        name: &str,
        cursor: &Cursor,
        events: impl IntoIterator<Item = Event>,
        now: Timestamp,
    ) -> Result<Next, AslError> {
        if !self.save(name, cursor, events, now)? {
            return Ok(Next::Stop);
        }
        self.store().release(name, &self.driver)?;
        Ok(Next::Stop)
    }

    async fn drive(mut self, name: &str) -> Result<ExecutionSummary, AslError> {
        let mut known = None;
        loop {
            let record = match known.take() {
                Some(record) => record,
                None => self.store().load(name)?.ok_or(AslError::TaskDoesNotExist)?,
            };
            if record.summary.status != ExecutionStatus::Running
                || record.driver.as_deref() != Some(&self.driver)
            {
                return Ok(record.summary);
            }
            let now = Utc::now();
            if record.deadline.is_some_and(|deadline| deadline <= now) {
                self.end(
                    name,
                    ExecutionStatus::TimedOut,
                    Vec::new(),
                    None,
                    Some(execution_timeout()),
                )?;
                continue;
            }
            let machine = self.machine;
            let Some(state) = machine.state(&record.cursor.state) else {
                self.store().release(name, &self.driver)?;
                return Err(unknown_state(name, &record.cursor.state));
            };
            let step = self.step(&record, state, now).await?;
            match self.apply(&record, state, step).await? {
                Next::Stop => {
                    return self
                        .executions
                        .describe(name)?
                        .ok_or(AslError::TaskDoesNotExist);
                }
                Next::Reload => {}
                Next::At(cursor) => known = Some(Record { cursor, ..record }),
            }
        }
    }

    /// Records what a step came to, and says how the driver goes on.
    async fn apply(
        &mut self,
        record: &Record,
        state: &State,
        step: Step,
    ) -> Result<Next, AslError> {
        let name = record.summary.name.as_str();
        let from = record.cursor.state.as_str();
        let now = Utc::now();
        match step {
            Step::Done {
                mut events,
                output,
                next,
            } => {
                // The state's output is the next state's input: written out once for both.
                let output_json = json_text(&output);
                events.push(state_event(
                    state,
                    "Exited",
                    Details {
                        name: Some(from),
                        output: Some(&output_json),
                        ..Details::default()
                    },
                ));
                match next {
                    Transition::End => {
                        self.end(name, ExecutionStatus::Succeeded, events, Some(output), None)
                    }
                    Transition::Next(next) => {
                        let target = self
                            .machine
                            .state(&next)
                            .ok_or_else(|| unknown_state(name, &next))?;
                        events.push(entered(target, &next, &output_json));
                        tracing::debug!(execution = name, from, to = %next, "transition");
                        self.unsaved.append(&mut events);
                        Ok(Next::At(Cursor::enter(&next, output, now)))
                    }
                }
            }
            Step::Failed { events, failure } => {
                self.end(name, ExecutionStatus::Failed, events, None, Some(failure))
            }
            Step::Retry {
                events,
                attempts,
                delay,
            } => {
                let delay = self.executions.scaled(delay);
                let cursor = Cursor {
                    phase: Phase::Ready,
                    attempts,
                    token: None,
                    wake_at: (!delay.is_zero()).then(|| later(now, delay)),
                    ..record.cursor.clone()
                };
                if cursor.wake_at.is_some() {
                    return self.park(name, &cursor, events, now);
                }
                self.unsaved.extend(events);
                Ok(Next::At(cursor))
            }
            Step::Sleep(until) => {
                let cursor = Cursor {
                    phase: Phase::Sleeping,
                    wake_at: Some(until),
                    ..record.cursor.clone()
                };
                if until <= now {
                    return Ok(Next::At(cursor));
                }
                self.park(name, &cursor, [], now)
            }
            Step::Early => {
                // Stored as it is, with its time to wake: let go until then.
                self.store().release(name, &self.driver)?;
                Ok(Next::Stop)
            }
            Step::Suspend => {
                // The task's cursor is stored (with the token, before the invocation).
                // Released: the token's reply will resume it. Not released: the reply
                // came while the function ran, or another driver took over.
                Ok(continue_if(!self.store().release(name, &self.driver)?))
            }
            Step::Lost => Ok(Next::Stop),
        }
    }

    fn end(
        &mut self,
        name: &str,
        status: ExecutionStatus,
        mut events: Vec<Event>,
        output: Option<Value>,
        failure: Option<Failure>,
    ) -> Result<Next, AslError> {
        let output_json = output.as_ref().map(json_text);
        let details = match (&output_json, &failure) {
            (_, Some(failure)) => Details::failure(failure),
            (Some(output), None) => Details::output(output),
            (None, None) => Details::default(),
        };
        let kind = match status {
            ExecutionStatus::Succeeded => "ExecutionSucceeded",
            ExecutionStatus::TimedOut => "ExecutionTimedOut",
            ExecutionStatus::Failed | ExecutionStatus::Running => "ExecutionFailed",
        };
        events.push(event(kind, details));
        let error = failure.as_ref().map(|failure| failure.error.as_str());
        tracing::info!(execution = name, status = %status, error, "execution ended");
        let events = self.with_unsaved(events);
        self.store().finish(
            name,
            &self.driver,
            &End {
                status,
                output,
                failure,
            },
            &events,
            Utc::now(),
        )?;
        // Either way the loop reloads the execution and returns it as it ended.
        Ok(Next::Reload)
    }

    async fn step(
        &mut self,
        record: &Record,
        state: &State,
        now: Timestamp,
    ) -> Result<Step, AslError> {
        let cursor = &record.cursor;
        let context = self.context(record, state, None);
        let raw = &cursor.input;
        let effective = || select(state.input_path.as_ref(), raw, &context, "InputPath");
        let finish = |output: Result<Value, Failure>, next: Transition| match output {
            Ok(output) => Step::Done {
                events: Vec::new(),
                output,
                next,
            },
            Err(failure) => Step::Failed {
                events: Vec::new(),
                failure,
            },
        };
        Ok(match (&state.kind, cursor.phase) {
            (StateKind::Task(_), Phase::Ready) if cursor.wake_at.is_some_and(|at| at > now) => {
                Step::Early
            }
            (StateKind::Task(task), Phase::Ready) => {
                self.attempt(record, state, task, new_token(task)).await?
            }
            // Submitting after a crash: invoke again with the same token, unless the
            // reply already came.
            (StateKind::Task(task), Phase::Submitting) if cursor.reply.is_none() => {
                self.attempt(record, state, task, cursor.token.clone())
                    .await?
            }
            (StateKind::Task(task), Phase::Submitting | Phase::Waiting) => {
                self.waiting(record, state, task, now)
            }
            (StateKind::Pass(pass), Phase::Ready) => {
                finish(pass_output(pass, state, raw, &context), state.next.clone())
            }
            (StateKind::Choice(choice), Phase::Ready) => {
                let chosen = effective().and_then(|input| {
                    let next = choice.next(&input, &context)?;
                    Ok((
                        select(state.output_path.as_ref(), &input, &context, "OutputPath")?
                            .into_owned(),
                        next,
                    ))
                });
                match chosen {
                    Ok((output, next)) => Step::Done {
                        events: Vec::new(),
                        output,
                        next: Transition::Next(next),
                    },
                    Err(failure) => Step::Failed {
                        events: Vec::new(),
                        failure,
                    },
                }
            }
            (StateKind::Wait(wait), Phase::Ready) => {
                match effective().and_then(|input| wait.duration(&input, &context, now)) {
                    Ok(duration) => Step::Sleep(later(now, self.executions.scaled(duration))),
                    Err(failure) => Step::Failed {
                        events: Vec::new(),
                        failure,
                    },
                }
            }
            (StateKind::Wait(_), Phase::Sleeping) => match cursor.wake_at {
                Some(until) if until > now => Step::Sleep(until),
                _ => finish(
                    effective().and_then(|input| {
                        select_owned(
                            state.output_path.as_ref(),
                            input.into_owned(),
                            &context,
                            "OutputPath",
                        )
                    }),
                    state.next.clone(),
                ),
            },
            (StateKind::Succeed, Phase::Ready) => finish(
                effective().and_then(|input| {
                    select_owned(
                        state.output_path.as_ref(),
                        input.into_owned(),
                        &context,
                        "OutputPath",
                    )
                }),
                Transition::End,
            ),
            (StateKind::Fail { error, cause }, Phase::Ready) => Step::Failed {
                events: Vec::new(),
                failure: Failure::new(
                    error.as_deref().unwrap_or_default(),
                    cause.clone().unwrap_or_default(),
                ),
            },
            (_, phase) => {
                return Err(AslError::Corrupt(format!(
                    "state {:?} cannot be in phase {phase:?}",
                    cursor.state
                )));
            }
        })
    }

    /// Runs one attempt of a Task: invokes the function, and for a
    /// `.waitForTaskToken` task stores the token before the call, so that a reply sent
    /// during the call finds it.
    async fn attempt(
        &mut self,
        record: &Record,
        state: &State,
        task: &Task,
        token: Option<String>,
    ) -> Result<Step, AslError> {
        let (name, cursor) = (record.summary.name.as_str(), &record.cursor);
        let context = self.context(record, state, token.as_deref());
        let prepared = select(
            state.input_path.as_ref(),
            &cursor.input,
            &context,
            "InputPath",
        )
        .and_then(|input| task.parameters.render(&input, &context))
        .and_then(|parameters| match parameters.get("FunctionName") {
            Some(Value::String(function)) => Ok((function.clone(), parameters)),
            _ => Err(Failure::new(
                errors::RUNTIME,
                "Parameters.FunctionName must be a string",
            )),
        });
        let (function, mut parameters) = match prepared {
            Ok(prepared) => prepared,
            Err(failure) => return Ok(recover(task, cursor, Vec::new(), failure)),
        };
        let now = Utc::now();
        let timeout = Duration::from_secs(task.timeout_seconds);
        let events = [
            task_event(
                "TaskScheduled",
                task,
                Details {
                    region: Some(REGION),
                    parameters: Some(&json_text(&parameters)),
                    timeout_in_seconds: Some(task.timeout_seconds),
                    ..Details::default()
                },
            ),
            task_event("TaskStarted", task, Details::default()),
        ];
        let submitting = Cursor {
            phase: if token.is_some() {
                Phase::Submitting
            } else {
                Phase::Ready
            },
            token: token.clone(),
            wake_at: token.as_ref().map(|_| later(now, timeout)),
            ..cursor.clone()
        };
        // A callback needs its token stored before the function can pass it on. A plain
        // invocation's events are stored with its outcome instead: one write per state,
        // and a crash before it re-invokes an idempotent function.
        if token.is_some() && !self.save(name, &submitting, events.clone(), now)? {
            return Ok(Step::Lost);
        }
        let payload = parameters
            .as_object_mut()
            .and_then(|fields| fields.remove("Payload"))
            .unwrap_or_else(|| json!({}));
        tracing::debug!(execution = name, state = %cursor.state, function, "invoking");
        let result =
            match tokio::time::timeout(timeout, self.invoker.invoke(&function, payload)).await {
                Ok(Ok(output)) => Ok(invoke_result(output)),
                Ok(Err(err)) => Err(Failure::new(
                    &err.error_type,
                    serde_json::to_string(&err).expect("a function error is two strings"),
                )),
                Err(_) => Err(task_timeout(task)),
            };
        match (result, token.is_some()) {
            (Ok(output), true) => {
                let waiting = Cursor {
                    phase: Phase::Waiting,
                    ..submitting
                };
                let submitted =
                    task_event("TaskSubmitted", task, Details::output(&json_text(&output)));
                let saved = self.save(name, &waiting, [submitted], Utc::now())?;
                Ok(if saved { Step::Suspend } else { Step::Lost })
            }
            (Ok(output), false) => Ok(self.succeeded(record, state, task, output).after(events)),
            (Err(failure), true) => Ok(self.failed(record, task, failure)),
            (Err(failure), false) => Ok(self.failed(record, task, failure).after(events)),
        }
    }

    /// A `.waitForTaskToken` task after its function returned: its reply, its timeout,
    /// or more waiting.
    fn waiting(&self, record: &Record, state: &State, task: &Task, now: Timestamp) -> Step {
        match &record.cursor.reply {
            Some(Reply::Success(output)) => self.succeeded(record, state, task, output.clone()),
            Some(Reply::Failure(failure)) => self.failed(record, task, failure.clone()),
            None if record
                .cursor
                .wake_at
                .is_some_and(|deadline| deadline <= now) =>
            {
                self.failed(record, task, task_timeout(task))
            }
            None => Step::Suspend,
        }
    }

    fn succeeded(&self, record: &Record, state: &State, task: &Task, result: Value) -> Step {
        let events = vec![task_event(
            "TaskSucceeded",
            task,
            Details::output(&json_text(&result)),
        )];
        let context = self.context(record, state, None);
        let output = match &task.result_selector {
            Some(selector) => selector.render(&result, &context),
            None => Ok(result),
        }
        .and_then(|result| place(task.result_path.as_ref(), &record.cursor.input, result))
        .and_then(|combined| {
            select_owned(state.output_path.as_ref(), combined, &context, "OutputPath")
        });
        match output {
            Ok(output) => Step::Done {
                events,
                output,
                next: state.next.clone(),
            },
            Err(failure) => recover(task, &record.cursor, events, failure),
        }
    }

    fn failed(&self, record: &Record, task: &Task, failure: Failure) -> Step {
        let kind = if failure.error == errors::TIMEOUT {
            "TaskTimedOut"
        } else {
            "TaskFailed"
        };
        let events = vec![task_event(kind, task, Details::failure(&failure))];
        recover(task, &record.cursor, events, failure)
    }

    /// The context object (`$$`) as the current state sees it; null for a state that
    /// does not read it.
    fn context(&self, record: &Record, state: &State, token: Option<&str>) -> Value {
        if !state.uses_context {
            return Value::Null;
        }
        let summary = &record.summary;
        let mut context = json!({
            "Execution": {
                "Id": summary.execution_arn,
                "Input": summary.input,
                "Name": summary.name,
                "RoleArn": role(self.machine),
                "StartTime": stamp(&summary.start_date),
            },
            "State": {
                "EnteredTime": stamp(&record.cursor.entered),
                "Name": record.cursor.state,
                "RetryCount": record.cursor.attempts.iter().sum::<u64>(),
            },
            "StateMachine": {
                "Id": format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{}", self.machine.name()),
                "Name": self.machine.name(),
            },
        });
        if let (Some(token), Some(fields)) = (token, context.as_object_mut()) {
            fields.insert("Task".to_owned(), json!({ "Token": token }));
        }
        context
    }
}

/// After a task error: retry it, catch it, or fail the execution.
fn recover(task: &Task, cursor: &Cursor, events: Vec<Event>, failure: Failure) -> Step {
    let retrier = task
        .retry
        .iter()
        .enumerate()
        .find(|(_, retrier)| errors::handled(&retrier.error_equals, &failure.error));
    if let Some((index, retrier)) = retrier {
        let done = cursor.attempts.get(index).copied().unwrap_or(0);
        if done < retrier.max_attempts {
            let mut attempts = cursor.attempts.clone();
            attempts.resize(task.retry.len(), 0);
            attempts[index] = done + 1;
            let seconds = retrier.interval_seconds as f64 * retrier.backoff_rate.powf(done as f64);
            let delay = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
            let delay = retrier
                .max_delay_seconds
                .map_or(delay, |max| delay.min(Duration::from_secs(max)));
            return Step::Retry {
                events,
                attempts,
                delay,
            };
        }
    }
    let catcher = task
        .catch
        .iter()
        .find(|catcher| errors::handled(&catcher.error_equals, &failure.error));
    let Some(catcher) = catcher else {
        return Step::Failed { events, failure };
    };
    let error_output = json!({ "Error": failure.error, "Cause": failure.cause });
    match place(catcher.result_path.as_ref(), &cursor.input, error_output) {
        Ok(output) => Step::Done {
            events,
            output,
            next: Transition::Next(catcher.next.clone()),
        },
        Err(failure) => Step::Failed { events, failure },
    }
}

fn pass_output(pass: &Pass, state: &State, raw: &Value, context: &Value) -> Result<Value, Failure> {
    let input = select(state.input_path.as_ref(), raw, context, "InputPath")?;
    let result = match (&pass.result, &pass.parameters) {
        (Some(result), _) => result.clone(),
        (None, Some(parameters)) => parameters.render(&input, context)?,
        (None, None) => input.into_owned(),
    };
    let combined = place(pass.result_path.as_ref(), raw, result)?;
    select_owned(state.output_path.as_ref(), combined, context, "OutputPath")
}

fn new_token(task: &Task) -> Option<String> {
    // Two ULIDs: 160 random bits, so a token cannot be guessed.
    task.wait_for_token
        .then(|| format!("{}{}", Ulid::new(), Ulid::new()))
}

fn task_timeout(task: &Task) -> Failure {
    Failure::new(
        errors::TIMEOUT,
        format!(
            "The task did not finish within {} seconds",
            task.timeout_seconds
        ),
    )
}

fn execution_timeout() -> Failure {
    Failure::new(
        errors::TIMEOUT,
        "The execution ran longer than the state machine's TimeoutSeconds",
    )
}

fn unknown_state(execution: &str, state: &str) -> AslError {
    AslError::UnknownState {
        execution: execution.to_owned(),
        state: state.to_owned(),
    }
}

fn role(machine: &StateMachine) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{}-local", machine.name())
}

fn later(now: Timestamp, duration: Duration) -> Timestamp {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_add_signed(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Times in the context object, as Step Functions gives them: to the millisecond.
fn stamp(time: &Timestamp) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What a Lambda invoke task returns, with the function's output as its payload.
fn invoke_result(payload: Value) -> Value {
    let mut result = serde_json::Map::new();
    result.insert("ExecutedVersion".to_owned(), json!("$LATEST"));
    result.insert("Payload".to_owned(), payload);
    result.insert("StatusCode".to_owned(), json!(200));
    Value::Object(result)
}

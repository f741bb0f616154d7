//! The executions' durable state: one row per execution (where it is, what it waits
//! for, who drives it) and its history events, in tables of their own in the local
//! stack's SQLite file. Every change is one short immediate transaction; writes by a
//! driver are conditional on it still holding the execution.

use super::{AslError, Failure};
use chrono::{DateTime, Utc};
use ewf_sqlite::SharedConnection;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::MutexGuard;

type Timestamp = DateTime<Utc>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS asl_executions (
    name        TEXT PRIMARY KEY,
    arn         TEXT NOT NULL,
    status      TEXT NOT NULL,
    input       TEXT NOT NULL,
    output      TEXT,
    error       TEXT,
    cause       TEXT,
    start_date  TEXT NOT NULL,
    stop_date   TEXT,
    deadline    TEXT,
    state       TEXT NOT NULL,
    state_input TEXT NOT NULL,
    entered     TEXT NOT NULL,
    phase       TEXT NOT NULL,
    attempts    TEXT NOT NULL,
    token       TEXT UNIQUE,
    wake_at     TEXT,
    reply       TEXT,
    driver      TEXT,
    lease_until TEXT,
    last_event  INTEGER NOT NULL
);
-- One index per reason to be due (see `due`): most running executions wait for a task
-- token, and looking for the few with something to do must not read them all.
CREATE INDEX IF NOT EXISTS asl_executions_by_phase ON asl_executions (status, phase);
CREATE INDEX IF NOT EXISTS asl_executions_replied ON asl_executions (status) WHERE reply IS NOT NULL;
CREATE INDEX IF NOT EXISTS asl_executions_by_wake ON asl_executions (status, wake_at);
CREATE INDEX IF NOT EXISTS asl_executions_by_deadline ON asl_executions (status, deadline);
-- The events of one write in one row (ids first_id, first_id + 1, ...): a driver
-- records the events of several states at once, and one row each would cost a write each.
CREATE TABLE IF NOT EXISTS asl_history (
    execution   TEXT NOT NULL,
    first_id    INTEGER NOT NULL,
    events      TEXT NOT NULL,
    PRIMARY KEY (execution, first_id)
);
";

/// How long a driver may hold an execution without writing before another process
/// presumes it dead and takes over. (Inside a batch of the local stack, a claim is
/// committed only with its release, so a lease outlives a process only when the
/// executions are driven outside one.)
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
        }
    }

    fn parse(text: &str) -> Result<Self, AslError> {
        [Self::Running, Self::Succeeded, Self::Failed, Self::TimedOut]
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| AslError::Corrupt(format!("status {text:?}")))
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What DescribeExecution tells about an execution.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub name: String,
    pub execution_arn: String,
    pub status: ExecutionStatus,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date: Timestamp,
    pub stop_date: Option<Timestamp>,
}

/// One event of an execution's history, as GetExecutionHistory lists it: `details` holds
/// the fields of the event's `...EventDetails`, with input, output and parameters as
/// JSON values (GetExecutionHistory has them as JSON text).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: i64,
    pub previous_event_id: i64,
    pub timestamp: Timestamp,
    #[serde(rename = "type")]
    pub event_type: String,
    pub details: Value,
}

/// An event about to be recorded, its details already JSON text.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Event {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: Timestamp,
    details: Box<RawValue>,
}

impl Event {
    pub(crate) fn new(event_type: &str, timestamp: Timestamp, details: &impl Serialize) -> Self {
        Self {
            event_type: event_type.to_owned(),
            timestamp,
            details: serde_json::value::to_raw_value(details)
                .expect("history details are strings, numbers and JSON values"),
        }
    }
}

/// An event as recorded, read back.
#[derive(Deserialize)]
struct Recorded {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: Timestamp,
    details: Value,
}

/// Where in its current state an execution is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Phase {
    /// Entered; its work is still to do (or to redo, after a crash).
    Ready,
    /// A task token was issued and the function is being invoked with it.
    Submitting,
    /// The function has the token; the execution waits for it to come back.
    Waiting,
    /// A Wait state sleeps until `wake_at`.
    Sleeping,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Ready => "ready",
            Phase::Submitting => "submitting",
            Phase::Waiting => "waiting",
            Phase::Sleeping => "sleeping",
        }
    }

    fn parse(text: &str) -> Result<Self, AslError> {
        [
            Phase::Ready,
            Phase::Submitting,
            Phase::Waiting,
            Phase::Sleeping,
        ]
        .into_iter()
        .find(|phase| phase.as_str() == text)
        .ok_or_else(|| AslError::Corrupt(format!("phase {text:?}")))
    }
}

/// What came back for a task token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Reply {
    Success(Value),
    Failure(Failure),
}

/// The execution's position: its current state, that state's raw input, and what the
/// state is doing.
#[derive(Clone, Debug)]
pub(crate) struct Cursor {
    pub(crate) state: String,
    pub(crate) input: Value,
    pub(crate) entered: Timestamp,
    pub(crate) phase: Phase,
    /// Retries made so far, per retrier of the current state.
    pub(crate) attempts: Vec<u64>,
    pub(crate) token: Option<String>,
    /// When a Wait state ends, or when a task token times out.
    pub(crate) wake_at: Option<Timestamp>,
    pub(crate) reply: Option<Reply>,
}

impl Cursor {
    pub(crate) fn enter(state: &str, input: Value, now: Timestamp) -> Self {
        Self {
            state: state.to_owned(),
            input,
            entered: now,
            phase: Phase::Ready,
            attempts: Vec::new(),
            token: None,
            wake_at: None,
            reply: None,
        }
    }
}

/// A running execution as loaded by its driver.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) summary: ExecutionSummary,
    pub(crate) deadline: Option<Timestamp>,
    pub(crate) cursor: Cursor,
    /// Who holds the execution, if anyone.
    pub(crate) driver: Option<String>,
}

/// How an execution ended.
pub(crate) struct End {
    pub(crate) status: ExecutionStatus,
    pub(crate) output: Option<Value>,
    pub(crate) failure: Option<Failure>,
}

/// What became of a task token reply.
pub(crate) enum Delivery {
    /// Stored for the execution named.
    Stored(String),
    /// The token's task timed out before the reply came; the execution is named so
    /// that its driver can record the timeout.
    Expired(String),
}

pub(crate) struct Store(SharedConnection);

fn text(time: &Timestamp) -> String {
    ewf_domain::time::format(time)
}

fn time(text: &str) -> Result<Timestamp, AslError> {
    ewf_domain::time::parse(text).map_err(|err| AslError::Corrupt(format!("time {text:?}: {err}")))
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, AslError> {
    serde_json::from_str(text).map_err(|err| AslError::Corrupt(format!("JSON {text:?}: {err}")))
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .expect("values, maps with string keys and derived types always serialise")
}

const COLUMNS: &str = "name, arn, status, input, output, error, cause, start_date, stop_date, deadline, \
     state, state_input, entered, phase, attempts, token, wake_at, reply, driver";

/// A row as SQLite returns it, before its JSON and times are read.
struct RawRow([Option<String>; 19]);

impl RawRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        let mut columns: [Option<String>; 19] = Default::default();
        for (index, column) in columns.iter_mut().enumerate() {
            *column = row.get(index)?;
        }
        Ok(Self(columns))
    }

    fn required(&self, index: usize) -> Result<&str, AslError> {
        self.0[index]
            .as_deref()
            .ok_or_else(|| AslError::Corrupt(format!("column {index} is empty")))
    }

    fn optional(&self, index: usize) -> Option<&str> {
        self.0[index].as_deref()
    }

    fn into_record(self) -> Result<Record, AslError> {
        let summary = ExecutionSummary {
            name: self.required(0)?.to_owned(),
            execution_arn: self.required(1)?.to_owned(),
            status: ExecutionStatus::parse(self.required(2)?)?,
            input: json(self.required(3)?)?,
            output: self.optional(4).map(json).transpose()?,
            error: self.optional(5).map(str::to_owned),
            cause: self.optional(6).map(str::to_owned),
            start_date: time(self.required(7)?)?,
            stop_date: self.optional(8).map(time).transpose()?,
        };
        let cursor = Cursor {
            state: self.required(10)?.to_owned(),
            input: json(self.required(11)?)?,
            entered: time(self.required(12)?)?,
            phase: Phase::parse(self.required(13)?)?,
            attempts: json(self.required(14)?)?,
            token: self.optional(15).map(str::to_owned),
            wake_at: self.optional(16).map(time).transpose()?,
            reply: self.optional(17).map(json).transpose()?,
        };
        Ok(Record {
            deadline: self.optional(9).map(time).transpose()?,
            driver: self.optional(18).map(str::to_owned),
            summary,
            cursor,
        })
    }
}

impl Store {
    pub(crate) fn in_memory() -> Result<Self, AslError> {
        Self::shared(SharedConnection::new(Connection::open_in_memory()?))
    }

    /// The executions' tables on a connection shared with the rest of the process.
    pub(crate) fn shared(connection: SharedConnection) -> Result<Self, AslError> {
        connection.lock().execute_batch(SCHEMA)?;
        Ok(Self(connection))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock()
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, AslError>,
    ) -> Result<T, AslError> {
        ewf_sqlite::atomically(&mut self.lock(), AslError::from, work)
    }

    /// Creates a running execution, held by `driver` if given, with its first events.
    /// False when the name is taken.
    pub(crate) fn create(
        &self,
        summary: &ExecutionSummary,
        deadline: Option<Timestamp>,
        cursor: &Cursor,
        driver: Option<&str>,
        events: &[Event],
    ) -> Result<bool, AslError> {
        let now = summary.start_date;
        self.write(|tx| {
            let inserted = tx.prepare_cached("INSERT INTO asl_executions (name, arn, status, input, start_date, deadline, state, state_input, \
                     entered, phase, attempts, driver, lease_until, last_event) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '[]', ?11, ?12, ?13) \
                 ON CONFLICT (name) DO NOTHING")?.execute(
                params![
                    summary.name,
                    summary.execution_arn,
                    summary.status.as_str(),
                    to_json(&summary.input),
                    text(&now),
                    deadline.as_ref().map(text),
                    cursor.state,
                    to_json(&cursor.input),
                    text(&cursor.entered),
                    cursor.phase.as_str(),
                    driver,
                    driver.map(|_| text(&(now + LEASE))),
                    count(events),
                ],
            )?;
            if inserted == 1 {
                append(tx, &summary.name, 0, events)?;
            }
            Ok(inserted == 1)
        })
    }

    pub(crate) fn load(&self, name: &str) -> Result<Option<Record>, AslError> {
        let raw = self
            .lock()
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM asl_executions WHERE name = ?1"
            ))?
            .query_row([name], RawRow::read)
            .optional()?;
        raw.map(RawRow::into_record).transpose()
    }

    /// Takes the execution for `driver` unless a live driver holds it.
    pub(crate) fn claim(&self, name: &str, driver: &str, now: Timestamp) -> Result<bool, AslError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE asl_executions SET driver = ?2, lease_until = ?3 \
                 WHERE name = ?1 AND status = 'RUNNING' AND (driver IS NULL OR lease_until < ?4)",
                )?
                .execute(params![name, driver, text(&(now + LEASE)), text(&now)])?;
            Ok(changed == 1)
        })
    }

    /// Moves the execution held by `driver` to `cursor`, recording `events`. A stored
    /// reply is kept while its token stays (it may have arrived during the invocation)
    /// and dropped when the token changes: a reply is for its own task only. False
    /// when the driver no longer holds the execution.
    pub(crate) fn save(
        &self,
        name: &str,
        driver: &str,
        cursor: &Cursor,
        events: &[Event],
        now: Timestamp,
    ) -> Result<bool, AslError> {
        self.write(|tx| {
            let last: Option<i64> = tx.prepare_cached("UPDATE asl_executions SET state = ?3, state_input = ?4, entered = ?5, phase = ?6, attempts = ?7, \
                     token = ?8, wake_at = ?9, reply = CASE WHEN token IS ?8 THEN reply END, \
                     lease_until = ?10, last_event = last_event + ?11 \
                 WHERE name = ?1 AND driver = ?2 AND status = 'RUNNING' RETURNING last_event")?.query_row(
                params![
                    name,
                    driver,
                    cursor.state,
                    to_json(&cursor.input),
                    text(&cursor.entered),
                    cursor.phase.as_str(),
                    to_json(&cursor.attempts),
                    cursor.token,
                    cursor.wake_at.as_ref().map(text),
                    text(&(now + LEASE)),
                    count(events),
                ],
                |row| row.get(0),
            ).optional()?;
            record_events(tx, name, last, events)
        })
    }

    /// Ends the execution held by `driver`.
    pub(crate) fn finish(
        &self,
        name: &str,
        driver: &str,
        end: &End,
        events: &[Event],
        now: Timestamp,
    ) -> Result<bool, AslError> {
        self.write(|tx| {
            let last: Option<i64> = tx.prepare_cached("UPDATE asl_executions SET status = ?3, output = ?4, error = ?5, cause = ?6, stop_date = ?7, \
                     token = NULL, wake_at = NULL, reply = NULL, driver = NULL, lease_until = NULL, \
                     last_event = last_event + ?8 \
                 WHERE name = ?1 AND driver = ?2 AND status = 'RUNNING' RETURNING last_event")?.query_row(
                params![
                    name,
                    driver,
                    end.status.as_str(),
                    end.output.as_ref().map(to_json),
                    end.failure.as_ref().map(|failure| failure.error.as_str()).filter(|text| !text.is_empty()),
                    end.failure.as_ref().map(|failure| failure.cause.as_str()).filter(|text| !text.is_empty()),
                    text(&now),
                    count(events),
                ],
                |row| row.get(0),
            ).optional()?;
            record_events(tx, name, last, events)
        })
    }

    /// Lets go of the execution, unless a task token reply is waiting for the driver to
    /// pick up. Checking and releasing in one transaction is what keeps a reply from
    /// being stored between the two and then left unseen.
    pub(crate) fn release(&self, name: &str, driver: &str) -> Result<bool, AslError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE asl_executions SET driver = NULL, lease_until = NULL \
                 WHERE name = ?1 AND driver = ?2 AND reply IS NULL",
                )?
                .execute(params![name, driver])?;
            Ok(changed == 1)
        })
    }

    /// Stores the reply for the task waiting on `token`.
    pub(crate) fn deliver(
        &self,
        token: &str,
        reply: &Reply,
        now: Timestamp,
    ) -> Result<Delivery, AslError> {
        self.write(|tx| {
            let found: Option<(String, Option<String>)> = tx.prepare_cached("SELECT name, wake_at FROM asl_executions \
                     WHERE token = ?1 AND status = 'RUNNING' AND phase IN ('submitting', 'waiting') \
                         AND reply IS NULL")?.query_row(
                    [token],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let (name, deadline) = found.ok_or(AslError::TaskDoesNotExist)?;
            if deadline.map(|deadline| time(&deadline)).transpose()?.is_some_and(|deadline| deadline <= now) {
                return Ok(Delivery::Expired(name));
            }
            tx.prepare_cached("UPDATE asl_executions SET reply = ?2 WHERE name = ?1")?.execute( params![name, to_json(reply)])?;
            Ok(Delivery::Stored(name))
        })
    }

    /// Running executions that nobody holds and that have something to do now: a
    /// reply or a timeout to handle, a Wait that is over, or a driver that died.
    pub(crate) fn due(&self, now: Timestamp) -> Result<Vec<String>, AslError> {
        let connection = self.lock();
        // A union of index searches, one per reason, each forced onto its index: the
        // planner, without statistics, would otherwise read every running execution.
        // A ready task with a time to wake waits for a retry; a submitting one's time
        // is its token's deadline.
        let mut statement = connection.prepare_cached(
            "SELECT name, start_date FROM asl_executions INDEXED BY asl_executions_by_phase \
                 WHERE status = 'RUNNING' AND phase IN ('ready', 'submitting') \
                     AND (phase = 'submitting' OR wake_at IS NULL OR wake_at <= ?1) \
                     AND (driver IS NULL OR lease_until < ?1) \
             UNION SELECT name, start_date FROM asl_executions INDEXED BY asl_executions_replied \
                 WHERE status = 'RUNNING' AND reply IS NOT NULL AND (driver IS NULL OR lease_until < ?1) \
             UNION SELECT name, start_date FROM asl_executions INDEXED BY asl_executions_by_wake \
                 WHERE status = 'RUNNING' AND wake_at <= ?1 AND (driver IS NULL OR lease_until < ?1) \
             UNION SELECT name, start_date FROM asl_executions INDEXED BY asl_executions_by_deadline \
                 WHERE status = 'RUNNING' AND deadline <= ?1 AND (driver IS NULL OR lease_until < ?1) \
             ORDER BY start_date",
        )?;
        let names = statement
            .query_map([text(&now)], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// When the next running execution has something to do that is not due yet: a
    /// retry, a Wait, a token's or the execution's deadline.
    pub(crate) fn next_wake(&self) -> Result<Option<Timestamp>, AslError> {
        let connection = self.lock();
        let next: Option<String> = connection
            .prepare_cached(
                "SELECT MIN(at) FROM ( \
                     SELECT MIN(wake_at) AS at FROM asl_executions INDEXED BY asl_executions_by_wake \
                         WHERE status = 'RUNNING' AND wake_at IS NOT NULL \
                     UNION ALL SELECT MIN(deadline) FROM asl_executions INDEXED BY asl_executions_by_deadline \
                         WHERE status = 'RUNNING' AND deadline IS NOT NULL)",
            )?
            .query_row([], |row| row.get(0))?;
        next.as_deref().map(time).transpose()
    }

    pub(crate) fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, AslError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT first_id, events FROM asl_history WHERE execution = ?1 ORDER BY first_id",
        )?;
        let rows = statement
            .query_map([name], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut history = Vec::new();
        for (first_id, events) in rows {
            let events: Vec<Recorded> = json(&events)?;
            for (id, event) in (first_id..).zip(events) {
                history.push(HistoryEvent {
                    id,
                    previous_event_id: id - 1,
                    timestamp: event.timestamp,
                    event_type: event.event_type,
                    details: event.details,
                });
            }
        }
        Ok(history)
    }
}

/// After an update that moved `last_event` past `events` (`last`: its new value, or
/// None when the driver no longer held the execution), records them. Whether the
/// update happened.
fn record_events(
    tx: &Connection,
    name: &str,
    last: Option<i64>,
    events: &[Event],
) -> Result<bool, AslError> {
    match last {
        Some(last) => {
            append(tx, name, last - count(events), events)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

fn count(events: &[Event]) -> i64 {
    i64::try_from(events.len()).unwrap_or(i64::MAX)
}

/// Records events after the execution's event `previous`, each pointing at its
/// predecessor. The execution's `last_event` already counts them.
fn append(tx: &Connection, name: &str, previous: i64, events: &[Event]) -> Result<(), AslError> {
    if events.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("INSERT INTO asl_history (execution, first_id, events) VALUES (?1, ?2, ?3)")?
        .execute(params![name, previous + 1, to_json(&events)])?;
    Ok(())
}

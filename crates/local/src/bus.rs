//! The in-process event bus. It routes by the same rules as the SAM template
//! (`ewf_domain::events::RULES`), keeps every delivery in SQLite until it is done (a
//! crash loses none), delivers at least once with retries and backoff, and moves a
//! delivery that keeps failing to the dead letters.
//!
//! Inside a batch (one transaction, see `ewf_sqlite::SharedConnection::batch`), the
//! deliveries of what is published are kept in memory for the batch to hand over
//! itself, and the batch stores those it did not get to before it commits: written and
//! deleted in one transaction, they would only have cost their writes. A batch rolled
//! back forgets them with everything else it did.

use crate::db::{self, Db};
use crate::metering::Meter;
use chrono::{DateTime, Utc};
use ewf_domain::events::{BusEvent, FunctionName, SCHEDULE_SOURCE, SCHEDULED_EVENT, targets};
use ewf_domain::ports::{Bus, Clock, Random};
use ewf_domain::{StoreError, Timestamp};
use rusqlite::params;
use rusqlite::types::Type;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Attempts before a delivery is dead-lettered (EventBridge retries a failing
/// asynchronous invocation twice, so three in all).
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a claimed delivery stays claimed before another process may take it over.
const LEASE_SECONDS: i64 = 60;
/// Deliveries claimed at once.
const CLAIM_LIMIT: usize = 64;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bus_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TEXT NOT NULL,
    claimed_until TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS bus_dead_letters (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    dead_at TEXT NOT NULL
);
";

/// A delivery of one event to one function.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Its row; `None` for a delivery published in the open batch and not stored.
    pub id: Option<i64>,
    pub target: FunctionName,
    /// The event in the EventBridge shape the function receives.
    pub event: Value,
    pub attempts: u32,
}

/// A delivery that failed [`MAX_ATTEMPTS`] times.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// Its row, the id its delivery had.
    pub id: i64,
    pub target: String,
    /// The event as the target received it (text, should it not be JSON).
    pub event: Value,
    pub attempts: u32,
    pub last_error: String,
    pub dead_at: Timestamp,
}

/// The dead letters of one order (the order id in the event's detail), or all of them.
const DEAD_LETTERS: &str = "SELECT id, target, event, attempts, last_error, dead_at
     FROM bus_dead_letters
     WHERE ?1 IS NULL OR json_extract(event, '$.detail.orderId') = ?1
     ORDER BY id";

fn dead_letters_in(
    conn: &rusqlite::Connection,
    order: Option<&str>,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let mut statement = conn.prepare_cached(DEAD_LETTERS)?;
    let rows = statement.query_map(params![order], |row| {
        let event: String = row.get(2)?;
        let dead_at: String = row.get(5)?;
        Ok(DeadLetter {
            id: row.get(0)?,
            target: row.get(1)?,
            event: serde_json::from_str(&event).unwrap_or(Value::String(event)),
            attempts: row.get(3)?,
            last_error: row.get(4)?,
            dead_at: db::parse_time(&dead_at).map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(5, Type::Text, Box::new(err))
            })?,
        })
    })?;
    rows.collect()
}

#[derive(Clone)]
pub struct LocalBus {
    db: Db,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    /// Test knob: deliver every event twice, as at-least-once delivery may.
    copies: usize,
    /// Deliveries published in the open batch, not stored (see the module's notes).
    unstored: Arc<Mutex<VecDeque<Delivery>>>,
    meter: Arc<Meter>,
}

fn stamp(time: Timestamp) -> String {
    ewf_domain::time::format(&time)
}

impl LocalBus {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        duplicate: bool,
    ) -> Result<Self, StoreError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self {
            db,
            clock,
            random,
            copies: if duplicate { 2 } else { 1 },
            unstored: Arc::default(),
            meter: Arc::default(),
        })
    }

    /// Counts what is published with `meter`.
    pub fn metered(self, meter: Arc<Meter>) -> Self {
        Self { meter, ..self }
    }

    fn unstored(&self) -> MutexGuard<'_, VecDeque<Delivery>> {
        self.unstored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The event as EventBridge delivers it to a rule target.
    fn envelope(&self, event: &BusEvent, time: Timestamp) -> Value {
        self.envelope_of(
            event.detail_type.as_str(),
            &event.source,
            &event.detail,
            time,
        )
    }

    /// The event a scheduled rule sends now: it drives the sweep of overdue orders.
    pub fn scheduled_event(&self) -> Value {
        self.envelope_of(
            SCHEDULED_EVENT,
            SCHEDULE_SOURCE,
            &json!({}),
            self.clock.now(),
        )
    }

    fn envelope_of(
        &self,
        detail_type: &str,
        source: &str,
        detail: &Value,
        time: Timestamp,
    ) -> Value {
        json!({
            "version": "0",
            "id": ulid::Ulid::from_parts(
                u64::try_from(time.timestamp_millis()).unwrap_or_default(),
                self.random.id_bits()
            ).to_string(),
            "detail-type": detail_type,
            "source": source,
            "account": "000000000000",
            "time": stamp(time),
            "region": "local",
            "resources": [],
            "detail": detail,
        })
    }

    /// Claims up to [`CLAIM_LIMIT`] deliveries that are due: stored ones first, oldest
    /// first, for [`LEASE_SECONDS`] (one transaction for a batch keeps the bus's own
    /// writes few), then those published in the open batch.
    pub fn claim(&self) -> Result<Vec<Delivery>, StoreError> {
        let now = self.clock.now();
        let rows = self.db.immediate(|tx| {
            // The limit is part of the text: SQLite prepares a statement with a bound
            // LIMIT again each time it runs.
            let mut due = tx.prepare_cached(&format!(
                "SELECT id, target, event, attempts FROM bus_deliveries
                 WHERE not_before <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1)
                 ORDER BY id LIMIT {CLAIM_LIMIT}"
            ))?;
            let rows = due
                .query_map(params![stamp(now)], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, u32>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut lease =
                tx.prepare_cached("UPDATE bus_deliveries SET claimed_until = ?2 WHERE id = ?1")?;
            let until = stamp(now + chrono::Duration::seconds(LEASE_SECONDS));
            for (id, ..) in &rows {
                lease.execute(params![id, until])?;
            }
            Ok(rows)
        })?;
        let mut claimed = rows
            .into_iter()
            .map(|(id, target, event, attempts)| {
                let unreadable =
                    |err: &dyn std::fmt::Display| StoreError::new(format!("delivery {id}: {err}"));
                Ok(Delivery {
                    id: Some(id),
                    target: target.parse().map_err(|err| unreadable(&err))?,
                    event: serde_json::from_str(&event).map_err(|err| unreadable(&err))?,
                    attempts,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let room = CLAIM_LIMIT - claimed.len();
        let mut unstored = self.unstored();
        let taken = room.min(unstored.len());
        claimed.extend(unstored.drain(..taken));
        Ok(claimed)
    }

    /// Stores the deliveries published in the open batch that it did not hand over:
    /// what the batch does last before it commits.
    pub fn store_unstored(&self) -> Result<(), StoreError> {
        let unstored: Vec<Delivery> = self.unstored().drain(..).collect();
        let now = stamp(self.clock.now());
        self.insert(unstored.iter().map(|delivery| (delivery, 0, now.as_str())))
    }

    /// Forgets the deliveries published in a batch that was rolled back.
    pub fn forget_unstored(&self) {
        self.unstored().clear();
    }

    /// Stores deliveries, each with its attempts so far and when it is due.
    fn insert<'a>(
        &self,
        deliveries: impl IntoIterator<Item = (&'a Delivery, u32, &'a str)>,
    ) -> Result<(), StoreError> {
        self.db.immediate(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO bus_deliveries (target, event, attempts, not_before)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (delivery, attempts, not_before) in deliveries {
                insert.execute(params![
                    delivery.target.as_str(),
                    delivery.event.to_string(),
                    attempts,
                    not_before
                ])?;
            }
            Ok(())
        })
    }

    /// The deliveries were handled: forget them.
    pub fn complete(&self, delivered: &[Delivery]) -> Result<(), StoreError> {
        let stored: Vec<i64> = delivered
            .iter()
            .filter_map(|delivery| delivery.id)
            .collect();
        if stored.is_empty() {
            return Ok(());
        }
        self.db.immediate(|tx| {
            let mut forget = tx.prepare_cached("DELETE FROM bus_deliveries WHERE id = ?1")?;
            for id in stored {
                forget.execute(params![id])?;
            }
            Ok(())
        })
    }

    /// The delivery failed: retry it later with exponential backoff, or dead-letter it.
    pub fn fail(
        &self,
        delivery: &Delivery,
        error: &str,
        backoff_unit: chrono::Duration,
    ) -> Result<(), StoreError> {
        let attempts = delivery.attempts + 1;
        let now = self.clock.now();
        let Some(id) = delivery.id else {
            // Never stored: stored now, to be retried (a first failure is never the last).
            let retry_at = stamp(now + backoff_unit);
            return self.insert([(delivery, attempts, retry_at.as_str())]);
        };
        self.db.immediate(|tx| {
            if attempts >= MAX_ATTEMPTS {
                tx.prepare_cached("INSERT INTO bus_dead_letters (id, target, event, attempts, last_error, dead_at)
                     SELECT id, target, event, ?2, ?3, ?4 FROM bus_deliveries WHERE id = ?1")?.execute(
                    params![id, attempts, error, stamp(now)],
                )?;
                tx.prepare_cached("DELETE FROM bus_deliveries WHERE id = ?1")?.execute(
                    params![id],
                )?;
            } else {
                let delay = backoff_unit * 2_i32.pow(attempts - 1);
                tx.prepare_cached("UPDATE bus_deliveries
                     SET attempts = ?2, last_error = ?3, not_before = ?4, claimed_until = NULL
                     WHERE id = ?1")?.execute(
                    params![id, attempts, error, stamp(now + delay)],
                )?;
            }
            Ok(())
        })
    }

    /// When the next unclaimed delivery falls due, if one is waiting for a retry.
    /// Deliveries another drainer holds are its business: waiting for them would keep
    /// a drain going for as long as any other work runs.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = self.clock.now();
        let retry_at: Option<String> = self.db.read(|conn| {
            conn.prepare_cached(
                "SELECT MIN(not_before) FROM bus_deliveries
                 WHERE claimed_until IS NULL OR claimed_until <= ?1",
            )?
            .query_row(params![stamp(now)], |row| row.get(0))
        })?;
        retry_at.map(|text| db::parse_time(&text)).transpose()
    }

    /// The deliveries that failed every attempt, oldest first: one order's, or all.
    pub fn dead_letters(&self, order: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        self.db.read(|conn| dead_letters_in(conn, order))
    }

    /// Hands dead letters (one order's, or all) back to their targets as new deliveries,
    /// due now with their attempts afresh. Each letter leaves in the transaction that
    /// stores its delivery, so none is lost or doubled. What was handed back.
    pub fn redrive(&self, order: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        let now = stamp(self.clock.now());
        self.db.immediate(|tx| {
            let rows = dead_letters_in(tx, order)?;
            let mut deliver = tx.prepare_cached(
                "INSERT INTO bus_deliveries (target, event, attempts, not_before)
                 SELECT target, event, 0, ?2 FROM bus_dead_letters WHERE id = ?1",
            )?;
            let mut forget = tx.prepare_cached("DELETE FROM bus_dead_letters WHERE id = ?1")?;
            for letter in &rows {
                deliver.execute(params![letter.id, now])?;
                forget.execute(params![letter.id])?;
            }
            Ok(rows)
        })
    }
}

#[async_trait::async_trait]
impl Bus for LocalBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut deliveries = Vec::new();
        for event in events {
            let envelope = self.envelope(event, now);
            for target in targets(event.detail_type) {
                for _ in 0..self.copies {
                    deliveries.push(Delivery {
                        id: None,
                        target,
                        event: envelope.clone(),
                        attempts: 0,
                    });
                }
            }
        }
        // One copy per rule target: a duplicate is the test knob's, not a delivery.
        self.meter
            .published(events.len(), deliveries.len() / self.copies);
        if self.db.in_batch() {
            self.unstored().extend(deliveries);
            return Ok(());
        }
        let now = stamp(now);
        self.insert(
            deliveries
                .iter()
                .map(|delivery| (delivery, 0, now.as_str())),
        )
    }
}

//! The connection, the schema, and what every store shares: error context, the
//! transaction that records a step with its state change, and column conversions.

use ewf_domain::ports::Step;
use ewf_domain::{StoreError, WriteError};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Params, Row, TransactionBehavior, params};
use serde_json::Value;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a write waits for another connection's write to finish, unless the caller
/// bounds it (a command's `--timeout`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The tables of the stores. Other code may keep its own tables in the same file.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    address TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price TEXT NOT NULL,
    available INTEGER NOT NULL CHECK (available >= 0),
    reserved INTEGER NOT NULL CHECK (reserved >= 0)
);
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    amount TEXT NOT NULL,
    method TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    customer_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    task_token TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, order_id)
);
CREATE TABLE IF NOT EXISTS orders (
    customer_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    order_status TEXT NOT NULL,
    item_id TEXT NOT NULL,
    item_price TEXT,
    delivery_price TEXT,
    total_price TEXT,
    payment_id TEXT,
    delivery_address TEXT,
    failure_reason TEXT,
    order_date TEXT NOT NULL,
    update_date TEXT NOT NULL,
    PRIMARY KEY (customer_id, order_id)
);
CREATE TABLE IF NOT EXISTS events (
    who TEXT NOT NULL,
    time_what TEXT NOT NULL,
    event_id TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    event_time TEXT NOT NULL,
    event_source TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    event_detail TEXT NOT NULL,
    order_id TEXT,
    PRIMARY KEY (who, time_what)
);
CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id, time_what);
CREATE TABLE IF NOT EXISTS ledger (
    step_key TEXT PRIMARY KEY,
    outcome TEXT NOT NULL
);
";

/// The layout of the file, in SQLite's `user_version`: a file laid out by another
/// version of ewf is refused rather than misread. Raise it when a table of the file
/// changes, the local stack's tables included.
pub const LAYOUT_VERSION: i64 = 2;

/// Says what failed when SQLite fails.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|err| failure(what, err))
    }
}

fn failure(what: &str, err: rusqlite::Error) -> StoreError {
    StoreError::new(format!("sqlite: {what}: {err}"))
}

/// A connection that everything in one process takes turns on. Sharing one keeps a
/// process's writers from waiting on each other through SQLite's busy handler (which
/// sleeps); other processes open their own and SQLite's locking keeps them apart.
/// Cloning shares it.
#[derive(Clone)]
pub struct SharedConnection(Arc<Mutex<Connection>>);

/// Statements kept prepared: every statement of the stores, the bus and the executions
/// fits, so none is parsed twice (rusqlite keeps 16 by default).
const STATEMENT_CACHE: usize = 256;

impl SharedConnection {
    pub fn new(conn: Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Self(Arc::new(Mutex::new(conn)))
    }

    /// Takes the connection.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic cannot leave a transaction open (dropping one rolls it back), so the
        // connection of a poisoned lock is still sound.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a batch: until the batch is finished, every atomic write of the process
    /// ([`atomically`]) joins one immediate transaction as a savepoint of it, so that
    /// many small steps cost one commit. Each step stays atomic; the batch commits as a
    /// whole, or not at all. Within a batch that is already open this does nothing, and
    /// the batch's opener commits.
    pub fn batch(&self) -> Result<Batch, StoreError> {
        let conn = self.lock();
        let opened = conn.is_autocommit();
        if opened {
            run(&conn, "BEGIN IMMEDIATE").context("cannot begin a batch")?;
        }
        Ok(Batch {
            connection: opened.then(|| self.clone()),
        })
    }

    /// Whether a batch is open.
    pub fn in_batch(&self) -> bool {
        !self.lock().is_autocommit()
    }
}

/// An open batch of writes (see [`SharedConnection::batch`]): committed when finished,
/// rolled back when dropped unfinished (the work failed, or was abandoned midway), as
/// a crash would roll it back.
#[must_use = "a batch commits when it is finished"]
pub struct Batch {
    /// The connection, if this batch opened the transaction.
    connection: Option<SharedConnection>,
}

impl Batch {
    pub fn finish(mut self) -> Result<(), StoreError> {
        let Some(shared) = self.connection.take() else {
            return Ok(());
        };
        let conn = shared.lock();
        let committed = run(&conn, "COMMIT").context("cannot commit a batch");
        if committed.is_err() {
            // Leave the connection usable; the batch's work runs again.
            roll_back(&conn);
        }
        committed
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(shared) = self.connection.take() {
            tracing::warn!("a batch of writes was left unfinished and is rolled back");
            roll_back(&shared.lock());
        }
    }
}

fn roll_back(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(err) = run(conn, "ROLLBACK")
    {
        tracing::error!(error = %err, "cannot roll back a batch");
    }
}

/// Runs `work` atomically: as an immediate transaction of its own (the write lock taken
/// before any read, so that no other writer slips in between a guard and its write), or
/// as a savepoint of the open batch. The statements are cached: a saga step is small,
/// and parsing them again would cost as much as running them.
pub fn atomically<T, E>(
    conn: &mut Connection,
    failed: impl Fn(rusqlite::Error) -> E,
    work: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let scope = if conn.is_autocommit() {
        Scope::TRANSACTION
    } else {
        Scope::SAVEPOINT
    };
    run(conn, scope.begin).map_err(&failed)?;
    let mut undo = Undo {
        conn,
        scope,
        armed: true,
    };
    let value = work(undo.conn)?;
    run(undo.conn, scope.commit).map_err(&failed)?;
    undo.armed = false;
    Ok(value)
}

#[derive(Clone, Copy)]
struct Scope {
    begin: &'static str,
    commit: &'static str,
    rollback: &'static [&'static str],
}

impl Scope {
    const TRANSACTION: Self = Self {
        begin: "BEGIN IMMEDIATE",
        commit: "COMMIT",
        rollback: &["ROLLBACK"],
    };
    const SAVEPOINT: Self = Self {
        begin: "SAVEPOINT step",
        commit: "RELEASE step",
        rollback: &["ROLLBACK TO step", "RELEASE step"],
    };
}

fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Rolls back a scope that did not commit: its work failed, or panicked.
struct Undo<'c> {
    conn: &'c Connection,
    scope: Scope,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            for sql in self.scope.rollback {
                if let Err(err) = run(self.conn, sql) {
                    tracing::error!(error = %err, sql, "cannot roll back");
                }
            }
        }
    }
}

/// Opens (creating if needed) a database file for sharing: WAL, so readers never block
/// the writer, with a busy timeout for writers of other processes.
pub fn connect(path: &Path) -> Result<SharedConnection, StoreError> {
    connect_waiting(path, BUSY_TIMEOUT)
}

/// [`connect`], waiting at most `busy_timeout` for a lock another process holds.
pub fn connect_waiting(
    path: &Path,
    busy_timeout: Duration,
) -> Result<SharedConnection, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| {
            StoreError::new(format!("cannot create directory {}: {err}", dir.display()))
        })?;
    }
    let existed = path.exists();
    let what = format!("cannot open database {}", path.display());
    let conn = Connection::open(path).context(&what)?;
    // The timeout first: switching to WAL itself waits for other openers.
    conn.busy_timeout(busy_timeout).context(&what)?;
    // No memory map: a file truncated or replaced under a running process must give an
    // error, not a SIGBUS when a mapped page is read.
    conn.pragma_update(None, "mmap_size", 0).context(&what)?;
    if existed {
        check_integrity(&conn).map_err(|err| StoreError::new(format!("{what}: {err}")))?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .context(&what)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .context(&what)?;
    // Checkpoints happen on a thread of their own (see `checkpoint_in_background`), not
    // in the commit that crosses the threshold.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .context(&what)?;
    conn.pragma_update(None, "cache_size", -8 * 1024)
        .context(&what)?;
    tracing::debug!(path = %path.display(), "opened the database");
    let shared = SharedConnection::new(conn);
    checkpoint_in_background(path, &shared, busy_timeout).context(&what)?;
    Ok(shared)
}

/// Reads every page once (`PRAGMA quick_check`): damage anywhere in the file is found
/// when it is opened, not by whichever later command happens to read the page.
fn check_integrity(conn: &Connection) -> Result<(), String> {
    let mut statement = conn
        .prepare("PRAGMA quick_check(1)")
        .map_err(|err| err.to_string())?;
    let verdict: String = statement
        .query_row([], |row| row.get(0))
        .map_err(|err| err.to_string())?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(format!("database disk image is malformed ({verdict})"))
    }
}

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies the write-ahead log into the database file on a thread with a connection of
/// its own, for as long as `shared` lives, so that writers never wait for it. A
/// passive checkpoint takes no lock a writer needs; when it has copied everything, the
/// next writer starts the log afresh, which keeps it small. (The last connection to
/// close checkpoints what is left.)
fn checkpoint_in_background(
    path: &Path,
    shared: &SharedConnection,
    busy_timeout: Duration,
) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    let alive = Arc::downgrade(&shared.0);
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %err, "background checkpoint failed");
                }
            }
        });
    if let Err(err) = spawned {
        // Without the thread, commits checkpoint as SQLite does by default.
        tracing::warn!(error = %err, "no checkpoint thread; checkpointing on commit");
        shared
            .lock()
            .pragma_update(None, "wal_autocheckpoint", 1000)?;
    }
    Ok(())
}

/// The stores' connection, with their tables.
pub struct Db {
    conn: SharedConnection,
}

impl Db {
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        Self::with_schema(connect_waiting(path, busy_timeout)?)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_schema(SharedConnection::new(
            Connection::open_in_memory().context("cannot open an in-memory database")?,
        ))
    }

    fn with_schema(conn: SharedConnection) -> Result<Self, StoreError> {
        let what = "cannot create the tables";
        {
            let mut locked = conn.lock();
            let tx = locked
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .context(what)?;
            let layout: i64 = tx
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .context(what)?;
            let empty: bool = tx
                .query_row("SELECT count(*) = 0 FROM sqlite_schema", [], |row| {
                    row.get(0)
                })
                .context(what)?;
            if layout != LAYOUT_VERSION && !empty {
                return Err(StoreError::new(format!(
                    "the state file has layout {layout}, this ewf reads layout {LAYOUT_VERSION}: \
                     it was written by another version of ewf; remove it to start afresh"
                )));
            }
            tx.execute_batch(SCHEMA).context(what)?;
            tx.pragma_update(None, "user_version", LAYOUT_VERSION)
                .context(what)?;
            tx.commit().context(what)?;
        }
        Ok(Self { conn })
    }

    pub fn connection(&self) -> SharedConnection {
        self.conn.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock()
    }

    /// Runs a query outside any explicit transaction.
    pub fn read<T>(
        &self,
        what: &str,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        query(&self.lock()).context(what)
    }

    /// Runs `change` atomically (see [`atomically`]) and records `step` with it. A step
    /// already recorded is reported as `AlreadyDone` with its outcome, before `change`
    /// runs, and nothing changes.
    pub fn write<T>(
        &self,
        step: Option<&Step>,
        change: impl FnOnce(&Connection) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let failed = |err| WriteError::from(failure("cannot write", err));
        atomically(&mut self.lock(), failed, |tx| {
            if let Some(step) = step
                && let Some(outcome) = recorded(tx, &step.key)?
            {
                return Err(WriteError::AlreadyDone(outcome));
            }
            let changed = change(tx)?;
            if let Some(step) = step {
                insert_step(tx, step)?;
            }
            Ok(changed)
        })
    }

    /// Records a step on its own. Returns the outcome recorded earlier, if any.
    pub fn record_step(&self, step: &Step) -> Result<Option<Value>, StoreError> {
        let conn = self.lock();
        if insert_step(&conn, step)? {
            Ok(None)
        } else {
            recorded(&conn, &step.key)
        }
    }

    pub fn step_outcome(&self, key: &str) -> Result<Option<Value>, StoreError> {
        recorded(&self.lock(), key)
    }
}

fn recorded(conn: &Connection, key: &str) -> Result<Option<Value>, StoreError> {
    let outcome: Option<String> = conn
        .prepare_cached("SELECT outcome FROM ledger WHERE step_key = ?1")
        .context("cannot prepare a statement")?
        .query_row([key], |row| row.get(0))
        .optional()
        .context("cannot read the ledger")?;
    outcome
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|err| StoreError::new(format!("step {key} has an unreadable outcome: {err}")))
}

/// Inserts a step unless its key is there. Returns whether it was inserted.
fn insert_step(conn: &Connection, step: &Step) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO ledger (step_key, outcome) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .context("cannot prepare a statement")?
        .execute(params![step.key, step.outcome.to_string()])
        .context("cannot record a step")?;
    Ok(inserted == 1)
}

/// `NotFound` unless the query finds a row.
pub fn must_exist(conn: &Connection, query: &str, key: impl Params) -> Result<(), WriteError> {
    let found = conn
        .prepare_cached(query)
        .and_then(|mut statement| statement.query_row(key, |_| Ok(())).optional())
        .context("cannot look up a record")?;
    found.ok_or(WriteError::NotFound)
}

/// A text column parsed into a domain type; text that does not parse is reported as a
/// conversion failure of that column.
pub fn column<T, E: Display>(
    row: &Row<'_>,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let index = row.as_ref().column_index(name)?;
    let text: String = row.get(index)?;
    parse(&text).map_err(|err| unreadable(index, name, err))
}

/// A nullable text column parsed into a domain type.
pub fn optional_column<T, E: Display>(
    row: &Row<'_>,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<Option<T>> {
    let index = row.as_ref().column_index(name)?;
    let text: Option<String> = row.get(index)?;
    text.map(|text| parse(&text).map_err(|err| unreadable(index, name, err)))
        .transpose()
}

fn unreadable(index: usize, name: &str, err: impl Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, format!("{name}: {err}").into())
}

pub use ewf_domain::time::{format as timestamp, parse as parse_timestamp};

/// An optional value (a price, an id) as nullable text.
pub fn optional_text<T: ToString>(value: Option<&T>) -> Option<String> {
    value.map(ToString::to_string)
}

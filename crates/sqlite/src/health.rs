//! What is wrong with a database file, when using it failed: the errors of the stores
//! are text by the time they reach the user, so the file itself is asked.

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem of the file itself, which retrying will not fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateProblem {
    /// Something other than a file is in its place (a directory).
    NotAFile(PathBuf),
    /// The process may not write it (permissions, an immutable file, a read-only mount).
    NotWritable(PathBuf, String),
    /// Another process holds its write lock.
    Locked(PathBuf),
    /// It is not a database, or pages of it are damaged (truncated, overwritten).
    Damaged(PathBuf, String),
}

impl fmt::Display for StateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAFile(path) => write!(f, "the state file {} is not a file", path.display()),
            Self::NotWritable(path, why) => {
                write!(
                    f,
                    "the state file {} is not writable: {why}",
                    path.display()
                )
            }
            Self::Locked(path) => write!(
                f,
                "the state file {} is locked by another process",
                path.display()
            ),
            Self::Damaged(path, why) => {
                write!(f, "the state file {} is damaged: {why}", path.display())
            }
        }
    }
}

/// Looks at the file at `path` (which may not exist: then nothing is wrong with it).
/// Takes no lock and waits for none, so it can run while another process works.
pub fn diagnose(path: &Path) -> Option<StateProblem> {
    let owned = || path.to_path_buf();
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        return Some(StateProblem::NotAFile(owned()));
    }
    // Opening for writing is the one test that holds for root too (an immutable file,
    // a read-only mount).
    if let Err(err) = std::fs::OpenOptions::new().write(true).open(path) {
        return Some(StateProblem::NotWritable(owned(), err.to_string()));
    }
    let damaged = |why: String| Some(StateProblem::Damaged(owned(), why));
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(conn) => conn,
        Err(err) => return damaged(err.to_string()),
    };
    // Never wait: a lock held elsewhere is the answer, not something to wait out.
    if conn.busy_timeout(std::time::Duration::ZERO).is_err()
        || conn.pragma_update(None, "mmap_size", 0).is_err()
    {
        return damaged("it cannot be read".into());
    }
    match conn.query_row("PRAGMA quick_check(1)", [], |row| row.get::<_, String>(0)) {
        Ok(verdict) if verdict == "ok" => {}
        Ok(verdict) => return damaged(verdict),
        Err(err) if code(&err) == Some(ErrorCode::DatabaseBusy) => {
            return Some(StateProblem::Locked(owned()));
        }
        Err(err) => return damaged(err.to_string()),
    }
    // A write lock, taken and given back at once: busy means another process holds it.
    match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK") {
        Err(err) if code(&err) == Some(ErrorCode::DatabaseBusy) => {
            Some(StateProblem::Locked(owned()))
        }
        Err(err) if code(&err) == Some(ErrorCode::ReadOnly) => {
            Some(StateProblem::NotWritable(owned(), err.to_string()))
        }
        _ => None,
    }
}

fn code(err: &rusqlite::Error) -> Option<ErrorCode> {
    err.sqlite_error_code()
}

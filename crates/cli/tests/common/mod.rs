//! Running the built `ewf` binary in tests.

// Each test binary uses a part of these.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The result of one `ewf` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {}", self.stdout))
    }

    /// Asserts the exit code and that stderr is one line (the error message).
    pub fn expect_error(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "not one line: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.contains(" — "),
            "no next step in {:?}",
            self.stderr
        );
        self.stderr.trim_end()
    }

    pub fn expect_success(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The `ewf` binary, in `dir` (so no samconfig.toml is found), with no stack in the
/// environment and no colours.
pub fn ewf(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ewf"));
    command
        .current_dir(dir)
        .env_remove("EWF_STACK")
        .env_remove("EWF_LOG")
        .env("NO_COLOR", "1");
    command
}

pub fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn run(mut command: Command, args: &[&str]) -> Run {
    finish(command.args(args).output().expect("ewf runs"))
}

/// Every row of every table of a state file, in a stable order: compared before and
/// after, it shows that nothing changed.
pub fn dump(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let mut statement = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1, 2"))
            .unwrap();
        let columns = statement.column_count();
        let mut found = statement.query([]).unwrap();
        while let Some(row) = found.next().unwrap() {
            let values: Vec<String> = (0..columns)
                .map(|index| format!("{:?}", row.get_ref(index).unwrap()))
                .collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows
}

/// `ewf local serve --port 0` on the state directory; its address.
pub fn serve(command: &mut Command) -> (Child, String) {
    let mut child = command
        .args(["local", "serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().trim_start_matches("http://").to_owned();
    assert!(!address.is_empty(), "local serve printed no address");
    (child, address)
}

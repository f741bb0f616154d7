//! Running the built `ewf` binary in tests.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

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

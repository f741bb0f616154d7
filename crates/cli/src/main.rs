//! `ewf`: deploy, seed and exercise the order sagas, on a deployed stack or on the
//! embedded local stack. `ewf --help` lists the commands and the exit codes.

mod bench;
mod cli;
mod commands;
mod compare;
mod config;
mod dead_letters;
mod demo;
mod deploy;
mod diagram;
mod error;
mod output;
mod targets;

use clap::Parser;
use cli::Cli;
use error::{CliError, Exit};
use output::Output;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

// The local stack allocates for every JSON value it moves; glibc's allocator took a fifth
// of its time (perf, `ewf bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    init_tracing();
    let output = Output::new(cli.global.output);
    // One thread: the local stack serialises on its SQLite connection anyway, and AWS
    // requests are I/O that one thread multiplexes.
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(commands::run(cli, &output)),
        Err(err) => Err(CliError::service(format!(
            "cannot start the async runtime: {err}"
        ))
        .hint("run the command again; if it keeps failing, check the limits on open files and threads")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever the services said.
            eprintln!("error: {}", err.to_string().replace(['\r', '\n'], " "));
            ExitCode::from(err.exit as u8)
        }
    }
}

/// Help and version go to stdout as clap writes them; a usage error becomes one line
/// on stderr and exit code 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(Exit::Usage as u8));
    }
    let rendered = err.render().to_string();
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap shows the whole help; one line names the commands instead.
        eprintln!("{}", missing_command(&rendered));
        return ExitCode::from(Exit::Usage as u8);
    }
    // clap's message spans lines (the problem, then usage); keep the problem.
    let problem: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    eprintln!(
        "{} — see `ewf --help` (or `ewf <command> --help`)",
        problem.join(" ")
    );
    ExitCode::from(Exit::Usage as u8)
}

/// One line for a command given without its subcommand, from the help clap rendered:
/// the command's path (its usage line) and the names in its `Commands:` list.
fn missing_command(help: &str) -> String {
    let usage = help
        .lines()
        .find_map(|line| line.trim().strip_prefix("Usage: "))
        .unwrap_or("ewf");
    let path: Vec<&str> = usage
        .split_whitespace()
        .take_while(|word| !word.starts_with(['[', '<']))
        .collect();
    let path = path.join(" ");
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        // A name starts its line after two spaces; longer indents continue a description.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    format!(
        "`{path}` needs a command: {} — see `{path} --help`",
        commands.join(", ")
    )
}

/// Logs go to stderr, off unless EWF_LOG asks for them (e.g. EWF_LOG=debug).
fn init_tracing() {
    let filter = EnvFilter::try_from_env("EWF_LOG").unwrap_or_else(|_| EnvFilter::new("off"));
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
}

/// Runs a command until it ends or the user presses Ctrl-C (exit 130).
pub async fn interruptible<T>(work: impl Future<Output = error::Result<T>>) -> error::Result<T> {
    tokio::select! {
        // Ctrl-C first: its first poll installs the handler, so a signal that comes as
        // soon as the work has printed something is caught rather than killing `ewf`.
        biased;
        _ = tokio::signal::ctrl_c() => {
            Err(CliError::new(Exit::Interrupted, "interrupted")
                .hint("what was done is kept; check with `ewf order describe` or run the command again"))
        }
        result = work => result,
    }
}

//! `ewf deploy` and `ewf delete`: the SAM CLI, with the stack settings of `ewf`.

use crate::cli::Global;
use crate::config::Choice;
use crate::error::{CliError, Result};
use crate::output::Output;
use crate::targets::AwsSettings;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Where scripts/setup-tools.sh installs the tools.
const TOOLS_DIR: &str = ".venv/bin";

pub async fn deploy(
    global: &Global,
    output: &Output,
    guided: bool,
    sam_args: Vec<OsString>,
) -> Result<()> {
    let sam = find_tool("sam")?;
    find_tool("cargo-lambda")?;
    let stack = match global.choose()? {
        Choice::Aws(settings) => Some(settings),
        Choice::Local(_) if guided => None,
        Choice::Local(_) => {
            return Err(CliError::config("no stack configured")
                .hint("pass --stack NAME, or --guided to choose the settings interactively"));
        }
    };
    output.note("building the functions (sam build)");
    let mut build: Vec<OsString> = ["build", "--beta-features"].map(OsString::from).to_vec();
    build.extend(parameter_overrides(&sam_args));
    let endpoint = stack
        .as_ref()
        .and_then(|settings| settings.endpoint_url.as_deref());
    run(&sam, build, endpoint, "sam build").await?;
    let mut args: Vec<OsString> = vec!["deploy".into()];
    if guided {
        args.push("--guided".into());
    }
    if let Some(settings) = &stack {
        args.extend(stack_args(settings));
        // samconfig.toml holds these after a guided deployment; without it, say them here.
        if !Path::new("samconfig.toml").exists() {
            args.extend(
                [
                    "--resolve-s3",
                    "--capabilities",
                    "CAPABILITY_IAM",
                    "CAPABILITY_AUTO_EXPAND",
                    "--no-fail-on-empty-changeset",
                ]
                .map(OsString::from),
            );
        }
    }
    args.extend(sam_args);
    output.note("deploying (sam deploy)");
    run(&sam, args, endpoint, "sam deploy").await
}

pub async fn delete(global: &Global, output: &Output, yes: bool) -> Result<()> {
    let sam = find_tool("sam")?;
    let Choice::Aws(settings) = global.choose()? else {
        return Err(CliError::config("no stack configured").hint(
            "pass --stack NAME (the local stack lives in --state-dir: remove that directory)",
        ));
    };
    let mut args: Vec<OsString> = vec!["delete".into()];
    args.extend(stack_args(&settings));
    if yes {
        args.push("--no-prompts".into());
    }
    output.note(&format!("deleting stack {} (sam delete)", settings.stack));
    run(&sam, args, settings.endpoint_url.as_deref(), "sam delete").await
}

/// The `--parameter-overrides` among sam deploy's arguments, for sam build too: the
/// build reads the template's parameters (Architecture picks the binaries' CPU), so a
/// build without them makes arm64 binaries for x86_64 functions.
fn parameter_overrides(sam_args: &[OsString]) -> Vec<OsString> {
    const FLAG: &str = "--parameter-overrides";
    let mut overrides = Vec::new();
    let mut taking = false;
    for arg in sam_args {
        let text = arg.to_string_lossy();
        if let Some(value) = text
            .strip_prefix(FLAG)
            .and_then(|rest| rest.strip_prefix('='))
        {
            overrides.extend([FLAG.into(), value.into()]);
            taking = false;
        } else if text == FLAG {
            overrides.push(arg.clone());
            taking = true;
        } else if text.starts_with("--") {
            taking = false;
        } else if taking {
            overrides.push(arg.clone());
        }
    }
    overrides
}

fn stack_args(settings: &AwsSettings) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--stack-name".into(), settings.stack.clone().into()];
    for (flag, value) in [
        ("--region", &settings.region),
        ("--profile", &settings.profile),
    ] {
        if let Some(value) = value {
            args.extend([flag.into(), value.into()]);
        }
    }
    args
}

/// A tool on the PATH, or in the project's tools directory.
fn find_tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from(TOOLS_DIR)])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            CliError::config(format!("{name} is not installed"))
                .hint("install with scripts/setup-tools.sh")
        })
}

/// Runs a tool with the terminal, with the tools directory on its PATH (sam looks for
/// cargo-lambda there) and `--endpoint-url` as AWS_ENDPOINT_URL, which the SAM CLI's
/// AWS SDK honours as the AWS CLI does: `--endpoint-url` points every call at an emulator.
async fn run(tool: &Path, args: Vec<OsString>, endpoint: Option<&str>, what: &str) -> Result<()> {
    let mut paths = vec![PathBuf::from(TOOLS_DIR)];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(paths)
        .map_err(|err| CliError::config(format!("bad PATH: {err}")).hint("fix PATH"))?;
    let mut command = Command::new(tool);
    command.args(args).env("PATH", path);
    if let Some(endpoint) = endpoint {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    let status = command.status().await.map_err(|err| {
        CliError::config(format!("cannot run {}: {err}", tool.display()))
            .hint("install with scripts/setup-tools.sh")
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::service(format!("{what} failed ({status})")).hint("see its output above"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn the_build_gets_the_parameter_overrides_of_the_deploy() {
        let deploy = args(
            "--no-confirm-changeset --parameter-overrides Architecture=x86_64 ApiAuthorization=NONE --tags a=b",
        );
        assert_eq!(
            parameter_overrides(&deploy),
            args("--parameter-overrides Architecture=x86_64 ApiAuthorization=NONE")
        );
        assert_eq!(
            parameter_overrides(&args("--parameter-overrides=Architecture=x86_64")),
            args("--parameter-overrides Architecture=x86_64")
        );
        assert!(parameter_overrides(&args("--no-confirm-changeset")).is_empty());
    }
}

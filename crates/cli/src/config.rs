//! Which target a command runs against: `--local`, a named stack (`--stack`, EWF_STACK,
//! `samconfig.toml`), or the local stack by default.

use crate::cli::Global;
use crate::error::{CliError, Exit, Result};
use crate::output::Output;
use crate::targets::local::LocalTarget;
use crate::targets::{self, AwsSettings, Target};
use std::path::{Path, PathBuf};

pub const DEFAULT_STATE_DIR: &str = ".ewf";
const SAMCONFIG: &str = "samconfig.toml";

pub enum Choice {
    Local(PathBuf),
    Aws(AwsSettings),
}

impl Global {
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// The settings of a stack named on the command line or in the environment.
    pub fn named_stack(&self) -> Option<AwsSettings> {
        self.stack.as_ref().map(|stack| AwsSettings {
            stack: stack.clone(),
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            api_url: self.api_url.clone(),
        })
    }

    /// The state file of the local stack, when the command's target is the local stack
    /// (`local serve` included).
    pub fn local_state_file(&self) -> Option<PathBuf> {
        match self.choose() {
            Ok(Choice::Local(dir)) => Some(dir.join(ewf_local::stack::STATE_FILE)),
            _ => None,
        }
    }

    /// The AWS-only options given (`--profile`, `--region`, `--endpoint-url`).
    fn aws_options(&self) -> Vec<&'static str> {
        [
            ("--profile", self.profile.is_some()),
            ("--region", self.region.is_some()),
            ("--endpoint-url", self.endpoint_url.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// AWS-only options need a stack to apply to: without one (or with `--local`) they
    /// are a usage error, never silently ignored.
    pub fn refuse_aws_options_without_stack(&self) -> Result<()> {
        let given = self.aws_options();
        if given.is_empty() {
            return Ok(());
        }
        let options = given.join(", ");
        Err(if self.local {
            CliError::new(
                Exit::Usage,
                format!(
                    "{options}: for a deployed stack only, and this command runs on the local stack"
                ),
            )
            .hint("drop them; or name the stack with --stack NAME, without --local")
        } else {
            CliError::new(Exit::Usage, format!("{options} given, but no stack named"))
                .hint("name the stack with --stack NAME, EWF_STACK or samconfig.toml (ewf deploy writes it); or drop them to use the local stack")
        })
    }

    /// The target of an ordinary command.
    pub fn choose(&self) -> Result<Choice> {
        if self.local {
            self.refuse_aws_options_without_stack()?;
            return Ok(Choice::Local(self.state_dir()));
        }
        if let Some(settings) = self.named_stack() {
            return Ok(Choice::Aws(settings));
        }
        match SamConfig::read(Path::new(SAMCONFIG))? {
            // As for the AWS CLI, a flag beats the environment, which beats a file.
            Some(sam) => Ok(Choice::Aws(AwsSettings {
                stack: sam.stack,
                profile: self
                    .profile
                    .clone()
                    .or(unless_set(&["AWS_PROFILE"], sam.profile)),
                region: self.region.clone().or(unless_set(
                    &["AWS_REGION", "AWS_DEFAULT_REGION"],
                    sam.region,
                )),
                endpoint_url: self.endpoint_url.clone(),
                api_url: self.api_url.clone(),
            })),
            None => {
                self.refuse_aws_options_without_stack()?;
                Ok(Choice::Local(self.state_dir()))
            }
        }
    }

    /// Opens the target of an ordinary command, noting on stderr when no stack was
    /// configured and the local stack is used.
    pub async fn open(&self, output: &Output) -> Result<Box<dyn Target>> {
        let explicit = self.local;
        let target: Box<dyn Target> = match self.choose()? {
            Choice::Local(dir) => {
                if !explicit {
                    // On stderr even for a script: it must learn that AWS was not reached.
                    output.notice(&format!(
                        "note: no stack named (--stack, EWF_STACK or samconfig.toml): using the local stack in {}",
                        dir.display()
                    ));
                }
                Box::new(LocalTarget::open(dir, None, self.lock_wait)?)
            }
            Choice::Aws(settings) => targets::connect(&settings).await?,
        };
        output.set_target(target.describe());
        Ok(target)
    }
}

/// What `sam deploy` recorded in samconfig.toml.
#[derive(Debug, PartialEq)]
pub struct SamConfig {
    pub stack: String,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// A value from `samconfig.toml`, unless one of the environment variables that beat it
/// is set.
fn unless_set(variables: &[&str], value: Option<String>) -> Option<String> {
    unless_set_in(|name| std::env::var_os(name), variables, value)
}

fn unless_set_in(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    variables: &[&str],
    value: Option<String>,
) -> Option<String> {
    let overridden = variables
        .iter()
        .any(|name| env(name).is_some_and(|set| !set.is_empty()));
    value.filter(|_| !overridden)
}

impl SamConfig {
    pub fn read(path: &Path) -> Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|err| {
                CliError::config(format!("cannot read {}: {err}", path.display()))
                    .hint("fix the file, or pass --stack NAME or --local")
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(
                CliError::config(format!("cannot read {}: {err}", path.display()))
                    .hint("pass --stack NAME or --local"),
            ),
        }
    }

    /// The `default` environment's deploy parameters, then its global ones.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let document: toml_edit::DocumentMut = text
            .parse()
            .map_err(|err: toml_edit::TomlError| err.message().to_owned())?;
        let setting = |name: &str| {
            ["deploy", "global"]
                .iter()
                .find_map(|command| {
                    // `get`, not indexing: indexing a missing key panics.
                    document
                        .get("default")
                        .and_then(|default| default.get(command))
                        .and_then(|command| command.get("parameters"))
                        .and_then(|parameters| parameters.get(name))
                        .and_then(toml_edit::Item::as_str)
                })
                .map(str::to_owned)
        };
        Ok(setting("stack_name").map(|stack| Self {
            stack,
            region: setting("region"),
            profile: setting("profile"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samconfig_gives_the_stack_and_its_region() {
        let text = "version = 0.1\n[default.deploy.parameters]\nstack_name = \"ewf-dev\"\nregion = \"eu-west-2\"\n";
        let config = SamConfig::parse(text).unwrap().unwrap();
        assert_eq!(
            config,
            SamConfig {
                stack: "ewf-dev".into(),
                region: Some("eu-west-2".into()),
                profile: None
            }
        );
        let global_only = "[default.global.parameters]\nstack_name = \"other\"\n";
        assert_eq!(
            SamConfig::parse(global_only).unwrap().unwrap().stack,
            "other"
        );
        assert_eq!(SamConfig::parse("version = 0.1\n").unwrap(), None);
        assert!(SamConfig::parse("[default").is_err());
    }

    #[test]
    fn the_environment_beats_samconfig() {
        let env = |name: &str| (name == "AWS_DEFAULT_REGION").then(|| "us-east-1".into());
        let regions = ["AWS_REGION", "AWS_DEFAULT_REGION"];
        assert_eq!(unless_set_in(env, &regions, Some("eu-west-2".into())), None);
        assert_eq!(
            unless_set_in(env, &["AWS_PROFILE"], Some("dev".into())),
            Some("dev".into())
        );
    }
}

//! Parsing a definition into typed states. Whatever the interpreter does not implement
//! is refused here, naming the state and the feature, rather than misbehaving later.

use super::AslError;
use super::choice::Rule;
use super::path::Path;
use super::template::Template;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
const LAMBDA_INVOKE_WAIT: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";
/// The ASL default for a Task without TimeoutSeconds.
const DEFAULT_TASK_TIMEOUT: u64 = 99_999_999;

/// A parsed, validated state machine.
#[derive(Clone, Debug)]
pub struct StateMachine {
    pub(crate) name: String,
    pub(crate) start_at: String,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) states: HashMap<String, State>,
}

#[derive(Clone, Debug)]
pub(crate) struct State {
    pub(crate) kind: StateKind,
    /// None when the field is null (the state then sees `{}`).
    pub(crate) input_path: Option<Path>,
    pub(crate) output_path: Option<Path>,
    pub(crate) next: Transition,
    /// Whether anything of the state reads the context object (`$$`): only then is it
    /// made for the state.
    pub(crate) uses_context: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Transition {
    Next(String),
    End,
}

#[derive(Clone, Debug)]
pub(crate) enum StateKind {
    Pass(Pass),
    Task(Task),
    Choice(Choice),
    Wait(Wait),
    Succeed,
    Fail {
        error: Option<String>,
        cause: Option<String>,
    },
}

impl StateKind {
    /// The prefix of the state's history events (`TaskStateEntered`, ...).
    pub(crate) fn event_prefix(&self) -> &'static str {
        match self {
            StateKind::Pass(_) => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice(_) => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Pass {
    pub(crate) result: Option<Value>,
    pub(crate) parameters: Option<Template>,
    pub(crate) result_path: Option<Path>,
}

#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) wait_for_token: bool,
    pub(crate) parameters: Template,
    pub(crate) result_selector: Option<Template>,
    pub(crate) result_path: Option<Path>,
    pub(crate) timeout_seconds: u64,
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
}

impl Task {
    pub(crate) fn resource(&self) -> &'static str {
        if self.wait_for_token {
            "invoke.waitForTaskToken"
        } else {
            "invoke"
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Retrier {
    pub(crate) error_equals: Vec<String>,
    pub(crate) interval_seconds: u64,
    pub(crate) max_attempts: u64,
    pub(crate) backoff_rate: f64,
    pub(crate) max_delay_seconds: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Catcher {
    pub(crate) error_equals: Vec<String>,
    pub(crate) result_path: Option<Path>,
    pub(crate) next: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Choice {
    pub(crate) choices: Vec<(Rule, String)>,
    pub(crate) default: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum Wait {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(DateTime<Utc>),
    TimestampPath(Path),
}

impl StateMachine {
    /// Applies the definition substitutions (`${Name}`) and parses the definition.
    pub fn parse(
        definition: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<Self, AslError> {
        let mut document: Value = serde_json::from_str(definition)?;
        substitute(&mut document, substitutions)?;
        let top = "the state machine";
        let mut fields =
            object(document, "the definition").map_err(|reason| refused(top, reason))?;
        let start_at =
            required_str(&mut fields, "StartAt").map_err(|reason| refused(top, reason))?;
        let timeout_seconds = fields
            .remove("TimeoutSeconds")
            .map(|value| positive(&value, "TimeoutSeconds"))
            .transpose()
            .map_err(|reason| refused(top, reason))?;
        let states = fields
            .remove("States")
            .ok_or_else(|| refused(top, "StartAt and States are required"))?;
        let states = object(states, "States").map_err(|reason| refused(top, reason))?;
        for (key, allowed) in [
            ("Comment", None),
            ("Version", Some("1.0")),
            ("QueryLanguage", Some("JSONPath")),
        ] {
            check_optional(&mut fields, key, allowed).map_err(|reason| refused(top, reason))?;
        }
        leftover(&fields).map_err(|reason| refused(top, reason))?;
        let states = states
            .into_iter()
            .map(|(name, value)| {
                State::parse(value)
                    .map(|state| (name.clone(), state))
                    .map_err(|reason| refused(&at(&name), reason))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let machine = Self {
            name: "StateMachine".to_owned(),
            start_at,
            timeout_seconds,
            states,
        };
        machine.check_targets()?;
        Ok(machine)
    }

    /// Names the machine (for `$$.StateMachine.Name` and the execution ARNs).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }

    fn check_targets(&self) -> Result<(), AslError> {
        if !self.states.contains_key(&self.start_at) {
            return Err(refused(
                "the state machine",
                format!("StartAt names no state: {:?}", self.start_at),
            ));
        }
        for (name, state) in &self.states {
            let missing = state
                .targets()
                .into_iter()
                .find(|target| !self.states.contains_key(*target));
            if let Some(target) = missing {
                return Err(refused(
                    &at(name),
                    format!("transition to {target:?}, which is not a state"),
                ));
            }
        }
        Ok(())
    }
}

impl State {
    fn parse(value: Value) -> Result<Self, String> {
        // Every path and intrinsic argument is a string: `$$` in none means no context.
        let uses_context = value.to_string().contains("$$");
        let mut fields = object(value, "a state")?;
        let kind = required_str(&mut fields, "Type")?;
        check_optional(&mut fields, "Comment", None)?;
        check_optional(&mut fields, "QueryLanguage", Some("JSONPath"))?;
        let terminal = matches!(kind.as_str(), "Choice" | "Succeed" | "Fail");
        let (input_path, output_path) = if kind == "Fail" {
            (Some(Path::root()), Some(Path::root()))
        } else {
            (
                path_field(&mut fields, "InputPath")?,
                path_field(&mut fields, "OutputPath")?,
            )
        };
        let next = if terminal {
            Transition::End
        } else {
            transition(&mut fields)?
        };
        let kind = match kind.as_str() {
            "Pass" => StateKind::Pass(Pass {
                result: fields.remove("Result"),
                parameters: fields
                    .remove("Parameters")
                    .map(|value| template(&value, "Parameters"))
                    .transpose()?,
                result_path: result_path(&mut fields)?,
            }),
            "Task" => StateKind::Task(Task::parse(&mut fields)?),
            "Choice" => StateKind::Choice(Choice::parse(&mut fields)?),
            "Wait" => StateKind::Wait(Wait::parse(&mut fields)?),
            "Succeed" => StateKind::Succeed,
            "Fail" => StateKind::Fail {
                error: optional_str(&mut fields, "Error")?,
                cause: optional_str(&mut fields, "Cause")?,
            },
            other => return Err(unsupported(format!("Type {other}"))),
        };
        leftover(&fields)?;
        Ok(Self {
            kind,
            input_path,
            output_path,
            next,
            uses_context,
        })
    }

    fn targets(&self) -> Vec<&str> {
        let mut targets = Vec::new();
        if let Transition::Next(next) = &self.next {
            targets.push(next.as_str());
        }
        match &self.kind {
            StateKind::Task(task) => {
                targets.extend(task.catch.iter().map(|catcher| catcher.next.as_str()))
            }
            StateKind::Choice(choice) => {
                targets.extend(choice.choices.iter().map(|(_, next)| next.as_str()));
                targets.extend(choice.default.as_deref());
            }
            _ => {}
        }
        targets
    }
}

impl Task {
    fn parse(fields: &mut Map<String, Value>) -> Result<Self, String> {
        let resource = required_str(fields, "Resource")?;
        let wait_for_token = match resource.as_str() {
            LAMBDA_INVOKE => false,
            LAMBDA_INVOKE_WAIT => true,
            other => return Err(unsupported(format!("Resource {other}"))),
        };
        let parameters = fields
            .remove("Parameters")
            .ok_or("a lambda:invoke Task needs Parameters")?;
        let parameters = template(&parameters, "Parameters")?;
        let names = parameters.field_names();
        if !names.contains(&"FunctionName") {
            return Err("Parameters.FunctionName is required".to_owned());
        }
        if let Some(other) = names
            .iter()
            .find(|name| !matches!(**name, "FunctionName" | "Payload"))
        {
            return Err(unsupported(format!("Parameters.{other}")));
        }
        let retry = list(fields, "Retry", Retrier::parse)?;
        wildcard_last(
            "Retry",
            retry.iter().map(|retrier| &retrier.error_equals[..]),
        )?;
        let catch = list(fields, "Catch", Catcher::parse)?;
        wildcard_last(
            "Catch",
            catch.iter().map(|catcher| &catcher.error_equals[..]),
        )?;
        let token_path = Path::parse("$$.Task.Token")?;
        if wait_for_token && !parameters.mentions(&token_path) {
            return Err(
                "a .waitForTaskToken Task must pass $$.Task.Token in its Parameters".to_owned(),
            );
        }
        Ok(Self {
            wait_for_token,
            parameters,
            result_selector: fields
                .remove("ResultSelector")
                .map(|value| template(&value, "ResultSelector"))
                .transpose()?,
            result_path: result_path(fields)?,
            timeout_seconds: fields
                .remove("TimeoutSeconds")
                .map(|value| positive(&value, "TimeoutSeconds"))
                .transpose()?
                .unwrap_or(DEFAULT_TASK_TIMEOUT),
            retry,
            catch,
        })
    }
}

impl Retrier {
    fn parse(mut fields: Map<String, Value>) -> Result<Self, String> {
        let error_equals = error_equals(&mut fields)?;
        let whole = |fields: &mut Map<String, Value>, key: &str| {
            fields
                .remove(key)
                .map(|value| {
                    value
                        .as_u64()
                        .ok_or_else(|| format!("Retry {key} must be a whole number"))
                })
                .transpose()
        };
        let interval_seconds = whole(&mut fields, "IntervalSeconds")?.unwrap_or(1);
        let max_attempts = whole(&mut fields, "MaxAttempts")?.unwrap_or(3);
        let max_delay_seconds = whole(&mut fields, "MaxDelaySeconds")?;
        let backoff_rate = fields
            .remove("BackoffRate")
            .map(|value| {
                value
                    .as_f64()
                    .filter(|rate| *rate >= 1.0)
                    .ok_or("Retry BackoffRate must be at least 1.0")
            })
            .transpose()?
            .unwrap_or(2.0);
        check_optional(&mut fields, "Comment", None)?;
        check_optional(&mut fields, "JitterStrategy", Some("NONE"))?;
        leftover(&fields)?;
        if interval_seconds == 0 || max_delay_seconds == Some(0) {
            return Err("Retry IntervalSeconds and MaxDelaySeconds must be positive".to_owned());
        }
        Ok(Self {
            error_equals,
            interval_seconds,
            max_attempts,
            backoff_rate,
            max_delay_seconds,
        })
    }
}

impl Catcher {
    fn parse(mut fields: Map<String, Value>) -> Result<Self, String> {
        let error_equals = error_equals(&mut fields)?;
        let next = required_str(&mut fields, "Next")?;
        let result_path = result_path(&mut fields)?;
        check_optional(&mut fields, "Comment", None)?;
        leftover(&fields)?;
        Ok(Self {
            error_equals,
            result_path,
            next,
        })
    }
}

impl Choice {
    fn parse(fields: &mut Map<String, Value>) -> Result<Self, String> {
        let Some(Value::Array(rules)) = fields.remove("Choices") else {
            return Err("a Choice state needs a Choices list".to_owned());
        };
        if rules.is_empty() {
            return Err("a Choice state needs at least one rule".to_owned());
        }
        let choices = rules
            .into_iter()
            .map(|rule| {
                let mut rule = object(rule, "a choice rule")?;
                let next = required_str(&mut rule, "Next")?;
                Ok((Rule::parse(&rule)?, next))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            choices,
            default: optional_str(fields, "Default")?,
        })
    }
}

impl Wait {
    fn parse(fields: &mut Map<String, Value>) -> Result<Self, String> {
        let mut given = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter_map(|key| fields.remove(key).map(|value| (key, value)));
        let (Some((key, value)), None) = (given.next(), given.next()) else {
            return Err(
                "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath"
                    .to_owned(),
            );
        };
        let text = || {
            value
                .as_str()
                .ok_or_else(|| format!("{key} must be a string"))
        };
        Ok(match key {
            "Seconds" => Wait::Seconds(value.as_u64().ok_or("Seconds must be a whole number")?),
            "Timestamp" => Wait::Timestamp(
                DateTime::parse_from_rfc3339(text()?)
                    .map_err(|err| format!("Timestamp: {err}"))?
                    .to_utc(),
            ),
            "SecondsPath" => Wait::SecondsPath(Path::parse(text()?)?),
            _ => Wait::TimestampPath(Path::parse(text()?)?),
        })
    }
}

/// Replaces every `${Name}` in the definition's strings with its value.
fn substitute(value: &mut Value, substitutions: &HashMap<String, String>) -> Result<(), AslError> {
    match value {
        Value::String(text) => *text = substitute_text(text, substitutions)?,
        Value::Array(items) => {
            for item in items {
                substitute(item, substitutions)?;
            }
        }
        Value::Object(fields) => {
            for item in fields.values_mut() {
                substitute(item, substitutions)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn substitute_text(
    text: &str,
    substitutions: &HashMap<String, String>,
) -> Result<String, AslError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start + 2..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + length];
        let value = substitutions
            .get(name)
            .ok_or_else(|| AslError::Substitution(name.to_owned()))?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[start + 3 + length..];
    }
    out.push_str(rest);
    Ok(out)
}

fn at(state: &str) -> String {
    format!("state {state:?}")
}

fn refused(at: &str, reason: impl Into<String>) -> AslError {
    AslError::Definition {
        at: at.to_owned(),
        reason: reason.into(),
    }
}

fn unsupported(feature: impl std::fmt::Display) -> String {
    format!("{feature} is not supported by the local interpreter")
}

fn object(value: Value, what: &str) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(format!("{what} must be a JSON object")),
    }
}

fn leftover(fields: &Map<String, Value>) -> Result<(), String> {
    match fields.keys().next() {
        Some(key) => Err(unsupported(format!("field {key}"))),
        None => Ok(()),
    }
}

fn optional_str(fields: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.remove(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn required_str(fields: &mut Map<String, Value>, key: &str) -> Result<String, String> {
    optional_str(fields, key)?.ok_or_else(|| format!("{key} is required"))
}

/// Removes an optional string field; when `allowed` is given, only that value is accepted.
fn check_optional(
    fields: &mut Map<String, Value>,
    key: &str,
    allowed: Option<&str>,
) -> Result<(), String> {
    match (optional_str(fields, key)?, allowed) {
        (Some(value), Some(allowed)) if value != allowed => {
            Err(unsupported(format!("{key} {value}")))
        }
        _ => Ok(()),
    }
}

/// A path field: `$` when absent, None when null.
fn path_field(fields: &mut Map<String, Value>, key: &str) -> Result<Option<Path>, String> {
    match fields.remove(key) {
        None => Ok(Some(Path::root())),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Path::parse(&text)
            .map(Some)
            .map_err(|reason| format!("{key}: {reason}")),
        Some(_) => Err(format!("{key} must be a path or null")),
    }
}

/// ResultPath writes into the state's data, never into the context object.
fn result_path(fields: &mut Map<String, Value>) -> Result<Option<Path>, String> {
    let path = path_field(fields, "ResultPath")?;
    if path.as_ref().is_some_and(Path::is_context) {
        return Err("ResultPath cannot be a $$ context path".to_owned());
    }
    Ok(path)
}

fn transition(fields: &mut Map<String, Value>) -> Result<Transition, String> {
    let next = optional_str(fields, "Next")?;
    let end = fields
        .remove("End")
        .map(|value| value.as_bool().ok_or("End must be true or false"))
        .transpose()?;
    match (next, end.unwrap_or(false)) {
        (Some(next), false) => Ok(Transition::Next(next)),
        (None, true) => Ok(Transition::End),
        _ => Err("exactly one of Next and End (true) is required".to_owned()),
    }
}

fn template(value: &Value, key: &str) -> Result<Template, String> {
    if !value.is_object() {
        return Err(format!("{key} must be a JSON object"));
    }
    Template::parse(value).map_err(|reason| format!("{key}: {reason}"))
}

fn positive(value: &Value, key: &str) -> Result<u64, String> {
    value
        .as_u64()
        .filter(|seconds| *seconds > 0)
        .ok_or_else(|| format!("{key} must be a positive whole number"))
}

fn list<T>(
    fields: &mut Map<String, Value>,
    key: &str,
    parse: impl Fn(Map<String, Value>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items = match fields.remove(key) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("{key} must be a list")),
    };
    items
        .into_iter()
        .map(|item| object(item, key).and_then(&parse))
        .collect()
}

/// States.ALL must stand alone, in the last retrier or catcher.
fn wildcard_last<'a>(
    key: &str,
    lists: impl ExactSizeIterator<Item = &'a [String]>,
) -> Result<(), String> {
    let count = lists.len();
    for (index, names) in lists.enumerate() {
        let has_all = names.iter().any(|name| name == super::errors::ALL);
        if has_all && (names.len() > 1 || index + 1 < count) {
            return Err(format!("{key}: States.ALL must be alone in the last entry"));
        }
    }
    Ok(())
}

fn error_equals(fields: &mut Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(Value::Array(names)) = fields.remove("ErrorEquals") else {
        return Err("ErrorEquals must be a list of error names".to_owned());
    };
    let names = names
        .into_iter()
        .map(|name| {
            name.as_str()
                .map(str::to_owned)
                .ok_or("ErrorEquals must be a list of error names")
        })
        .collect::<Result<Vec<_>, _>>()?;
    if names.is_empty() {
        return Err("ErrorEquals must not be empty".to_owned());
    }
    Ok(names)
}

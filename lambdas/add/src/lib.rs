//! The add service: sums a list of numbers for the workflow (item price plus delivery
//! price). Decimal arithmetic throughout, so money never passes through floating point.

use async_trait::async_trait;
use ewf_domain::entry::{Function, Input, Reply};
use ewf_domain::{Money, ServiceError};
use serde_json::{Value, json};

const FIELD: &str = "numbers";

/// The only request: `{"numbers": [..]}`, each a JSON number or a decimal string.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub numbers: Vec<Money>,
}

impl Command {
    pub fn decode(input: &Input) -> Result<Self, ServiceError> {
        let Input::Invoke(payload) = input else {
            return Err(ServiceError::bad_input(
                "input",
                "the add function is only invoked directly",
            ));
        };
        let items = payload
            .get(FIELD)
            .and_then(Value::as_array)
            .filter(|items| !items.is_empty())
            .ok_or_else(|| ServiceError::bad_input(FIELD, "must be a non-empty list"))?;
        let numbers = items.iter().map(number).collect::<Result<_, _>>()?;
        Ok(Self { numbers })
    }
}

fn number(value: &Value) -> Result<Money, ServiceError> {
    let invalid = || ServiceError::bad_input(FIELD, format!("{value} is not a decimal number"));
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => return Err(invalid()),
    };
    // A JSON number may print in exponent form (1e21).
    text.parse()
        .or_else(|_| Money::from_scientific(&text))
        .map_err(|_| invalid())
}

/// Adds numbers; replies `{"sum": "<decimal>"}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddService;

impl AddService {
    pub fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        let sum = command
            .numbers
            .iter()
            .try_fold(Money::ZERO, |sum, number| sum.checked_add(*number))
            .ok_or_else(|| ServiceError::bad_input(FIELD, "the sum is too large"))?;
        Ok(Reply::ok(json!({ "sum": sum.to_string() })))
    }
}

#[async_trait]
impl Function for AddService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        self.execute(Command::decode(&input)?)
    }
}

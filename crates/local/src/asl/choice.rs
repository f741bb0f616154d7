//! Choice rules: comparisons of a variable against a literal or another path, type
//! tests, and their And/Or/Not combinations.

use super::definition::Choice;
use super::path::Path;
use super::{Failure, errors};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    String,
    Numeric,
    Timestamp,
    Boolean,
}

const KINDS: [(&str, Kind); 4] = [
    ("String", Kind::String),
    ("Numeric", Kind::Numeric),
    ("Timestamp", Kind::Timestamp),
    ("Boolean", Kind::Boolean),
];

/// Comparison suffixes and the orderings they accept; the longest come first so that
/// `LessThanEquals` is not read as `LessThan`.
const COMPARISONS: [(&str, &[Ordering]); 5] = [
    ("LessThanEquals", &[Ordering::Less, Ordering::Equal]),
    ("GreaterThanEquals", &[Ordering::Greater, Ordering::Equal]),
    ("LessThan", &[Ordering::Less]),
    ("GreaterThan", &[Ordering::Greater]),
    ("Equals", &[Ordering::Equal]),
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TypeTest {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

const TYPE_TESTS: [(&str, TypeTest); 6] = [
    ("IsNull", TypeTest::Null),
    ("IsPresent", TypeTest::Present),
    ("IsNumeric", TypeTest::Numeric),
    ("IsString", TypeTest::String),
    ("IsBoolean", TypeTest::Boolean),
    ("IsTimestamp", TypeTest::Timestamp),
];

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operand {
    Literal(Value),
    Path(Path),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Test {
    Compare {
        kind: Kind,
        accepts: &'static [Ordering],
        operand: Operand,
    },
    Matches(String),
    Is(TypeTest, bool),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: Path, test: Test },
}

impl Rule {
    /// Parses one rule object. `Next` and `Comment` are left to the caller, who knows
    /// whether this is a top-level rule.
    pub(crate) fn parse(fields: &Map<String, Value>) -> Result<Self, String> {
        let mut operators = fields
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "Next" | "Comment" | "Variable"));
        let (Some((operator, value)), None) = (operators.next(), operators.next()) else {
            return Err("a choice rule needs exactly one operator".to_owned());
        };
        let list = |value: &Value| -> Result<Vec<Rule>, String> {
            let items = value.as_array().filter(|items| !items.is_empty());
            let items =
                items.ok_or_else(|| format!("{operator} needs a non-empty list of rules"))?;
            items
                .iter()
                .map(|item| nested(item).and_then(Rule::parse))
                .collect()
        };
        let rule = match operator.as_str() {
            "And" => Rule::And(list(value)?),
            "Or" => Rule::Or(list(value)?),
            "Not" => Rule::Not(Box::new(Rule::parse(nested(value)?)?)),
            _ => {
                let variable = fields
                    .get("Variable")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{operator} needs a Variable path"))?;
                Rule::Test {
                    variable: Path::parse(variable)?,
                    test: Test::parse(operator, value)?,
                }
            }
        };
        if fields.contains_key("Variable") && !matches!(rule, Rule::Test { .. }) {
            return Err(format!("{operator} does not take a Variable"));
        }
        Ok(rule)
    }

    pub(crate) fn matches(&self, input: &Value, context: &Value) -> Result<bool, Failure> {
        match self {
            Rule::And(rules) => all(rules, input, context),
            Rule::Or(rules) => {
                for rule in rules {
                    if rule.matches(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => rule.matches(input, context).map(|matched| !matched),
            Rule::Test { variable, test } => test.evaluate(variable, input, context),
        }
    }
}

fn nested(value: &Value) -> Result<&Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| "And, Or and Not take rule objects".to_owned())
}

fn all(rules: &[Rule], input: &Value, context: &Value) -> Result<bool, Failure> {
    for rule in rules {
        if !rule.matches(input, context)? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Test {
    fn parse(operator: &str, value: &Value) -> Result<Self, String> {
        let unknown = || format!("choice operator {operator} is not supported");
        if let Some((_, test)) = TYPE_TESTS.iter().find(|(name, _)| *name == operator) {
            let expected = value
                .as_bool()
                .ok_or_else(|| format!("{operator} takes true or false"))?;
            return Ok(Test::Is(*test, expected));
        }
        if operator == "StringMatches" {
            let pattern = value.as_str().ok_or("StringMatches takes a string")?;
            return Ok(Test::Matches(pattern.to_owned()));
        }
        let (comparison, by_path) = match operator.strip_suffix("Path") {
            Some(comparison) => (comparison, true),
            None => (operator, false),
        };
        let (kind, suffix) = KINDS
            .iter()
            .find_map(|(prefix, kind)| {
                comparison
                    .strip_prefix(prefix)
                    .map(|suffix| (*kind, suffix))
            })
            .ok_or_else(unknown)?;
        let (_, accepts) = COMPARISONS
            .iter()
            .find(|(name, _)| *name == suffix)
            .ok_or_else(unknown)?;
        if kind == Kind::Boolean && suffix != "Equals" {
            return Err(unknown());
        }
        let operand = if by_path {
            Operand::Path(Path::parse(
                value
                    .as_str()
                    .ok_or_else(|| format!("{operator} takes a path"))?,
            )?)
        } else {
            if !kind.holds(value) {
                return Err(format!("{operator} takes a {kind:?} value"));
            }
            Operand::Literal(value.clone())
        };
        Ok(Test::Compare {
            kind,
            accepts,
            operand,
        })
    }

    fn evaluate(&self, variable: &Path, input: &Value, context: &Value) -> Result<bool, Failure> {
        let value = variable.select(input, context);
        if let Test::Is(TypeTest::Present, expected) = self {
            return Ok(value.is_some() == *expected);
        }
        let value = value.ok_or_else(|| invalid_path(variable))?;
        Ok(match self {
            Test::Is(test, expected) => test.holds(value) == *expected,
            Test::Matches(pattern) => value
                .as_str()
                .is_some_and(|text| wildcard_match(pattern, text)),
            Test::Compare {
                kind,
                accepts,
                operand,
            } => {
                let other = match operand {
                    Operand::Literal(literal) => literal,
                    Operand::Path(path) => path
                        .select(input, context)
                        .ok_or_else(|| invalid_path(path))?,
                };
                kind.compare(value, other)
                    .is_some_and(|ordering| accepts.contains(&ordering))
            }
        })
    }
}

impl TypeTest {
    fn holds(self, value: &Value) -> bool {
        match self {
            TypeTest::Null => value.is_null(),
            TypeTest::Present => true,
            TypeTest::Numeric => value.is_number(),
            TypeTest::String => value.is_string(),
            TypeTest::Boolean => value.is_boolean(),
            TypeTest::Timestamp => timestamp(value).is_some(),
        }
    }
}

impl Kind {
    fn holds(self, value: &Value) -> bool {
        match self {
            Kind::String => value.is_string(),
            Kind::Numeric => value.is_number(),
            Kind::Timestamp => timestamp(value).is_some(),
            Kind::Boolean => value.is_boolean(),
        }
    }

    /// The ordering of `left` against `right`, or None when either is not of this kind
    /// (a type mismatch makes the comparison false, as on AWS).
    fn compare(self, left: &Value, right: &Value) -> Option<Ordering> {
        match self {
            Kind::String => Some(left.as_str()?.cmp(right.as_str()?)),
            Kind::Numeric => left.as_f64()?.partial_cmp(&right.as_f64()?),
            Kind::Timestamp => Some(timestamp(left)?.cmp(&timestamp(right)?)),
            Kind::Boolean => (left.as_bool()? == right.as_bool()?).then_some(Ordering::Equal),
        }
    }
}

fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|time| time.to_utc())
}

fn invalid_path(path: &Path) -> Failure {
    Failure::new(
        errors::RUNTIME,
        format!(
            "Invalid path '{path}': The choice state's condition path references an invalid value."
        ),
    )
}

/// StringMatches: `*` matches any run of characters, `\*` a literal star.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        tokens.push(match ch {
            '\\' => Some(chars.next().unwrap_or('\\')),
            '*' => None,
            other => Some(other),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // reachable[j]: the pattern read so far can match the first j characters.
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for token in tokens {
        reachable = match token {
            None => {
                let mut next = reachable.clone();
                for j in 1..next.len() {
                    next[j] = next[j] || next[j - 1];
                }
                next
            }
            Some(expected) => {
                let mut next = vec![false; text.len() + 1];
                for j in 1..next.len() {
                    next[j] = reachable[j - 1] && text[j - 1] == expected;
                }
                next
            }
        };
    }
    reachable[text.len()]
}

impl Choice {
    /// The state to go to: the first rule's that matches, or the default.
    pub(crate) fn next(&self, input: &Value, context: &Value) -> Result<String, Failure> {
        for (rule, target) in &self.choices {
            if rule.matches(input, context)? {
                return Ok(target.clone());
            }
        }
        self.default.clone().ok_or_else(|| {
            Failure::new(
                errors::NO_CHOICE_MATCHED,
                "No Choice Rule matched and there is no Default",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: Value, input: Value) -> Result<bool, Failure> {
        Rule::parse(rule.as_object().unwrap())
            .unwrap()
            .matches(&input, &json!({}))
    }

    #[test]
    fn comparisons() {
        let input = json!({"s": "b", "n": 3, "t": "2024-01-02T00:00:00Z", "f": true, "m": 3});
        assert!(
            check(
                json!({"Variable": "$.s", "StringEquals": "b"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            check(
                json!({"Variable": "$.s", "StringGreaterThan": "a"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            check(
                json!({"Variable": "$.n", "NumericLessThanEquals": 3}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            !check(
                json!({"Variable": "$.n", "NumericGreaterThan": 3}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            check(
                json!({"Variable": "$.n", "NumericEqualsPath": "$.m"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            check(
                json!({"Variable": "$.f", "BooleanEquals": true}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            check(
                json!({"Variable": "$.t", "TimestampLessThan": "2024-01-02T00:00:01Z"}),
                input.clone()
            )
            .unwrap()
        );
        // A type mismatch is false, not an error.
        assert!(!check(json!({"Variable": "$.s", "NumericEquals": 3}), input).unwrap());
    }

    #[test]
    fn combinations_and_type_tests() {
        let input = json!({"a": null, "b": "x"});
        let rule = json!({"And": [
            {"Variable": "$.a", "IsNull": true},
            {"Not": {"Variable": "$.c", "IsPresent": true}},
            {"Or": [{"Variable": "$.b", "StringMatches": "*y"}, {"Variable": "$.b", "IsString": true}]}
        ]});
        assert!(check(rule, input).unwrap());
    }

    #[test]
    fn a_missing_variable_is_a_runtime_error() {
        let failure = check(
            json!({"Variable": "$.gone", "StringEquals": "x"}),
            json!({}),
        )
        .unwrap_err();
        assert_eq!(failure.error, errors::RUNTIME);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("log-*.txt", "log-2024.txt"));
        assert!(wildcard_match("a\\*b", "a*b"));
        assert!(!wildcard_match("a\\*b", "axb"));
        assert!(!wildcard_match("*.txt", "file.csv"));
    }

    #[test]
    fn unknown_operators_are_refused() {
        for rule in [
            json!({"Variable": "$.a", "StringContains": "x"}),
            json!({"Variable": "$.a", "BooleanLessThan": true}),
            json!({"Variable": "$.a", "NumericEquals": "3"}),
            json!({"Variable": "$.a"}),
        ] {
            assert!(
                Rule::parse(rule.as_object().unwrap()).is_err(),
                "{rule} was accepted"
            );
        }
    }
}

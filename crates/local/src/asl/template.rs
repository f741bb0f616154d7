//! Payload templates (`Parameters`, `ResultSelector`): JSON whose keys ending in `.$`
//! take their value from a path or an intrinsic function call.

use super::path::Path;
use super::{Failure, errors};
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Template {
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Literal(Value),
    Path(Path),
    Call(Call),
}

impl Template {
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::Object(fields) => Template::Object(
                fields
                    .iter()
                    .map(|(key, value)| match key.strip_suffix(".$") {
                        Some(name) => {
                            dynamic(key, value).map(|template| (name.to_owned(), template))
                        }
                        None => Template::parse(value).map(|template| (key.clone(), template)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .map(Template::parse)
                    .collect::<Result<_, _>>()?,
            ),
            other => Template::Literal(other.clone()),
        })
    }

    /// The names of an object template's fields, as they appear in its output.
    pub(crate) fn field_names(&self) -> Vec<&str> {
        match self {
            Template::Object(fields) => fields.iter().map(|(name, _)| name.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether some path in the template is `path` (e.g. `$$.Task.Token`).
    pub(crate) fn mentions(&self, path: &Path) -> bool {
        match self {
            Template::Object(fields) => fields.iter().any(|(_, template)| template.mentions(path)),
            Template::Array(items) => items.iter().any(|template| template.mentions(path)),
            Template::Literal(_) => false,
            Template::Path(own) => own == path,
            Template::Call(call) => call.args.iter().any(|arg| arg.mentions(path)),
        }
    }

    pub(crate) fn render(&self, input: &Value, context: &Value) -> Result<Value, Failure> {
        Ok(match self {
            Template::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, template)| Ok((name.clone(), template.render(input, context)?)))
                    .collect::<Result<Map<_, _>, Failure>>()?,
            ),
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(input, context))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Literal(value) => value.clone(),
            Template::Path(path) => path.select(input, context).cloned().ok_or_else(|| {
                Failure::new(
                    errors::PARAMETER_PATH_FAILURE,
                    format!("The JSONPath {path} could not be found in the input"),
                )
            })?,
            Template::Call(call) => call.evaluate(input, context)?,
        })
    }
}

fn dynamic(key: &str, value: &Value) -> Result<Template, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("{key} must be a path or an intrinsic function"))?;
    if text.starts_with('$') {
        Path::parse(text).map(Template::Path)
    } else {
        let (call, rest) = Call::parse(text.trim())?;
        if !rest.trim().is_empty() {
            return Err(format!(
                "unexpected text after the intrinsic function in {text:?}"
            ));
        }
        Ok(Template::Call(call))
    }
}

/// The supported intrinsic functions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Intrinsic {
    Array,
    Format,
    StringToJson,
    JsonToString,
}

impl Intrinsic {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "States.Array" => Intrinsic::Array,
            "States.Format" => Intrinsic::Format,
            "States.StringToJson" => Intrinsic::StringToJson,
            "States.JsonToString" => Intrinsic::JsonToString,
            _ => return None,
        })
    }

    fn accepts(self, count: usize) -> bool {
        match self {
            Intrinsic::Array => true,
            Intrinsic::Format => count >= 1,
            Intrinsic::StringToJson | Intrinsic::JsonToString => count == 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Arg {
    /// A quoted string, kept with its escapes so that States.Format can tell `\{` from `{`.
    Text(String),
    Literal(Value),
    Path(Path),
    Call(Call),
}

impl Arg {
    fn mentions(&self, path: &Path) -> bool {
        match self {
            Arg::Path(own) => own == path,
            Arg::Call(call) => call.args.iter().any(|arg| arg.mentions(path)),
            Arg::Text(_) | Arg::Literal(_) => false,
        }
    }

    fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, Failure> {
        match self {
            Arg::Text(raw) => Ok(Value::String(unescape(raw))),
            Arg::Literal(value) => Ok(value.clone()),
            Arg::Path(path) => path.select(input, context).cloned().ok_or_else(|| {
                intrinsic_failure(format!(
                    "The JSONPath {path} could not be found in the input"
                ))
            }),
            Arg::Call(call) => call.evaluate(input, context),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Call {
    function: Intrinsic,
    args: Vec<Arg>,
}

impl Call {
    /// Parses `States.Name(arg, ...)` at the start of `text`; returns the rest.
    fn parse(text: &str) -> Result<(Self, &str), String> {
        let open = text
            .find('(')
            .ok_or_else(|| format!("{text:?} is neither a path nor an intrinsic function"))?;
        let name = text[..open].trim();
        let function = Intrinsic::named(name)
            .ok_or_else(|| format!("intrinsic function {name} is not supported"))?;
        let mut rest = text[open + 1..].trim_start();
        let mut args = Vec::new();
        if let Some(after) = rest.strip_prefix(')') {
            rest = after;
        } else {
            loop {
                let (arg, after) = parse_arg(rest)?;
                args.push(arg);
                let after = after.trim_start();
                if let Some(after) = after.strip_prefix(',') {
                    rest = after.trim_start();
                } else if let Some(after) = after.strip_prefix(')') {
                    rest = after;
                    break;
                } else {
                    return Err(format!("expected , or ) in the arguments of {name}"));
                }
            }
        }
        if !function.accepts(args.len()) {
            return Err(format!("{name} does not take {} arguments", args.len()));
        }
        Ok((Self { function, args }, rest))
    }

    fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, Failure> {
        let values = || {
            self.args
                .iter()
                .map(|arg| arg.evaluate(input, context))
                .collect::<Result<Vec<_>, _>>()
        };
        match self.function {
            Intrinsic::Array => Ok(Value::Array(values()?)),
            Intrinsic::Format => {
                let Some(Arg::Text(template)) = self.args.first() else {
                    return Err(intrinsic_failure(
                        "States.Format needs a quoted string as its first argument",
                    ));
                };
                let values = values()?;
                format(template, &values[1..]).map(Value::String)
            }
            Intrinsic::StringToJson => match &values()?[..] {
                [Value::String(text)] => serde_json::from_str(text)
                    .map_err(|err| intrinsic_failure(format!("States.StringToJson: {err}"))),
                _ => Err(intrinsic_failure("States.StringToJson needs a string")),
            },
            Intrinsic::JsonToString => match &values()?[..] {
                [value] => Ok(Value::String(value.to_string())),
                _ => Err(intrinsic_failure("States.JsonToString needs one argument")),
            },
        }
    }
}

fn parse_arg(text: &str) -> Result<(Arg, &str), String> {
    if let Some(body) = text.strip_prefix('\'') {
        let mut escaped = false;
        for (at, ch) in body.char_indices() {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return Ok((Arg::Text(body[..at].to_owned()), &body[at + 1..])),
                _ => {}
            }
        }
        return Err(format!("unterminated string in {text:?}"));
    }
    if text.starts_with("States.") {
        let (call, rest) = Call::parse(text)?;
        return Ok((Arg::Call(call), rest));
    }
    let end = argument_end(text);
    let token = text[..end].trim();
    let arg = if token.starts_with('$') {
        Arg::Path(Path::parse(token)?)
    } else {
        match serde_json::from_str::<Value>(token) {
            Ok(value) if !value.is_object() && !value.is_array() && !value.is_string() => {
                Arg::Literal(value)
            }
            _ => {
                return Err(format!(
                    "argument {token:?} is not a string, number, boolean, null or path"
                ));
            }
        }
    };
    Ok((arg, &text[end..]))
}

/// Where an unquoted argument ends: at a `,` or `)` outside brackets and quotes.
fn argument_end(text: &str) -> usize {
    let mut depth = 0usize;
    let mut quote = None;
    for (at, ch) in text.char_indices() {
        match (quote, ch) {
            (Some(open), _) if ch == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, ',' | ')') if depth == 0 => return at,
            _ => {}
        }
    }
    text.len()
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        out.push(if ch == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            ch
        });
    }
    out
}

/// States.Format: each `{}` takes the next argument; `\{` and `\}` are literal braces.
fn format(template: &str, values: &[Value]) -> Result<String, Failure> {
    let mut out = String::new();
    let mut next = values.iter();
    let mut chars = template.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push(chars.next().unwrap_or('\\')),
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                match next.next() {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(Value::Array(_) | Value::Object(_)) => {
                        return Err(intrinsic_failure(
                            "States.Format takes only strings, numbers, booleans and null",
                        ));
                    }
                    Some(other) => out.push_str(&other.to_string()),
                    None => {
                        return Err(intrinsic_failure(
                            "States.Format has more {} than arguments",
                        ));
                    }
                }
            }
            _ => out.push(ch),
        }
    }
    if next.next().is_some() {
        return Err(intrinsic_failure(
            "States.Format has more arguments than {}",
        ));
    }
    Ok(out)
}

fn intrinsic_failure(cause: impl Into<String>) -> Failure {
    Failure::new(errors::INTRINSIC_FAILURE, cause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: Value, input: Value) -> Result<Value, Failure> {
        Template::parse(&template)
            .unwrap()
            .render(&input, &json!({"Task": {"Token": "t-1"}}))
    }

    #[test]
    fn dollar_keys_take_paths_and_nest() {
        let out = render(
            json!({"a.$": "$.x", "b": {"c.$": "$$.Task.Token", "d": [1, {"e.$": "$.y[1]"}]}}),
            json!({"x": "X", "y": [0, 5]}),
        );
        assert_eq!(
            out.unwrap(),
            json!({"a": "X", "b": {"c": "t-1", "d": [1, {"e": 5}]}})
        );
    }

    #[test]
    fn a_missing_path_is_a_parameter_path_failure() {
        let failure = render(json!({"a.$": "$.nope"}), json!({})).unwrap_err();
        assert_eq!(failure.error, errors::PARAMETER_PATH_FAILURE);
    }

    #[test]
    fn intrinsic_functions() {
        let input = json!({"p": "1.5", "q": 2, "doc": "{\"k\": [1]}", "obj": {"z": 1}});
        let out = render(
            json!({
                "array.$": "States.Array($.p, $.q, 'x, y', true, null, States.Array(1))",
                "format.$": "States.Format('{} has {} \\{\\}, it\\'s {}', $.p, $.q, null)",
                "parsed.$": "States.StringToJson($.doc)",
                "text.$": "States.JsonToString($.obj)"
            }),
            input,
        )
        .unwrap();
        assert_eq!(out["array"], json!(["1.5", 2, "x, y", true, null, [1]]));
        assert_eq!(out["format"], json!("1.5 has 2 {}, it's null"));
        assert_eq!(out["parsed"], json!({"k": [1]}));
        assert_eq!(out["text"], json!("{\"z\":1}"));
    }

    #[test]
    fn format_counts_its_arguments() {
        let failure = render(json!({"f.$": "States.Format('{} {}', 1)"}), json!({})).unwrap_err();
        assert_eq!(failure.error, errors::INTRINSIC_FAILURE);
    }

    #[test]
    fn unknown_or_malformed_intrinsics_are_refused() {
        for text in [
            "States.UUID()",
            "States.Array($.a",
            "States.JsonToString()",
            "Foo($.a)",
            "States.Array({})",
        ] {
            assert!(
                Template::parse(&json!({"a.$": text})).is_err(),
                "{text} was accepted"
            );
        }
    }
}

//! The JSONPath subset of the Amazon States Language: `$`, `$.a.b`, `$.a[0]`,
//! `$['a b']` and context paths `$$.Execution.Name`. Wildcards, filters, slices and
//! recursive descent are refused when the definition is parsed.

use super::{Failure, errors};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Field(String),
    Index(usize),
}

/// A path that selects at most one node, from the state's input or the context object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Path {
    context: bool,
    segments: Vec<Segment>,
    text: String,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// `$`: the whole input.
    pub(crate) fn root() -> Self {
        Self {
            context: false,
            segments: Vec::new(),
            text: "$".to_owned(),
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (context, mut rest) = if let Some(rest) = text.strip_prefix("$$") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (false, rest)
        } else {
            return Err(format!("path {text:?} does not start with $"));
        };
        let unsupported =
            || format!("path {text:?} uses JSONPath syntax beyond $.field and [index]");
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after_dot) = rest.strip_prefix('.') {
                let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
                let name = &after_dot[..end];
                if name.is_empty() || name.contains(['*', '@', '?', ']']) {
                    return Err(unsupported());
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &after_dot[end..];
            } else if let Some(after_bracket) = rest.strip_prefix('[') {
                let end = after_bracket.find(']').ok_or_else(unsupported)?;
                let inner = &after_bracket[..end];
                segments.push(bracket_segment(inner).ok_or_else(unsupported)?);
                rest = &after_bracket[end + 1..];
            } else {
                return Err(unsupported());
            }
        }
        Ok(Self {
            context,
            segments,
            text: text.to_owned(),
        })
    }

    /// Whether this is `$`, the whole input.
    pub(crate) fn is_root(&self) -> bool {
        !self.context && self.segments.is_empty()
    }

    pub(crate) fn is_context(&self) -> bool {
        self.context
    }

    /// The node this path names, from `input` or (for `$$` paths) `context`.
    pub(crate) fn select<'v>(&self, input: &'v Value, context: &'v Value) -> Option<&'v Value> {
        let start = if self.context { context } else { input };
        self.segments
            .iter()
            .try_fold(start, |node, segment| match segment {
                Segment::Field(name) => node.as_object()?.get(name),
                Segment::Index(index) => node.as_array()?.get(*index),
            })
    }

    /// The node this path names, moved out of `input` (the rest is dropped), or copied
    /// from `context` for `$$` paths.
    pub(crate) fn take(&self, input: Value, context: &Value) -> Option<Value> {
        if self.context {
            return self.select(&Value::Null, context).cloned();
        }
        self.segments
            .iter()
            .try_fold(input, |node, segment| match (segment, node) {
                (Segment::Field(name), Value::Object(mut fields)) => fields.remove(name),
                (Segment::Index(index), Value::Array(mut items)) if *index < items.len() => {
                    Some(items.swap_remove(*index))
                }
                _ => None,
            })
    }

    /// `target` with `value` placed where this path points (ResultPath): missing
    /// objects on the way are created; anything else in the way is an error.
    pub(crate) fn insert(&self, target: Value, value: Value) -> Result<Value, String> {
        if self.context {
            return Err(format!(
                "ResultPath {self} cannot write to the context object"
            ));
        }
        let mut target = target;
        let mut node = &mut target;
        for segment in &self.segments {
            node = match segment {
                Segment::Field(name) => {
                    if node.is_null() {
                        *node = Value::Object(Map::new());
                    }
                    let object = node.as_object_mut().ok_or_else(|| {
                        format!("ResultPath {self}: {name:?} is not inside an object")
                    })?;
                    object.entry(name.clone()).or_insert(Value::Null)
                }
                Segment::Index(index) => node
                    .as_array_mut()
                    .and_then(|array| array.get_mut(*index))
                    .ok_or_else(|| format!("ResultPath {self}: no array element [{index}]"))?,
            };
        }
        *node = value;
        Ok(target)
    }
}

fn bracket_segment(inner: &str) -> Option<Segment> {
    let quoted = inner
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
        .or_else(|| {
            inner
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
        });
    match quoted {
        Some(name) => Some(Segment::Field(name.to_owned())),
        None => inner.parse().ok().map(Segment::Index),
    }
}

/// InputPath and OutputPath: the node selected, or `{}` for a null path.
pub(crate) fn select<'v>(
    path: Option<&Path>,
    value: &'v Value,
    context: &'v Value,
    field: &str,
) -> Result<Cow<'v, Value>, Failure> {
    match path {
        None => Ok(Cow::Owned(json!({}))),
        Some(path) => path
            .select(value, context)
            .map(Cow::Borrowed)
            .ok_or_else(|| nothing_matched(path, field)),
    }
}

/// [`select`] from a value the state is done with: the node is moved out of it.
pub(crate) fn select_owned(
    path: Option<&Path>,
    value: Value,
    context: &Value,
    field: &str,
) -> Result<Value, Failure> {
    match path {
        None => Ok(json!({})),
        Some(path) => path
            .take(value, context)
            .ok_or_else(|| nothing_matched(path, field)),
    }
}

fn nothing_matched(path: &Path, field: &str) -> Failure {
    Failure::new(
        errors::RUNTIME,
        format!("Invalid path '{path}': the {field} matched nothing in the state's data"),
    )
}

/// ResultPath: the result placed into the raw input, or the raw input for a null path.
pub(crate) fn place(path: Option<&Path>, raw: &Value, result: Value) -> Result<Value, Failure> {
    match path {
        None => Ok(raw.clone()),
        // `$` (the default): the result replaces the input, which need not be copied.
        Some(path) if path.is_root() => Ok(result),
        Some(path) => path
            .insert(raw.clone(), result)
            .map_err(|cause| Failure::new(errors::RESULT_PATH_MATCH_FAILURE, cause)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indexes_and_context() {
        let input = json!({"a": {"b": [10, {"c d": true}]}});
        let context = json!({"Execution": {"Name": "order-1"}});
        let pick = |text: &str| Path::parse(text).unwrap().select(&input, &context).cloned();
        assert_eq!(pick("$"), Some(input.clone()));
        assert_eq!(pick("$.a.b[0]"), Some(json!(10)));
        assert_eq!(pick("$.a.b[1]['c d']"), Some(json!(true)));
        assert_eq!(pick("$$.Execution.Name"), Some(json!("order-1")));
        assert_eq!(pick("$.a.missing"), None);
    }

    #[test]
    fn refuses_wildcards_filters_and_descent() {
        for text in ["$.a[*]", "$..a", "$.a[?(@.b)]", "$.a[0:2]", "a.b", "$a"] {
            assert!(Path::parse(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn inserts_creating_objects_on_the_way() {
        let path = Path::parse("$.x.y").unwrap();
        assert_eq!(
            path.insert(json!({"a": 1}), json!(2)).unwrap(),
            json!({"a": 1, "x": {"y": 2}})
        );
        assert_eq!(
            Path::root().insert(json!({"a": 1}), json!(2)).unwrap(),
            json!(2)
        );
        assert!(path.insert(json!({"x": 5}), json!(2)).is_err());
    }
}

//! Records as DynamoDB items: one attribute per camelCase JSON field, absent fields
//! left out, money as numbers (DynamoDB numbers are exact decimal strings).

use aws_sdk_dynamodb::types::AttributeValue;
use ewf_domain::{Money, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub(crate) type Attributes = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A timestamp attribute, written as serde writes it into a record.
pub(crate) fn time(value: ewf_domain::Timestamp) -> AttributeValue {
    text(ewf_domain::time::format(&value))
}

/// A primary key (or any set of string attributes).
pub(crate) fn key<const N: usize>(parts: [(&str, &str); N]) -> Attributes {
    parts
        .into_iter()
        .map(|(name, value)| (name.to_owned(), text(value)))
        .collect()
}

/// The item of a record; the top-level fields named in `money` are stored as numbers.
pub(crate) fn to_item(record: &impl Serialize, money: &[&str]) -> Result<Attributes, StoreError> {
    let value = serde_json::to_value(record)
        .map_err(|err| StoreError::new(format!("cannot store a record: {err}")))?;
    let Value::Object(fields) = value else {
        return Err(StoreError::new(
            "cannot store a record that is not a JSON object",
        ));
    };
    Ok(fields
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            let attribute = match value {
                Value::String(amount) if money.contains(&name.as_str()) => {
                    AttributeValue::N(amount)
                }
                other => to_attribute(other),
            };
            (name, attribute)
        })
        .collect())
}

/// The record of an item; see [`to_item`].
pub(crate) fn from_item<T: DeserializeOwned>(
    item: &Attributes,
    money: &[&str],
) -> Result<T, StoreError> {
    let kind = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("record");
    let unreadable =
        |message: String| StoreError::new(format!("unreadable {kind} in DynamoDB: {message}"));
    let fields = item
        .iter()
        .map(|(name, attribute)| {
            let value = match attribute {
                AttributeValue::N(amount) if money.contains(&name.as_str()) => Value::String(
                    money_text(amount).map_err(|err| unreadable(format!("{name}: {err}")))?,
                ),
                other => {
                    from_attribute(other).map_err(|err| unreadable(format!("{name}: {err}")))?
                }
            };
            Ok((name.clone(), value))
        })
        .collect::<Result<Map<_, _>, StoreError>>()?;
    serde_json::from_value(Value::Object(fields)).map_err(|err| unreadable(err.to_string()))
}

fn to_attribute(value: Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(flag),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(values) => AttributeValue::L(values.into_iter().map(to_attribute).collect()),
        Value::Object(fields) => AttributeValue::M(
            fields
                .into_iter()
                .map(|(name, value)| (name, to_attribute(value)))
                .collect(),
        ),
    }
}

fn from_attribute(attribute: &AttributeValue) -> Result<Value, String> {
    Ok(match attribute {
        AttributeValue::S(s) => Value::String(s.clone()),
        // Counters are integers; any other number stays text so that no digit is lost.
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map_or_else(|_| Value::String(n.clone()), Value::from),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(values) => Value::Array(
            values
                .iter()
                .map(from_attribute)
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::M(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| Ok((name.clone(), from_attribute(value)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unexpected attribute type {other:?}")),
    })
}

/// DynamoDB drops trailing zeros ("0.60" comes back as "0.6"); amounts show cents.
fn money_text(stored: &str) -> Result<String, String> {
    let mut amount: Money = stored
        .parse()
        .map_err(|err| format!("{stored:?} is not a decimal: {err}"))?;
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    Ok(amount.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ewf_domain::{Item, ItemId};

    #[test]
    fn money_is_a_number_and_keeps_its_cents() {
        let item = Item {
            item_id: ItemId::parse("item-1").unwrap(),
            name: "Big Smartphone".into(),
            description: String::new(),
            price: "399.90".parse().unwrap(),
            available: 10,
            reserved: 0,
        };
        let mut attributes = to_item(&item, &["price"]).unwrap();
        assert_eq!(attributes["price"], AttributeValue::N("399.90".into()));
        assert_eq!(attributes["available"], AttributeValue::N("10".into()));
        // As DynamoDB normalises it.
        attributes.insert("price".into(), AttributeValue::N("399.9".into()));
        let back: Item = from_item(&attributes, &["price"]).unwrap();
        assert_eq!(back, item);
        assert_eq!(back.price.to_string(), "399.90");
    }

    #[test]
    fn a_malformed_item_is_an_error_naming_the_record() {
        let attributes = key([("itemId", "item-1")]);
        let err = from_item::<Item>(&attributes, &["price"]).unwrap_err();
        assert!(err.message.contains("Item"), "{err}");
    }

    #[test]
    fn timestamps_are_written_as_serde_writes_them() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00.123Z")
            .unwrap()
            .to_utc();
        let payment = ewf_domain::Payment {
            payment_id: ewf_domain::PaymentId::parse("01KDWPVNG00000000000000001").unwrap(),
            amount: Money::from(1),
            method: ewf_domain::PAYMENT_METHOD.into(),
            status: ewf_domain::PaymentStatus::Paid,
            created_at: now,
            updated_at: now,
        };
        let record = serde_json::to_value(payment).unwrap();
        assert_eq!(time(now), to_attribute(record["updatedAt"].clone()));
    }
}

//! Validated identifiers and inputs. Every value that comes from outside (a path
//! parameter, an event detail, a workflow payload) is parsed into one of these first, so
//! the stores never see an unchecked string.

use crate::{Money, ServiceError};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Longest id accepted: Step Functions execution names (our order ids) stop at 80.
pub const MAX_ID_LEN: usize = 80;
/// Longest delivery address accepted.
pub const MAX_ADDRESS_LEN: usize = 200;
/// Largest amount a single payment may take.
pub const MAX_AMOUNT: Money = Money::from_parts(1_000_000, 0, 0, false, 0);

/// An id is 1 to 80 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
fn check_id(field: &'static str, value: &str) -> Result<(), ServiceError> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let starts_well = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if value.len() > MAX_ID_LEN || !starts_well || !value.chars().all(valid_char) {
        return Err(ServiceError::bad_input(
            field,
            format!(
                "must be 1 to {MAX_ID_LEN} characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The JSON field name this id travels under, used in error messages.
            pub const FIELD: &'static str = $field;

            pub fn parse(value: &str) -> Result<Self, ServiceError> {
                check_id($field, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ServiceError;
            fn from_str(value: &str) -> Result<Self, ServiceError> {
                Self::parse(value)
            }
        }
    };
}

id_type!(
    /// A customer, e.g. `customer-1`.
    CustomerId, "customerId"
);
id_type!(
    /// An inventory item, e.g. `item-1`.
    ItemId, "itemId"
);
id_type!(
    /// An order: a ULID when ewf creates it (unique and sortable by time), and the
    /// name of its Step Functions execution in workflow mode.
    OrderId, "orderId"
);
id_type!(
    /// A payment: an order's payment carries its order's id; one made by hand, a ULID.
    PaymentId, "paymentId"
);

impl OrderId {
    /// A new order id from the time and 80 random bits.
    pub fn generate(now: chrono::DateTime<chrono::Utc>, random: u128) -> Self {
        Self(ulid_string(now, random))
    }
}

impl PaymentId {
    /// The id of the order's payment. An order pays once, under its own id, so every
    /// step of the saga names the order's payment from the order alone: the workflow
    /// records a declined payment without reading it back out of the error, and the
    /// payments table's condition refuses a second payment for the order.
    pub fn of_order(order_id: &OrderId) -> Self {
        Self(order_id.as_str().to_owned())
    }

    /// A payment made by hand (`/payment/pay`), with no order.
    pub fn generate(now: chrono::DateTime<chrono::Utc>, random: u128) -> Self {
        Self(ulid_string(now, random))
    }
}

fn ulid_string(now: chrono::DateTime<chrono::Utc>, random: u128) -> String {
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or_default();
    ulid::Ulid::from_parts(millis, random).to_string()
}

/// A delivery address: 1 to 200 characters, no control characters. Apostrophes,
/// commas and spaces are ordinary characters here; they never reach a query string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub const FIELD: &'static str = "address";

    pub fn parse(value: &str) -> Result<Self, ServiceError> {
        let trimmed = value.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > MAX_ADDRESS_LEN
            || trimmed.chars().any(char::is_control)
        {
            return Err(ServiceError::bad_input(
                Self::FIELD,
                format!("must be 1 to {MAX_ADDRESS_LEN} characters with no control characters"),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What an amount must look like, for every error that refuses one.
pub const AMOUNT_GRAMMAR: &str = "must be digits, optionally a point and one or two digits (no sign, exponent, separator, space or leading zero), above 0 and at most 1000000";

/// An amount as text, wherever it comes from (a path, a workflow payload, a data file, a
/// command line): digits, optionally a point and one or two digits; above 0, at most
/// 1,000,000; no sign, exponent, separator, space or leading zero. The text is the
/// whole contract, so `1.500` or `1e2` are refused rather than read as a number.
pub fn parse_amount(value: &str) -> Result<Money, ServiceError> {
    parse_amount_field("amount", value)
}

/// [`parse_amount`], naming `field` when it refuses.
pub fn parse_amount_field(field: &'static str, value: &str) -> Result<Money, ServiceError> {
    let invalid = || ServiceError::bad_input(field, AMOUNT_GRAMMAR);
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let well_formed = digits(whole)
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.is_none_or(|fraction| fraction.len() <= 2 && digits(fraction));
    if !well_formed {
        return Err(invalid());
    }
    let amount: Money = value.parse().map_err(|_| invalid())?;
    within_bounds(amount).ok_or_else(invalid)
}

/// Checks an amount that is already a decimal (the sum of two checked prices): the same
/// bounds, and at most two places.
pub fn check_amount(amount: Money) -> Result<Money, ServiceError> {
    within_bounds(amount)
        .filter(|amount| amount.normalize().scale() <= 2)
        .ok_or_else(|| ServiceError::bad_input("amount", AMOUNT_GRAMMAR))
}

fn within_bounds(amount: Money) -> Option<Money> {
    (amount > Money::ZERO && amount <= MAX_AMOUNT).then_some(amount)
}

/// An amount in JSON (a workflow payload, a data file), read as text under the grammar of
/// [`parse_amount`]: a string (`"12.30"`) or a whole number (`12`). A number with a point
/// or an exponent is refused, because JSON parsing has already lost its text (`1.500`
/// and `1e2` would pass as 1.5 and 100).
pub fn amount_from_json(
    field: &'static str,
    value: &serde_json::Value,
) -> Result<Money, ServiceError> {
    match value {
        serde_json::Value::String(text) => parse_amount_field(field, text),
        serde_json::Value::Number(number) if number.is_u64() => {
            parse_amount_field(field, &number.to_string())
        }
        _ => Err(ServiceError::bad_input(
            field,
            format!("{AMOUNT_GRAMMAR}, as a string"),
        )),
    }
}

/// An amount field of a JSON document, read by [`amount_from_json`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JsonAmount(pub Money);

impl<'de> Deserialize<'de> for JsonAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        amount_from_json("amount", &value)
            .map(Self)
            .map_err(|err| match err {
                // The caller names the field; say only what is wrong with it.
                ServiceError::BadInput { message, .. } => serde::de::Error::custom(message),
                other => serde::de::Error::custom(other),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet_only() {
        assert!(CustomerId::parse("customer-1").is_ok());
        assert!(ItemId::parse("item_2.b").is_ok());
        for bad in ["", "-lead", "a b", "x'; DROP", "é", &"a".repeat(81)] {
            let err = CustomerId::parse(bad).unwrap_err();
            assert_eq!(err.field(), Some("customerId"), "{bad}");
        }
    }

    #[test]
    fn generated_ids_sort_by_time() {
        let early = chrono::DateTime::from_timestamp_millis(1_000).unwrap();
        let late = chrono::DateTime::from_timestamp_millis(1_001).unwrap();
        let a = OrderId::generate(early, u128::MAX);
        let b = OrderId::generate(late, 0);
        assert!(a < b);
        assert_eq!(a.as_str().len(), 26);
        assert!(OrderId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn amounts_follow_one_grammar() {
        for (text, expected) in [
            ("12.30", "12.30"),
            ("12.3", "12.3"),
            ("0.01", "0.01"),
            ("0.5", "0.5"),
            ("7", "7"),
            ("1000000", "1000000"),
            ("1000000.00", "1000000.00"),
        ] {
            assert_eq!(parse_amount(text).unwrap().to_string(), expected, "{text}");
        }
        for bad in crate::testing::MALFORMED_AMOUNTS {
            let err = parse_amount(bad).unwrap_err();
            assert_eq!(err.field(), Some("amount"), "{bad}");
            assert!(err.to_string().contains(AMOUNT_GRAMMAR), "{bad}");
        }
    }

    #[test]
    fn json_amounts_follow_the_same_grammar() {
        let read = |json: &str| amount_from_json("amount", &serde_json::from_str(json).unwrap());
        assert_eq!(read(r#""412.33""#).unwrap().to_string(), "412.33");
        assert_eq!(read("412").unwrap().to_string(), "412");
        for bad in ["1e2", "1.5", r#""1.500""#, "-1", "true", "null", r#""1e2""#] {
            assert_eq!(read(bad).unwrap_err().field(), Some("amount"), "{bad}");
        }
        let JsonAmount(amount) = serde_json::from_str(r#""7.50""#).unwrap();
        assert_eq!(amount.to_string(), "7.50");
    }

    #[test]
    fn computed_amounts_keep_the_bounds() {
        assert!(check_amount(Money::new(41_233, 2)).is_ok());
        assert!(check_amount(Money::new(1_500, 3)).is_ok());
        for bad in [
            Money::ZERO,
            Money::new(1_001, 3),
            MAX_AMOUNT + Money::new(1, 2),
        ] {
            assert!(check_amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_keep_apostrophes_and_refuse_control_characters() {
        assert_eq!(
            Address::parse(" St Paul's Churchyard ").unwrap().as_str(),
            "St Paul's Churchyard"
        );
        assert!(Address::parse("line\nbreak").is_err());
        assert!(Address::parse("  ").is_err());
    }
}

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
    /// A payment: a ULID.
    PaymentId, "paymentId"
);

impl OrderId {
    /// A new order id from the time and 80 random bits.
    pub fn generate(now: chrono::DateTime<chrono::Utc>, random: u128) -> Self {
        Self(ulid_string(now, random))
    }
}

impl PaymentId {
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

/// A payment amount: positive, at most two decimal places, at most 1,000,000.
pub fn parse_amount(value: &str) -> Result<Money, ServiceError> {
    let invalid = || {
        ServiceError::bad_input(
            "amount",
            "must be a positive decimal with at most two decimal places, at most 1000000",
        )
    };
    let amount: Money = value.trim().parse().map_err(|_| invalid())?;
    check_amount(amount).map_err(|_| invalid())
}

/// Checks an amount that is already a decimal (a workflow payload, an event detail).
pub fn check_amount(amount: Money) -> Result<Money, ServiceError> {
    if amount <= Money::ZERO || amount > MAX_AMOUNT || amount.normalize().scale() > 2 {
        return Err(ServiceError::bad_input(
            "amount",
            "must be a positive decimal with at most two decimal places, at most 1000000",
        ));
    }
    Ok(amount)
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
    fn amounts_are_positive_cents_within_bounds() {
        assert_eq!(parse_amount("12.30").unwrap().to_string(), "12.30");
        assert_eq!(parse_amount("1000000").unwrap(), MAX_AMOUNT);
        for bad in ["0", "-1", "1.001", "abc", "1000000.01", "NaN", ""] {
            assert_eq!(
                parse_amount(bad).unwrap_err().field(),
                Some("amount"),
                "{bad}"
            );
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

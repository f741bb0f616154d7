//! The settings a deployed function and the local stack share: each one's variable,
//! default and grammar, in one place. The template sets the variables; the local stack
//! and `ewf` read and write the same names.

use std::time::Duration;

/// The probability that a payment is declined.
pub const FAIL_PROBABILITY_VAR: &str = "PAYMENT_FAIL_PROBABILITY";
pub const DEFAULT_FAIL_PROBABILITY: f64 = 0.2;

/// How long an order of the choreography may take to settle before it is compensated:
/// the choreography's counterpart of the workflow's task timeouts.
pub const ORDER_DEADLINE_VAR: &str = "ORDER_DEADLINE_SECONDS";
pub const DEFAULT_ORDER_DEADLINE: Duration = Duration::from_secs(900);
/// At most the workflow's own overall timeout (30 days).
const MAX_ORDER_DEADLINE_SECONDS: u64 = 2_592_000;

/// A probability from 0 to 1 inclusive (-0 is read as 0), with nothing around it.
pub fn parse_fail_probability(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|probability| (0.0..=1.0).contains(probability))
        .map(|probability| probability + 0.0)
        .ok_or_else(|| format!("{FAIL_PROBABILITY_VAR} must be a number from 0 to 1, not {text:?}"))
}

/// Whole seconds from 1 to 30 days, with nothing around them.
pub fn parse_order_deadline(text: &str) -> Result<Duration, String> {
    text.parse::<u64>()
        .ok()
        .filter(|seconds| (1..=MAX_ORDER_DEADLINE_SECONDS).contains(seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            format!(
                "{ORDER_DEADLINE_VAR} must be whole seconds from 1 to {MAX_ORDER_DEADLINE_SECONDS}, not {text:?}"
            )
        })
}

/// The payment failure probability from the environment (default when unset or empty).
pub fn fail_probability_from_env() -> Result<f64, String> {
    from_env(
        FAIL_PROBABILITY_VAR,
        DEFAULT_FAIL_PROBABILITY,
        parse_fail_probability,
    )
}

/// The order deadline from the environment (default when unset or empty).
pub fn order_deadline_from_env() -> Result<Duration, String> {
    from_env(
        ORDER_DEADLINE_VAR,
        DEFAULT_ORDER_DEADLINE,
        parse_order_deadline,
    )
}

fn from_env<T>(
    var: &str,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    match std::env::var(var) {
        // A variable's value may carry stray white space; an argument may not.
        Ok(text) if !text.trim().is_empty() => parse(text.trim()),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(default),
        Err(err) => Err(format!("{var}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fail_probability_is_a_number_from_zero_to_one() {
        for (text, expected) in [("0", 0.0), ("0.2", 0.2), ("1", 1.0)] {
            assert_eq!(parse_fail_probability(text), Ok(expected));
        }
        assert_eq!(
            parse_fail_probability("-0").map(|value| value.to_string()),
            Ok("0".into())
        );
        for bad in ["1.5", "-0.1", "NaN", "often", "", " 0.5"] {
            assert!(parse_fail_probability(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_order_deadline_is_whole_seconds_up_to_thirty_days() {
        assert_eq!(parse_order_deadline("900"), Ok(Duration::from_secs(900)));
        assert_eq!(
            parse_order_deadline("2592000"),
            Ok(Duration::from_secs(2_592_000))
        );
        for bad in ["0", "2592001", "1.5", "-1", "soon"] {
            assert!(parse_order_deadline(bad).is_err(), "{bad}");
        }
    }
}

//! One format for every time ewf stores or prints: RFC 3339 in UTC, nine fraction
//! digits and `Z` (`2026-12-03T06:40:00.123456789Z`). Of one width, so the text sorts
//! as the times do (stores compare and order it as text); to the nanosecond, so a time
//! read back equals the one written. Reading takes any RFC 3339 time.
//!
//! Kept apart: what AWS defines (the Step Functions context object's milliseconds,
//! DynamoDB TTL's epoch seconds) and a ULID's milliseconds.

use crate::Timestamp;
use chrono::{DateTime, SecondsFormat};

pub fn format(time: &Timestamp) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn parse(text: &str) -> Result<Timestamp, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|time| time.to_utc())
}

/// For a `Timestamp` field: `#[serde(with = "ewf_domain::time::rfc3339")]`.
pub mod rfc3339 {
    use crate::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_alike_and_sort_as_text_as_they_do_as_times() {
        let times: Vec<Timestamp> = [
            "2026-01-01T12:00:00Z",
            "2026-01-01T12:00:00.05Z",
            "2026-01-01T12:00:00.123456789Z",
            "2026-01-01T13:00:00.1+01:00",
        ]
        .iter()
        .map(|text| parse(text).unwrap())
        .collect();
        let texts: Vec<String> = times.iter().map(format).collect();
        assert_eq!(texts[0], "2026-01-01T12:00:00.000000000Z");
        assert_eq!(texts[3], "2026-01-01T12:00:00.100000000Z");
        assert!(texts.iter().all(|text| text.len() == texts[0].len()));
        let mut by_text = texts.clone();
        by_text.sort();
        let mut by_time = times.clone();
        by_time.sort();
        assert_eq!(by_text, by_time.iter().map(format).collect::<Vec<_>>());
        for (time, text) in times.iter().zip(&texts) {
            assert_eq!(&parse(text).unwrap(), time, "read back as written");
        }
    }
}

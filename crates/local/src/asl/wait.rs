//! A Wait state's decision: how long it waits.

use super::definition::Wait;
use super::path::Path;
use super::{Failure, errors};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

impl Wait {
    /// How long the state waits from `now`, by its seconds or until its timestamp
    /// (a timestamp past is no wait), read from the input where a path says so.
    pub(crate) fn duration(
        &self,
        input: &Value,
        context: &Value,
        now: DateTime<Utc>,
    ) -> Result<Duration, Failure> {
        let from_path = |path: &Path| {
            path.select(input, context).ok_or_else(|| {
                Failure::new(
                    errors::RUNTIME,
                    format!("The Wait path {path} could not be found"),
                )
            })
        };
        let at = match self {
            Wait::Seconds(seconds) => return Ok(Duration::from_secs(*seconds)),
            Wait::SecondsPath(path) => {
                let seconds = from_path(path)?.as_u64().ok_or_else(|| {
                    Failure::new(
                        errors::RUNTIME,
                        format!("The Wait path {path} is not a non-negative whole number"),
                    )
                })?;
                return Ok(Duration::from_secs(seconds));
            }
            Wait::Timestamp(at) => *at,
            Wait::TimestampPath(path) => from_path(path)?
                .as_str()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|at| at.to_utc())
                .ok_or_else(|| {
                    Failure::new(
                        errors::RUNTIME,
                        format!("The Wait path {path} is not a timestamp"),
                    )
                })?,
        };
        Ok((at - now).to_std().unwrap_or_default())
    }
}
